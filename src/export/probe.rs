//! Diagnoses the commonest first-hour mistakes: the protocol of one port sent
//! to the other (gRPC to a collector's OTLP/HTTP port 4318, OTLP/HTTP to its
//! gRPC port 4317), and `http://` to a TLS port. After a request fails, short
//! probes on fresh connections ask the endpoint in the protocol otelsim meant
//! to speak; an answer only the other protocol gives is a certain mismatch,
//! said in one line. Plaintext endpoints only: over TLS, ALPN settles the
//! protocol before any request.

use super::Protocol;
use std::time::Duration;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

/// How long the probe may take to connect, and then to get an answer.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// The HTTP/2 connection preface and an empty SETTINGS frame: how a gRPC
/// client opens a plaintext connection.
const H2_HELLO: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00";

/// What the first bytes of an answer show.
#[derive(Debug, PartialEq, Eq)]
enum Answer {
    /// An HTTP/1.x status line.
    Http1,
    /// An HTTP/2 frame on the connection's stream 0 (SETTINGS or GOAWAY): a
    /// server that speaks HTTP/2 (prior knowledge), as gRPC servers do.
    Http2,
    /// A TLS record (an alert or a handshake): the port wants `https://`.
    Tls,
    /// Nothing, or nothing recognisable.
    Unknown,
}

fn classify(answer: &[u8]) -> Answer {
    if answer.starts_with(b"HTTP/1.") {
        return Answer::Http1;
    }
    if answer.len() >= 2 && matches!(answer[0], 0x15 | 0x16) && answer[1] == 0x03 {
        return Answer::Tls;
    }
    let frame = answer.len() >= 9 && matches!(answer[3], 0x04 | 0x07) && answer[5..9] == [0; 4];
    if frame {
        Answer::Http2
    } else {
        Answer::Unknown
    }
}

/// The HTTP status of a gRPC answer that carried no gRPC status (tonic says
/// so in the status message), when it says the endpoint does not serve gRPC
/// there (404, 405, 415) rather than a passing proxy failure (502, 503, …).
fn plain_http_status(failure: &str) -> Option<u16> {
    let (_, rest) =
        failure.split_once("grpc-status header missing, mapped from HTTP status code ")?;
    let code: u16 = rest.get(..3)?.parse().ok()?;
    matches!(code, 404 | 405 | 415).then_some(code)
}

/// Asks `url` (the endpoint of a request that just failed with `failure`) in
/// `protocol`; says what was expected and what answered when the endpoint
/// speaks another protocol, `None` when it cannot tell (or the endpoint is fine).
pub(super) async fn mismatch(
    url: &str,
    protocol: Protocol,
    shown: &str,
    failure: &str,
) -> Option<String> {
    let parsed = reqwest::Url::parse(url).ok()?;
    if parsed.scheme() != "http" {
        return None;
    }
    let host = parsed
        .host_str()?
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_string();
    let port = parsed.port_or_known_default()?;
    let http1 = format!("GET / HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
    let answer = |hello: Vec<u8>| {
        let host = host.clone();
        async move {
            let got = tokio::time::timeout(PROBE_TIMEOUT, ask(&host, port, &hello)).await;
            classify(&got.unwrap_or_default())
        }
    };
    let grpc_hint = "did you mean --protocol http/protobuf (OTLP/HTTP, usually port 4318), or the collector's gRPC port (usually 4317)?";
    let answered = match protocol {
        Protocol::Grpc => match answer(H2_HELLO.to_vec()).await {
            Answer::Http1 => "HTTP/1.1".to_string(),
            Answer::Tls => return Some(tls_hint(shown)),
            // An HTTP server that also speaks HTTP/2 answered the gRPC request
            // itself, with a plain HTTP status.
            Answer::Http2 => {
                let code = plain_http_status(failure)?;
                match answer(http1.into_bytes()).await {
                    Answer::Http1 => format!(
                        "HTTP/1.1 (and HTTP {code} without a gRPC status to the gRPC request)"
                    ),
                    _ => format!("HTTP {code} without a gRPC status"),
                }
            }
            // Some HTTP/1.1 servers hang up on the HTTP/2 preface without a word:
            // ask them in HTTP/1.1 to tell them from a server that is simply gone.
            Answer::Unknown => match answer(http1.clone().into_bytes()).await {
                Answer::Http1 => {
                    "HTTP/1.1 (it closed the connection on the HTTP/2 preface)".to_string()
                }
                _ => return None,
            },
        },
        Protocol::HttpProtobuf | Protocol::HttpJson => {
            return match answer(http1.into_bytes()).await {
                Answer::Http2 => Some(format!(
                    "sent OTLP/HTTP (HTTP/1.1) to {shown}, and the endpoint answered HTTP/2 only, as a gRPC server does — did you mean --protocol grpc (usually port 4317), or the collector's OTLP/HTTP port (usually 4318)?"
                )),
                Answer::Tls => Some(tls_hint(shown)),
                Answer::Http1 | Answer::Unknown => None,
            };
        }
    };
    Some(format!(
        "sent OTLP/gRPC (HTTP/2) to {shown}, and the endpoint answered {answered} — {grpc_hint}"
    ))
}

fn tls_hint(shown: &str) -> String {
    format!(
        "sent plaintext to {shown}, and the endpoint answered with TLS — did you mean https://?"
    )
}

/// Sends `hello` on a fresh connection and reads the first bytes of the answer.
async fn ask(host: &str, port: u16, hello: &[u8]) -> Vec<u8> {
    let Ok(mut tcp) = tokio::net::TcpStream::connect((host, port)).await else {
        return Vec::new();
    };
    if tcp.write_all(hello).await.is_err() {
        return Vec::new();
    }
    let mut answer = Vec::with_capacity(16);
    let mut buf = [0u8; 16];
    // Enough bytes to tell a status line from a frame header; the caller's timeout bounds this.
    while answer.len() < 9 {
        match tcp.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => answer.extend_from_slice(&buf[..n]),
        }
    }
    answer
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_lines_and_frames_are_told_apart() {
        assert_eq!(
            classify(b"HTTP/1.1 505 HTTP Version Not Supported"),
            Answer::Http1
        );
        assert_eq!(
            classify(b"\x00\x00\x06\x04\x00\x00\x00\x00\x00\x00\x03"),
            Answer::Http2
        );
        assert_eq!(
            classify(b"\x00\x00\x08\x07\x00\x00\x00\x00\x00"),
            Answer::Http2
        );
        // A frame on another stream, a short read, silence: nothing certain.
        assert_eq!(
            classify(b"\x00\x00\x06\x04\x00\x00\x00\x00\x01"),
            Answer::Unknown
        );
        assert_eq!(classify(b"HTTP"), Answer::Unknown);
        assert_eq!(classify(b""), Answer::Unknown);
        assert_eq!(classify(b"\x15\x03\x03\x00\x02\x02\x32"), Answer::Tls);
    }

    #[test]
    fn only_statuses_that_mean_no_grpc_here_count() {
        let m = |code: u16| {
            format!("gRPC Unimplemented: grpc-status header missing, mapped from HTTP status code {code}")
        };
        assert_eq!(plain_http_status(&m(404)), Some(404));
        assert_eq!(plain_http_status(&m(415)), Some(415));
        // A proxy's 502/503 passes; a real gRPC status is no HTTP answer.
        assert_eq!(plain_http_status(&m(503)), None);
        assert_eq!(
            plain_http_status("gRPC Unavailable: connection refused"),
            None
        );
    }
}
