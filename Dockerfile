# otelsim as a small container image: `make image` (docker build -t otelsim .).
# Stage 1 builds a static binary (musl) from the versions Cargo.lock pins;
# stage 2 is that binary alone, run as a non-root user. config.yaml, the
# conventions and the definitions are compiled into the binary; mount your own
# scenarios at /etc/otelsim/scenarios and set SCENARIOS_DIR to it (the
# Kubernetes Job in deploy/kubernetes does).
ARG RUST_VERSION=1.88

FROM rust:${RUST_VERSION}-alpine AS build
RUN apk add --no-cache gcc musl-dev ca-certificates
WORKDIR /src
COPY . .
RUN cargo build --release --locked \
 && cp target/release/otelsim /otelsim

FROM scratch
# The system CAs, for https:// endpoints (--tls-ca replaces them).
COPY --from=build /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY --from=build /otelsim /usr/local/bin/otelsim
USER 65532:65532
# OTLP in (for `otelsim sink`): gRPC and HTTP.
EXPOSE 4317 4318
ENTRYPOINT ["/usr/local/bin/otelsim"]
CMD ["--help"]
