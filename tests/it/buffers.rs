//! Encode buffers reused across requests (issue #18): a run's trace requests
//! are encoded into the buffers of requests already acknowledged, over
//! HTTP/protobuf and gRPC, gzipped or not, and every span still arrives.
//! `OTELSIM_BUFFER_STATS` makes each OTLP writer say on stderr what its
//! buffers did.

use crate::support::*;

/// Requests that may wait in a writer's queue, and requests in flight at once
/// (`ExportConfig`'s defaults): the pool keeps that many idle buffers and one more.
const QUEUE: u64 = 16;
const SENDERS: u64 = 4;
const BOUND: u64 = QUEUE + SENDERS + 1;

/// What one writer's buffers did, from its `request buffers:` line.
#[derive(Debug)]
struct Stats {
    reused: u64,
    fresh: u64,
    shared: u64,
    most: u64,
    bound: u64,
}

fn stats(out: &str) -> Stats {
    let line = out
        .lines()
        .find(|l| l.contains("request buffers: "))
        .unwrap_or_else(|| panic!("no buffer line in:\n{out}"));
    let counts = line.split("request buffers: ").nth(1).unwrap();
    // `N reused, N fresh, N still shared when done, N not kept, at most N kept (bound N)`
    let numbers: Vec<u64> = counts
        .split(|c: char| !c.is_ascii_digit())
        .filter(|s| !s.is_empty())
        .map(|s| s.parse().unwrap())
        .collect();
    let [reused, fresh, shared, _not_kept, most, bound] = numbers[..] else {
        panic!("unexpected buffer line: {line}");
    };
    Stats {
        reused,
        fresh,
        shared,
        most,
        bound,
    }
}

/// A run of `count` requests (one worker, traces only) into the real sink over
/// `protocol`; every span acknowledged and received. Returns the writer's
/// buffer stats and its trace requests.
fn run(protocol: &str, extra: &[&str]) -> (Stats, u64) {
    let rt = runtime();
    let sink = start_sink(&rt);
    let endpoint = match protocol {
        "grpc" => sink.grpc_endpoint(),
        _ => sink.http_endpoint(),
    };
    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().join("r.json");
    let out = Otelsim::new()
        .cli("run -q --count 3000 --interval 0 --workers 1 --no-metrics --no-logs")
        .args(extra)
        .seed(5)
        .endpoint(endpoint)
        .protocol(protocol)
        .report(&report)
        .env("OTELSIM_BUFFER_STATS", "1")
        .run_ok();
    let spans = &read_json(&report)["report"]["outputs"][0]["spans"];
    let (generated, acked) = (spans["generated"].as_u64(), spans["acked"].as_u64());
    assert!(generated > Some(0), "{spans}");
    assert_eq!(acked, generated, "{spans}");
    assert_eq!(sink.stats.snapshot().spans, acked.unwrap());
    let requests = spans["requests_sent"].as_u64().unwrap();
    rt.block_on(sink.shutdown());
    let s = stats(&out);
    // Every request was encoded into one buffer, kept or new.
    assert_eq!(s.reused + s.fresh, requests, "{s:?}");
    (s, requests)
}

/// Most requests after the pool's first round reuse a buffer, and the pool
/// kept no more than its bound.
fn assert_reused(s: &Stats, requests: u64) {
    assert!(requests > 4 * BOUND, "too few requests to tell: {requests}");
    // The first buffers are new while the queue and the senders fill up.
    let after_first = requests - (BOUND + 1);
    assert!(s.reused * 10 >= after_first * 9, "{s:?} of {requests}");
    assert_eq!(s.bound, BOUND, "{s:?}");
    assert!(s.most <= s.bound, "{s:?}");
}

#[test]
fn http_protobuf_requests_reuse_the_buffers_of_acknowledged_ones() {
    let (s, requests) = run("http/protobuf", &[]);
    assert_reused(&s, requests);
    // Nothing else held the bytes once the request was answered.
    assert_eq!(s.shared, 0, "{s:?}");
}

#[test]
fn grpc_requests_reuse_the_buffers_of_acknowledged_ones() {
    // h2 lets go of the request's bytes once they are written, before the
    // answer comes: the buffer comes back as with HTTP/1.
    let (s, requests) = run("grpc", &[]);
    assert_reused(&s, requests);
    assert_eq!(s.shared, 0, "{s:?}");
}

#[test]
fn a_gzipped_request_gives_its_raw_buffer_back_once_compressed() {
    for protocol in ["http/protobuf", "grpc"] {
        let (s, requests) = run(protocol, &["--gzip"]);
        assert_reused(&s, requests);
        // The raw bytes were only ever ours: compressed before any attempt.
        assert_eq!(s.shared, 0, "{protocol}: {s:?}");
    }
}
