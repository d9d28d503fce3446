//! The integration tests, one binary (the crate is linked once): a module per
//! area, the shared helpers in `support` (the `Otelsim` command builder, bounded
//! waits, the in-process sink). Run one area with `cargo test --test it faults`,
//! one test with its path, e.g. `cargo test --test it cli::bench_`.

mod agent_loop;
mod agent_trace;
mod alloc;
mod support;

mod bad_input;
mod buffers;
mod cli;
mod connections;
mod delivery;
mod deploy;
mod export_e2e;
mod faults;
mod first_hour;
mod genai_conventions;
mod genai_profile;
mod golden;
mod grpc_client;
mod hardening_export;
mod hostile_input;
mod house;
mod instability;
mod late_v1;
mod microservices;
mod mlflow;
mod pacing;
mod partial_load;
mod phoenix;
mod property;
mod realism;
mod robustness;
mod schedule;
mod sdk_engine;
mod semconv_coverage;
mod session_store;
mod shards;
mod signals;
mod sink_basic;
mod sink_fuzz;
mod sink_hostile;
mod tls;
mod trace_only_receivers;
mod v2_format;
mod verify;
