//! TLS and mTLS end to end: a CA, a server certificate for 127.0.0.1 and
//! localhost, and a client certificate are generated at test time; the real
//! binary exports over https:// to the real sink (in-process, or the
//! `otelsim sink` binary) on 127.0.0.1, for both OTLP/gRPC and OTLP/HTTP.

use crate::support::*;
use otelsim::sink::{self, RunningSink, SinkOptions};
use otelsim::tls::ServerTls;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::{Duration, Instant};

const LIMIT: Duration = Duration::from_secs(60);
/// How long a run that must fail may take (retry budget 2 s plus start-up).
const FAIL_WITHIN: Duration = Duration::from_secs(20);
const PROTOCOLS: [&str; 2] = ["grpc", "http/protobuf"];
const SECRET: &str = "Bearer-SECRET123";

/// Test certificates, as PEM text and as files in a temporary folder.
struct Pki {
    dir: tempfile::TempDir,
    ca: String,
    server_cert: String,
    server_key: String,
}

impl Pki {
    fn new() -> Pki {
        let ca_key = KeyPair::generate().expect("CA key");
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "otelsim test CA");
        ca_params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let ca_cert = ca_params.self_signed(&ca_key).expect("CA cert");
        let issuer = Issuer::new(ca_params, ca_key);

        let leaf = |names: Vec<String>, usage: ExtendedKeyUsagePurpose| {
            let key = KeyPair::generate().expect("leaf key");
            let mut params = CertificateParams::new(names).expect("leaf params");
            params.extended_key_usages = vec![usage];
            let cert = params.signed_by(&key, &issuer).expect("leaf cert");
            (cert.pem(), key.serialize_pem())
        };
        let (server_cert, server_key) = leaf(
            vec!["127.0.0.1".into(), "localhost".into()],
            ExtendedKeyUsagePurpose::ServerAuth,
        );
        let (client_cert, client_key) = leaf(
            vec!["otelsim-test-client".into()],
            ExtendedKeyUsagePurpose::ClientAuth,
        );
        let dir = tempfile::tempdir().expect("tempdir");
        let ca = ca_cert.pem();
        for (name, pem) in [
            ("ca.pem", &ca),
            ("server.pem", &server_cert),
            ("server.key", &server_key),
            ("client.pem", &client_cert),
            ("client.key", &client_key),
            ("garbage.pem", &"not a certificate\n".to_string()),
        ] {
            std::fs::write(dir.path().join(name), pem).expect("write PEM");
        }
        Pki {
            dir,
            ca,
            server_cert,
            server_key,
        }
    }

    fn path(&self, name: &str) -> String {
        self.dir.path().join(name).to_str().expect("utf-8").into()
    }

    fn server_tls(&self, mtls: bool) -> ServerTls {
        ServerTls::from_pem(
            &self.server_cert,
            &self.server_key,
            mtls.then_some(self.ca.as_str()),
        )
        .expect("server TLS")
    }
}

fn tls_sink(rt: &tokio::runtime::Runtime, tls: ServerTls) -> RunningSink {
    let opts = SinkOptions {
        tls: Some(tls),
        ..SinkOptions::for_tests()
    };
    let sink = rt.block_on(sink::start(opts)).expect("start TLS sink");
    assert!(sink.grpc_endpoint().starts_with("https://"));
    assert!(sink.http_endpoint().starts_with("https://"));
    sink
}

fn endpoint(sink: &RunningSink, protocol: &str) -> String {
    match protocol {
        "grpc" => sink.grpc_endpoint(),
        _ => sink.http_endpoint(),
    }
}

fn otelsim() -> Otelsim {
    Otelsim::new().limit(LIMIT)
}

/// `run` of 5 picks against `endpoint` with extra (TLS) flags, not yet run.
fn export(endpoint: &str, protocol: &str, extra: &[&str]) -> Otelsim {
    otelsim()
        .endpoint(endpoint)
        .protocol(protocol)
        .cli("run --count 5 --interval 0")
        .seed(1)
        .args(extra)
}

