//! A run: what it is made of (`job`), the orchestration that starts the exporter
//! and the workers and builds the report (`runner`, `report`), and one worker's
//! loop (`worker`, with the realtime holding area in `held`).
//!
//! Layering: `job` is below the others; `worker` knows `job`; `runner` knows both.

mod held;
mod job;
pub mod merge;
mod report;
mod runner;
pub mod schedule;
pub mod shard;
mod worker;

pub use job::{
    generate_iteration, new_run_id, now_ns, prepare, prepare_with_flow, Engine, Load, Picks,
    Prepared, RunSpec, ScenarioCount, Timing, TraceFlow, MAX_RUN_ID_LEN, RUN_ID_KEY,
};
pub use report::{AckedTraces, Pacing, RunReport, MAX_LISTED_TRACES};
pub use runner::execute;
