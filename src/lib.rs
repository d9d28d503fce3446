//! otelsim: an OpenTelemetry-native load and scenario simulator for agent telemetry.
//!
//! Pipeline: `registry` (files → validated model) → `plan` (scenario → resolved span plan)
//! → `generate` (plan + seeded RNG + anchor time → records) → `encode` (OTLP) → `export`
//! (batching, lossless sending, counters). `run` drives it for the CLI; `sink` receives.

#![warn(missing_docs)]

pub mod allocator;
pub mod app;
pub mod bench;
pub mod class;
pub mod cli;
pub mod diag;
pub mod embedded;
pub mod encode;
pub mod engine_sdk;
pub mod export;
pub mod generate;
pub mod ids;
pub mod incidents;
pub mod input_file;
pub mod intern;
pub mod load_profile;
pub mod logs;
pub mod metrics;
pub mod model;
pub mod pace;
pub mod plan;
pub mod progress;
pub mod record;
pub mod redact;
pub mod registry;
pub mod rpc_status;
pub mod run;
pub mod settings;
pub mod show;
pub mod sink;
pub mod stats;
pub mod tls;
pub mod tz;
pub mod verify;
pub mod yaml;