/// Spans, metric points and log records otelsim reports acknowledged.
fn acked(report: &Path) -> [u64; 3] {
    let doc = read_json(report);
    let e = &doc["report"]["export"];
    ["spans", "metric_points", "log_records"].map(|s| e[s]["acked"].as_u64().expect("acked"))
}

fn received(snap: &sink::SinkSnapshot) -> [u64; 3] {
    [snap.spans, snap.metric_points, snap.log_records]
}

fn assert_failed_on_tls(out: &Output, started: Instant, what: &str) {
    let t = text(out);
    assert_eq!(out.status.code(), Some(3), "{what}: expected exit 3\n{t}");
    let lower = t.to_lowercase();
    assert!(
        lower.contains("certificate") || lower.contains("tls"),
        "{what}: the error must mention the certificate or TLS\n{t}"
    );
    assert!(
        started.elapsed() < FAIL_WITHIN,
        "{what}: took {:?}",
        started.elapsed()
    );
}

#[test]
fn with_the_ca_everything_acknowledged_arrives_and_the_auth_header_stays_secret() {
    let pki = Pki::new();
    let rt = runtime();
    for protocol in PROTOCOLS {
        let sink = tls_sink(&rt, pki.server_tls(false));
        let report = pki.dir.path().join("report.json");
        let t = export(
            &endpoint(&sink, protocol),
            protocol,
            &[
                "--tls-ca",
                &pki.path("ca.pem"),
                "--header",
                &format!("authorization={SECRET}"),
            ],
        )
        .report(&report)
        .arg("-v")
        .run_ok();
        let acked = acked(&report);
        assert!(acked[0] > 0, "{protocol}: no spans acknowledged\n{t}");
        assert_eq!(
            received(&sink.stats.snapshot()),
            acked,
            "{protocol}: the sink must hold exactly what was acknowledged"
        );
        assert!(!t.contains("SECRET123"), "{protocol}: header leaked\n{t}");
        let doc = std::fs::read_to_string(&report).unwrap();
        assert!(!doc.contains("SECRET123"), "{protocol}: header in report");
        assert!(!t.contains("--insecure"), "{protocol}: no warning expected");
        rt.block_on(sink.shutdown());
    }
}

#[test]
fn without_the_ca_the_self_signed_sink_is_refused_quickly() {
    let pki = Pki::new();
    let rt = runtime();
    let sink = tls_sink(&rt, pki.server_tls(false));
    for protocol in PROTOCOLS {
        let started = Instant::now();
        let out = export(
            &endpoint(&sink, protocol),
            protocol,
            &["--retry-budget", "2s"],
        )
        .run();
        assert_failed_on_tls(&out, started, protocol);
    }
    assert_eq!(sink.stats.snapshot().spans, 0);
    rt.block_on(sink.shutdown());
}

