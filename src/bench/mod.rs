//! `otelsim bench`: generate + encode the mixed workload in memory on one thread
//! and report spans/s, CPU µs per span, bytes per span and peak RSS. Nothing is
//! sent; this measures otelsim's own cost, the ceiling of any end-to-end rate.

pub mod sdk;

use crate::encode::wire::WireEncoder;
use crate::encode::Resources;
use crate::generate::generate_iteration;
use crate::registry::Picker;
use crate::run::Prepared;
use crate::settings::Settings;
use rand::SeedableRng;
use rand_pcg::Pcg64Mcg;
use std::time::Instant;

/// What `otelsim bench` measured: printed, and written as JSON by `--report`.
#[derive(Debug, serde::Serialize)]
pub struct BenchReport {
    /// Spans generated (the target, rounded up to whole picks).
    pub spans: u64,
    /// Traces generated.
    pub traces: u64,
    /// Wall time of the loop, in seconds.
    pub wall_s: f64,
    /// CPU time of the process during the loop (user + system), in seconds.
    pub cpu_s: f64,
    /// Spans generated per second of wall time.
    pub spans_per_s: f64,
    /// CPU time per span, in µs.
    pub cpu_us_per_span: f64,
    /// OTLP protobuf bytes per span (batches of about 512 spans); 0 without encoding.
    pub bytes_per_span: f64,
    /// Peak resident set size of the process, in MiB.
    pub peak_rss_mb: f64,
    /// Whether spans were encoded too (`--no-encode` turns it off).
    pub encode: bool,
}

/// CPU time of this process (user + system), in seconds.
fn cpu_seconds() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return 0.0;
    };
    // Fields after the command name (which may contain spaces) start after the last ')'.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    // utime and stime are fields 14 and 15 of the file: 12 and 13 after the ')'.
    (ticks(11) + ticks(12)) / 100.0
}

/// Peak resident set size (VmHWM), in MiB.
pub fn peak_rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

/// Generates (and encodes) at least `target_spans` spans of the weighted mix on this thread.
pub fn run(
    prep: &Prepared,
    settings: &Settings,
    target_spans: u64,
    encode_too: bool,
) -> Result<BenchReport, String> {
    let candidates = prep.registry.filtered(&[]);
    let picker = Picker::new(&candidates)?;
    let seed = settings.seed.unwrap_or(1);
    let mut rng = Pcg64Mcg::seed_from_u64(seed);
    let mut wire = WireEncoder::new(Resources::new(&prep.world, &[]));
    let mut buf: Vec<u8> = Vec::with_capacity(1 << 20);
    let anchor = settings.start_time_ns.unwrap_or(1_800_000_000_000_000_000);
    let (mut spans, mut traces, mut bytes) = (0u64, 0u64, 0u64);
    let mut batch = Vec::new();
    let mut batch_spans = 0usize;
    let cpu0 = cpu_seconds();
    let t0 = Instant::now();
    let mut iteration = 0u64;
    while spans < target_spans {
        iteration += 1;
        let name = picker.pick(&mut rng).to_string();
        let Some(plan) = prep.plans.get(&name) else {
            continue;
        };
        for t in generate_iteration(&prep.world, plan, anchor, iteration, &mut rng) {
            spans += t.spans.len() as u64;
            traces += 1;
            if encode_too {
                batch_spans += t.spans.len();
                batch.push(t);
                if batch_spans >= 512 {
                    buf.clear();
                    wire.traces(&batch, &mut buf);
                    bytes += buf.len() as u64;
                    batch.clear();
                    batch_spans = 0;
                }
            }
        }
    }
    if !batch.is_empty() {
        buf.clear();
        wire.traces(&batch, &mut buf);
        bytes += buf.len() as u64;
    }
    let wall = t0.elapsed().as_secs_f64();
    let cpu = (cpu_seconds() - cpu0).max(1e-9);
    Ok(BenchReport {
        spans,
        traces,
        wall_s: wall,
        cpu_s: cpu,
        spans_per_s: spans as f64 / wall,
        cpu_us_per_span: cpu * 1e6 / spans as f64,
        bytes_per_span: if encode_too {
            bytes as f64 / spans as f64
        } else {
            0.0
        },
        peak_rss_mb: peak_rss_mb(),
        encode: encode_too,
    })
}

impl BenchReport {
    /// The report as printed: two lines.
    pub fn render(&self) -> String {
        format!(
            "otelsim bench ({}): {} spans in {} traces · {:.2} s wall, {:.2} s CPU\n  {:.0} spans/s · {:.2} µs CPU per span · {:.0} bytes per span · peak RSS {:.1} MiB\n",
            if self.encode { "generate + encode OTLP protobuf, one thread" } else { "generate only, one thread" },
            self.spans,
            self.traces,
            self.wall_s,
            self.cpu_s,
            self.spans_per_s,
            self.cpu_us_per_span,
            self.bytes_per_span,
            self.peak_rss_mb
        )
    }
}
