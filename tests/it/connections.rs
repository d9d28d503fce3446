//! `--connections N`: requests are spread over N connections to the receiver,
//! seen by a counting TCP relay in front of the in-process sink, and every
//! span still arrives exactly once.

use crate::support::*;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

/// A relay on 127.0.0.1 to `upstream`; counts the connections that sent
/// anything (the preflight check connects and sends nothing).
fn counting_relay(
    rt: &tokio::runtime::Runtime,
    upstream: std::net::SocketAddr,
) -> (u16, Arc<AtomicUsize>) {
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .expect("bind the relay");
    let port = listener.local_addr().unwrap().port();
    let used = Arc::new(AtomicUsize::new(0));
    let counted = used.clone();
    rt.spawn(async move {
        while let Ok((mut client, _)) = listener.accept().await {
            let counted = counted.clone();
            tokio::spawn(async move {
                let mut first = vec![0u8; 64 * 1024];
                let n = match client.read(&mut first).await {
                    Ok(n) if n > 0 => n,
                    _ => return,
                };
                counted.fetch_add(1, SeqCst);
                let Ok(mut server) = tokio::net::TcpStream::connect(upstream).await else {
                    return;
                };
                if server.write_all(&first[..n]).await.is_ok() {
                    let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                }
            });
        }
    });
    (port, used)
}

/// Runs 2000 traces through the relay with `--connections n`; returns the
/// connections used, and asserts every generated span was acknowledged and received.
fn run_through_relay(protocol: &str, n: usize) -> usize {
    let rt = runtime();
    let sink = start_sink(&rt);
    let upstream = match protocol {
        "grpc" => sink.grpc_addr,
        _ => sink.http_addr,
    };
    let (port, used) = counting_relay(&rt, upstream);
    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().join("run.json");
    Otelsim::new()
        .cli(&format!(
            "run -q --count 2000 --interval 0 --no-metrics --no-logs --connections {n}"
        ))
        .endpoint(format!("http://127.0.0.1:{port}"))
        .protocol(protocol)
        .seed(7)
        .report(&report)
        .run_ok();
    let spans = &read_json(&report)["report"]["export"]["spans"];
    let generated = spans["generated"].as_u64().unwrap();
    assert!(generated > 0, "{spans}");
    assert_eq!(spans["acked"].as_u64(), Some(generated), "{spans}");
    assert_eq!(spans["failed"].as_u64(), Some(0), "{spans}");
    assert_eq!(received_spans(&sink).len() as u64, generated);
    let used = used.load(SeqCst);
    rt.block_on(sink.shutdown());
    used
}

#[test]
fn grpc_requests_take_exactly_n_connections_in_turn() {
    assert_eq!(run_through_relay("grpc", 1), 1);
    assert_eq!(run_through_relay("grpc", 3), 3);
}

#[test]
fn http_requests_open_at_least_n_connections() {
    // HTTP/1.1 carries one request at a time: a client may open more than one.
    let used = run_through_relay("http/protobuf", 6);
    assert!(used >= 6, "{used} connections");
}

#[test]
fn connections_out_of_range_are_refused() {
    let out = Otelsim::new()
        .cli("run --count 1 --connections 0")
        .run_exit(2);
    assert!(out.contains("--connections"), "{out}");
    assert!(out.contains("1..=64") || out.contains("1..65"), "{out}");
}