#[test]
fn insecure_accepts_the_unverified_certificate_with_a_warning() {
    let pki = Pki::new();
    let rt = runtime();
    for protocol in PROTOCOLS {
        let sink = tls_sink(&rt, pki.server_tls(false));
        let report = pki.dir.path().join("insecure.json");
        let out = export(&endpoint(&sink, protocol), protocol, &["--insecure"])
            .report(&report)
            .run();
        let t = text(&out);
        assert!(out.status.success(), "{protocol}: {t}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        let warnings = stderr
            .lines()
            .filter(|l| l.contains("warning: --insecure"))
            .count();
        assert_eq!(warnings, 1, "{protocol}: one warning line\n{stderr}");
        assert_eq!(received(&sink.stats.snapshot()), acked(&report));
        rt.block_on(sink.shutdown());
    }
}

#[test]
fn mtls_needs_a_client_certificate_the_sink_trusts() {
    let pki = Pki::new();
    let rt = runtime();
    for protocol in PROTOCOLS {
        let sink = tls_sink(&rt, pki.server_tls(true));
        let url = endpoint(&sink, protocol);
        let ca = pki.path("ca.pem");

        let started = Instant::now();
        let out = export(&url, protocol, &["--tls-ca", &ca, "--retry-budget", "2s"]).run();
        assert_failed_on_tls(&out, started, &format!("{protocol} without client cert"));
        assert_eq!(sink.stats.snapshot().spans, 0);

        let report = pki.dir.path().join("mtls.json");
        export(
            &url,
            protocol,
            &[
                "--tls-ca",
                &ca,
                "--tls-cert",
                &pki.path("client.pem"),
                "--tls-key",
                &pki.path("client.key"),
            ],
        )
        .report(&report)
        .run_ok();
        assert_eq!(received(&sink.stats.snapshot()), acked(&report));
        rt.block_on(sink.shutdown());
    }
}

#[test]
fn the_standard_otel_variables_configure_tls_and_flags_win() {
    let pki = Pki::new();
    let rt = runtime();
    let sink = tls_sink(&rt, pki.server_tls(true));
    let url = sink.http_endpoint();
    let (ca, cert, key) = (
        pki.path("ca.pem"),
        pki.path("client.pem"),
        pki.path("client.key"),
    );
    let with_env = |sim: Otelsim| {
        sim.env("OTEL_EXPORTER_OTLP_CERTIFICATE", &ca)
            .env("OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE", &cert)
            .env("OTEL_EXPORTER_OTLP_CLIENT_KEY", &key)
    };
    with_env(export(&url, "http/protobuf", &[])).run_ok();
    let spans = sink.stats.snapshot().spans;
    assert!(spans > 0);

    // A flag beats its variable: a CA bundle that is not one is refused, naming the flag.
    let garbage = pki.path("garbage.pem");
    let t = with_env(export(&url, "http/protobuf", &["--tls-ca", &garbage])).run_exit(2);
    assert!(t.contains("--tls-ca"), "{t}");

    // Variables with an http:// endpoint are ignored (the sink is not involved).
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("out.jsonl");
    with_env(otelsim().output_file(&file))
        .cli("run --count 1 --interval 0")
        .run_ok();
    assert_eq!(sink.stats.snapshot().spans, spans);
    rt.block_on(sink.shutdown());
}

#[test]
fn bad_tls_input_is_exit_2_naming_the_flag_and_the_file() {
    let pki = Pki::new();
    let missing = pki.path("missing.pem");
    let garbage = pki.path("garbage.pem");
    let (cert, key, ca) = (
        pki.path("client.pem"),
        pki.path("client.key"),
        pki.path("ca.pem"),
    );
    // Nothing listens here: settings are checked before connecting.
    let https = "https://127.0.0.1:9";
    let cases: Vec<(Vec<&str>, Vec<&str>)> = vec![
        (
            vec!["--tls-ca", &missing],
            vec!["--tls-ca", &missing, "cannot read"],
        ),
        (
            vec!["--tls-ca", &garbage],
            vec!["--tls-ca", &garbage, "no PEM certificate found"],
        ),
        (vec!["--tls-cert", &cert], vec!["--tls-cert", "--tls-key"]),
        (vec!["--tls-key", &key], vec!["--tls-cert", "--tls-key"]),
        (
            vec!["--tls-cert", &garbage, "--tls-key", &key],
            vec!["--tls-cert", &garbage, "no PEM certificate found"],
        ),
        (
            vec!["--tls-cert", &cert, "--tls-key", &cert],
            vec!["--tls-key", &cert, "no PEM private key found"],
        ),
        (
            vec!["--tls-ca", &ca, "--insecure"],
            vec!["--insecure", "--tls-ca"],
        ),
    ];
    for protocol in PROTOCOLS {
        for (flags, expected) in &cases {
            let t = export(https, protocol, flags).run_exit(2);
            for e in expected {
                assert!(t.contains(e), "{flags:?}: `{e}` missing in\n{t}");
            }
        }
    }
    // TLS files with --output-file would do nothing: refused.
    let t = otelsim()
        .output_file(pki.path("out.jsonl"))
        .args(["--tls-ca", &ca, "run", "--count", "1"])
        .run_exit(2);
    assert!(t.contains("--output-file"), "{t}");
    // TLS files with an http:// endpoint would do nothing: refused.
    let t = export(
        "http://127.0.0.1:9",
        "grpc",
        &["--tls-ca", &pki.path("ca.pem")],
    )
    .run_exit(2);
    assert!(t.contains("https://"), "{t}");
    // Subcommands that export nothing refuse the client flags.
    let t = otelsim().args(["list", "--tls-ca", &garbage]).run_exit(2);
    assert!(t.contains("--tls-ca"), "{t}");
    let t = otelsim().cli("sink --insecure").run_exit(2);
    assert!(t.contains("--insecure"), "{t}");
}

#[test]
fn sink_binary_tls_flags_are_checked() {
    let pki = Pki::new();
    let (cert, key, ca, garbage, client) = (
        pki.path("server.pem"),
        pki.path("server.key"),
        pki.path("ca.pem"),
        pki.path("garbage.pem"),
        pki.path("client.pem"),
    );
    let ports = ["--grpc-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0"];
    let cases: Vec<(Vec<&str>, Vec<&str>)> = vec![
        (vec!["--tls-cert", &cert], vec!["--tls-cert", "--tls-key"]),
        (
            vec!["--tls-client-ca", &ca],
            vec!["--tls-client-ca", "--tls-cert"],
        ),
        (
            vec!["--tls-cert", &cert, "--tls-key", &garbage],
            vec!["--tls-key", &garbage, "no PEM private key found"],
        ),
        (
            vec![
                "--tls-cert",
                &cert,
                "--tls-key",
                &key,
                "--tls-client-ca",
                &garbage,
            ],
            vec!["--tls-client-ca", &garbage, "no PEM certificate found"],
        ),
        (
            vec!["--tls-cert", &client, "--tls-key", &key],
            vec!["--tls-cert", "--tls-key"],
        ),
    ];
    for (flags, expected) in cases {
        let t = otelsim()
            .cli("sink --duration 5s")
            .args(ports)
            .args(&flags)
            .run_exit(2);
        for e in expected {
            assert!(t.contains(e), "{flags:?}: `{e}` missing in\n{t}");
        }
    }
}

/// The `otelsim sink` binary (killed if dropped before `stop`).
struct SinkProcess {
    child: Running,
    grpc: String,
    http: String,
}

impl SinkProcess {
    /// Starts the sink on free ports and waits (bounded) for its "listening" line.
    fn start(extra: &[&str], summary: &Path) -> SinkProcess {
        let mut child = Otelsim::new()
            .cli("sink --grpc-addr 127.0.0.1:0 --http-addr 127.0.0.1:0")
            .cli("--duration 60s --summary-file")
            .arg(summary)
            .args(extra)
            // `stop` waits this long for the exit after SIGTERM.
            .limit(Duration::from_secs(20))
            .spawn();
        let rx = child.stderr_lines();
        let mut sink = SinkProcess {
            child,
            grpc: String::new(),
            http: String::new(),
        };
        let line = rx
            .recv_timeout(Duration::from_secs(30))
            .expect("sink prints its listening line");
        // "otelsim sink: listening on grpc 127.0.0.1:P, http 127.0.0.1:Q, TLS ..."
        let addr = |after: &str| {
            line.split(after)
                .nth(1)
                .and_then(|rest| rest.split([',', ' ']).next())
                .map(str::to_string)
                .unwrap_or_else(|| panic!("no address after `{after}` in: {line}"))
        };
        sink.grpc = format!("https://{}", addr("grpc "));
        sink.http = format!("https://{}", addr("http "));
        assert!(line.contains("client certificates required"), "{line}");
        // Keep draining stderr so the sink never blocks on a full pipe.
        std::thread::spawn(move || while rx.recv().is_ok() {});
        sink
    }

    /// SIGTERM by PID, then waits (bounded) for a clean exit.
    fn stop(mut self) {
        self.child.signal("TERM");
        let out = self.child.wait();
        assert!(out.status.success(), "sink exited with {}", out.status);
    }
}

#[test]
fn the_sink_binary_serves_mtls_on_both_listeners() {
    let pki = Pki::new();
    let summary = pki.dir.path().join("summary.json");
    let sink = SinkProcess::start(
        &[
            "--tls-cert",
            &pki.path("server.pem"),
            "--tls-key",
            &pki.path("server.key"),
            "--tls-client-ca",
            &pki.path("ca.pem"),
        ],
        &summary,
    );
    let mut total = [0u64; 3];
    for protocol in PROTOCOLS {
        let url = if protocol == "grpc" {
            &sink.grpc
        } else {
            &sink.http
        };
        let report: PathBuf = pki.dir.path().join("bin.json");
        export(
            url,
            protocol,
            &[
                "--tls-ca",
                &pki.path("ca.pem"),
                "--tls-cert",
                &pki.path("client.pem"),
                "--tls-key",
                &pki.path("client.key"),
            ],
        )
        .report(&report)
        .run_ok();
        for (t, a) in total.iter_mut().zip(acked(&report)) {
            *t += a;
        }
        // Without a client certificate: refused.
        let started = Instant::now();
        let out = export(
            url,
            protocol,
            &["--tls-ca", &pki.path("ca.pem"), "--retry-budget", "2s"],
        )
        .run();
        assert_failed_on_tls(&out, started, &format!("{protocol} to the sink binary"));
    }
    sink.stop();
    let doc = read_json(&summary);
    let got = ["spans", "metric_points", "log_records"].map(|k| doc[k].as_u64().unwrap());
    assert_eq!(got, total, "the sink holds exactly what was acknowledged");
}

#[test]
fn the_https_listener_keeps_the_size_limit_and_shuts_down_promptly() {
    let pki = Pki::new();
    let rt = runtime();
    let opts = SinkOptions {
        tls: Some(pki.server_tls(false)),
        max_request_bytes: 1000,
        ..SinkOptions::for_tests()
    };
    let sink = rt.block_on(sink::start(opts)).expect("start TLS sink");
    let client = reqwest::Client::builder()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(pki.ca.as_bytes()).expect("CA"))
        .timeout(Duration::from_secs(10))
        .build()
        .expect("client");
    let url = format!("{}/v1/traces", sink.http_endpoint());
    let post = |body: Vec<u8>| {
        rt.block_on(async {
            client
                .post(&url)
                .header("content-type", "application/x-protobuf")
                .body(body)
                .send()
                .await
        })
        .expect("request over TLS")
        .status()
        .as_u16()
    };
    assert_eq!(post(vec![b'a'; 5000]), 413);
    assert_eq!(post(Vec::new()), 200, "an empty export request is valid");
    assert_eq!(sink.stats.snapshot().rejected_requests, 1);

    // A kept-alive TLS connection (the client above) and connections that never
    // start the TLS handshake must not hold shutdown up.
    let silent: Vec<std::net::TcpStream> = [sink.http_addr, sink.grpc_addr]
        .iter()
        .map(|a| std::net::TcpStream::connect(a).expect("connect"))
        .collect();
    for s in &silent {
        wait_accepted(s.local_addr().expect("local"), s.peer_addr().expect("peer"));
    }
    let started = Instant::now();
    rt.block_on(sink.shutdown());
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "shutdown took {:?}",
        started.elapsed()
    );
    drop(silent);
}
