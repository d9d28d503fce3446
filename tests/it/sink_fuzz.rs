//! Hostile input for the sink: random bytes and mutations of real OTLP
//! requests (protobuf and JSON, traces and logs) through the same decode and
//! record path the servers use, and over real HTTP to a running sink. Nothing
//! may panic, every request gets an answer, and the sink keeps serving.

use crate::support::*;
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use otelsim::sink::{otlp_json, SinkStats, Transport};
use proptest::prelude::*;
use prost::Message as _;
use rand::SeedableRng;
use std::sync::OnceLock;

/// Real requests of a few realistic picks: (traces protobuf, logs protobuf, traces JSON).
fn samples() -> &'static (Vec<u8>, Vec<u8>, Vec<u8>) {
    static S: OnceLock<(Vec<u8>, Vec<u8>, Vec<u8>)> = OnceLock::new();
    S.get_or_init(|| {
        let opts = otelsim::plan::WorldOptions {
            vendor: "vendor".into(),
            ..Default::default()
        };
        let prep = otelsim::run::prepare(&Default::default(), &opts).expect("bundled files");
        let resources = otelsim::encode::Resources::new(
            &prep.world,
            &[(
                "otelsim.run.id".into(),
                otelsim::model::AttrValue::str("fuzz"),
            )],
        );
        let mut rng = rand_pcg::Pcg64Mcg::seed_from_u64(3);
        let mut traces = Vec::new();
        for name in [
            "new_claim_phone",
            "tool_retry_backoff",
            "request_blocked_invalid_payload",
        ] {
            let plan = &prep.plans[name];
            traces.extend(otelsim::run::generate_iteration(
                &prep.world,
                plan,
                1_800_000_000_000_000_000,
                &mut rng,
            ));
        }
        let mut logs = Vec::new();
        for t in &traces {
            otelsim::logs::derive(&prep.world, t, &mut logs);
        }
        let tr = otelsim::encode::traces_request(&traces, &resources);
        let json = serde_json::to_vec(&tr).expect("json");
        (
            tr.encode_to_vec(),
            otelsim::encode::logs_request(&logs, &resources).encode_to_vec(),
            json,
        )
    })
}

fn mutate(base: &[u8], cut: usize, flips: &[(usize, u8)], insert: &[u8]) -> Vec<u8> {
    let mut b = base.to_vec();
    for (i, v) in flips {
        if !b.is_empty() {
            let n = b.len();
            b[i % n] ^= v | 1;
        }
    }
    if !insert.is_empty() && !b.is_empty() {
        let at = cut % b.len();
        b.splice(at..at, insert.iter().copied());
    }
    b.truncate(b.len().saturating_sub(cut % 64));
    b
}

/// The sink's own decode + record path, as the gRPC and HTTP servers run it.
fn feed(stats: &SinkStats, body: &[u8]) {
    if let Ok(r) = ExportTraceServiceRequest::decode(body) {
        stats.record_traces(Transport::Grpc, body.len(), r);
    }
    if let Ok(r) = ExportLogsServiceRequest::decode(body) {
        stats.record_logs(Transport::Grpc, body.len(), r);
    }
    if let Ok(r) = otlp_json::decode_traces(body) {
        stats.record_traces(Transport::HttpJson, body.len(), r);
    }
    let _ = otlp_json::decode_logs(body);
    let _ = otlp_json::decode_metrics(body);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, .. ProptestConfig::default() })]

    #[test]
    fn random_bytes_never_panic_the_decoders_or_the_checks(body in prop::collection::vec(any::<u8>(), 0..2048)) {
        let stats = SinkStats::new(false);
        feed(&stats, &body);
        let _ = stats.snapshot();
    }

    #[test]
    fn mutated_real_requests_never_panic_the_decoders_or_the_checks(
        which in 0usize..3,
        cut in 0usize..100_000,
        flips in prop::collection::vec((any::<usize>(), any::<u8>()), 0..8),
        insert in prop::collection::vec(any::<u8>(), 0..16),
    ) {
        let (t, l, j) = samples();
        let base = [t, l, j][which];
        let stats = SinkStats::new(false);
        feed(&stats, &mutate(base, cut, &flips, &insert));
        // The per-run checks (duplicates, parents, nesting) run on whatever was accepted.
        let snap = stats.snapshot();
        for run in snap.runs.values() {
            prop_assert!(run.unique_spans + run.duplicate_spans + run.untracked_spans <= run.spans + 1);
        }
    }
}

#[test]
fn hostile_http_bodies_get_answers_and_the_sink_keeps_serving() {
    let rt = runtime();
    let sink = start_sink(&rt);
    let (t, l, j) = samples();
    let url = |s: &str| format!("{}/v1/{s}", sink.http_endpoint());
    let client = reqwest::Client::new();
    let mut rng = rand_pcg::Pcg64Mcg::seed_from_u64(11);
    let mut sent = 0u64;
    rt.block_on(async {
        for i in 0..150usize {
            use rand::Rng as _;
            let (base, ctype, signal) = match i % 3 {
                0 => (t, "application/x-protobuf", "traces"),
                1 => (l, "application/x-protobuf", "logs"),
                _ => (j, "application/json", "traces"),
            };
            let flips: Vec<(usize, u8)> = (0..rng.random_range(0..6))
                .map(|_| (rng.random::<u32>() as usize, rng.random()))
                .collect();
            let body = mutate(base, rng.random::<u32>() as usize, &flips, &[]);
            let mut req = client.post(url(signal)).header("content-type", ctype);
            if i % 7 == 0 {
                // Claims gzip, is not.
                req = req.header("content-encoding", "gzip");
            }
            let status = req.body(body).send().await.expect("an answer").status();
            assert!(
                status.is_success() || status.is_client_error(),
                "request {i}: {status}"
            );
            sent += 1;
        }
        // Still serving real requests after all that.
        let ok = client
            .post(url("traces"))
            .header("content-type", "application/x-protobuf")
            .body(t.clone())
            .send()
            .await
            .unwrap()
            .status();
        assert!(ok.is_success());
    });
    let snap = sink.stats.snapshot();
    assert_eq!(
        snap.trace_requests + snap.logs_requests + snap.metrics_requests + snap.rejected_requests,
        sent + 1,
        "every request was either accepted or refused and counted"
    );
    rt.block_on(sink.shutdown());
}
