//! Rate of the SDK path: pushes generated spans through an [`SdkEngine`],
//! unpaced or at a target rate, and reports what was offered, exported and
//! dropped per second. Something `otelsim bench` can call.

use crate::encode::Resources;
use crate::engine_sdk::{SdkEngine, SdkOptions, SdkStats};
use crate::export::ExportConfig;
use crate::generate::generate_iteration;
use crate::record::TraceRecord;
use crate::registry::Picker;
use crate::run::Prepared;
use anyhow::{anyhow, Result};
use rand::SeedableRng;
use rand_pcg::Pcg64Mcg;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Traces are generated up front into a pool of about this many spans and
/// offered round and round, so the rate is the SDK path's, not the generator's.
const POOL_SPANS: u64 = 50_000;

/// One measured run of the SDK path: timings, rates and the SDK's own counts.
#[derive(Clone, Debug, serde::Serialize)]
pub struct SdkMeasure {
    /// Target spans per second; `None`: unpaced.
    pub rate: Option<f64>,
    /// Distinct generated spans that were offered round and round.
    pub pool_spans: u64,
    /// Seconds spent offering spans.
    pub submit_s: f64,
    /// Seconds until the engine had shut down.
    pub total_s: f64,
    /// Offered spans over `submit_s`.
    pub offered_per_s: f64,
    /// Exported spans over `total_s`.
    pub exported_per_s: f64,
    /// What the SDK did with the offered spans.
    pub stats: SdkStats,
}

impl SdkMeasure {
    /// One human-readable line (with newline) for the bench report.
    pub fn render(&self) -> String {
        let s = &self.stats;
        format!(
            "SDK engine ({}): {} spans offered in {:.2} s ({:.0}/s); {} exported in {:.2} s ({:.0}/s); {} dropped ({:.1}%), {} failed; {} requests, {} pipelines{}\n",
            self.rate
                .map_or_else(|| "unpaced".to_string(), |r| format!("paced at {r:.0} spans/s")),
            s.offered_spans,
            self.submit_s,
            self.offered_per_s,
            s.exported_spans,
            self.total_s,
            self.exported_per_s,
            s.dropped_spans,
            100.0 * s.dropped_spans as f64 / s.offered_spans.max(1) as f64,
            s.failed_spans,
            s.export_requests,
            s.pipelines,
            s.first_error
                .as_deref()
                .map_or_else(String::new, |e| format!("; first error: {e}")),
        )
    }
}

fn pool(prep: &Prepared, seed: u64, spans: u64) -> Result<Vec<TraceRecord>> {
    let candidates = prep.registry.filtered(&[]);
    let picker = Picker::new(&candidates).map_err(|e| anyhow!(e))?;
    let mut rng = Pcg64Mcg::seed_from_u64(seed);
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let (mut out, mut n) = (Vec::new(), 0u64);
    // Bounded: every pick of a compiled scenario yields at least one span.
    for iteration in 0..spans.saturating_mul(4).max(1000) {
        if n >= spans {
            break;
        }
        let Some(plan) = prep.plans.get(picker.pick(&mut rng)) else {
            continue;
        };
        for t in generate_iteration(&prep.world, plan, now, iteration, &mut rng) {
            n += t.spans.len() as u64;
            out.push(t);
        }
    }
    if out.is_empty() {
        return Err(anyhow!("the workload generated no spans"));
    }
    Ok(out)
}

/// Offers `spans` spans (at `rate` spans/s, or as fast as possible) to a new
/// engine for `cfg`, then shuts it down and reports.
pub fn measure(
    prep: &Prepared,
    cfg: &ExportConfig,
    opts: &SdkOptions,
    spans: u64,
    rate: Option<f64>,
    seed: u64,
) -> Result<SdkMeasure> {
    let traces = pool(prep, seed, spans.min(POOL_SPANS))?;
    let pool_spans = traces.iter().map(|t| t.spans.len() as u64).sum();
    let engine = SdkEngine::start_with(cfg, &Resources::new(&prep.world, &[]), opts)?;
    let rate = rate.filter(|r| r.is_finite() && *r > 0.0);
    let t0 = Instant::now();
    let mut offered = 0u64;
    'offer: loop {
        for t in &traces {
            if offered >= spans {
                break 'offer;
            }
            if let Some(r) = rate {
                let due = Duration::from_secs_f64(offered as f64 / r);
                if let Some(wait) = due.checked_sub(t0.elapsed()) {
                    std::thread::sleep(wait);
                }
            }
            engine.submit(std::slice::from_ref(t));
            offered += t.spans.len() as u64;
        }
    }
    let submit_s = t0.elapsed().as_secs_f64();
    let stats = engine.finish();
    let total_s = t0.elapsed().as_secs_f64();
    Ok(SdkMeasure {
        rate,
        pool_spans,
        submit_s,
        total_s,
        offered_per_s: stats.offered_spans as f64 / submit_s.max(1e-9),
        exported_per_s: stats.exported_spans as f64 / total_s.max(1e-9),
        stats,
    })
}
