//! SDK engine: emits otelsim's generated spans through the official OpenTelemetry
//! Rust SDK (`BatchSpanProcessor` + `opentelemetry-otlp` exporter) instead of
//! otelsim's own lossless exporter, so the two can be compared and the SDK's
//! drops under load can be counted.
//!
//! Pre-built spans enter the SDK where a finished span of the SDK's own tracer
//! would: as `SpanData` handed to `BatchSpanProcessor::on_end`. From there on
//! everything is the SDK's: its bounded queue (dropping when full), its batching
//! thread and timer, and the OTLP exporter's encoding and transport. The tracer,
//! sampler, id generator and span limits are skipped: the ids and timestamps are
//! otelsim's, every span is sampled, and the bundled workload's spans stay
//! under the SDK's default limits of 128 attributes, events and links (the
//! tests check a sample).
//!
//! One processor (one SDK pipeline with its own resource and exporter) per
//! otelsim resource: data plane, control plane, and each component, as if each
//! simulated service ran its own SDK.

mod convert;
mod counting;

use crate::encode::Resources;
use crate::export::{endpoint_url, http_signal_url, ExportConfig, Protocol};
use crate::record::{ServiceId, TraceRecord};
use anyhow::{bail, Context as _, Result};
use counting::{Counting, Tally};
use opentelemetry::InstrumentationScope;
use opentelemetry_otlp::{WithExportConfig, WithHttpConfig, WithTonicConfig};
use opentelemetry_sdk::trace::{BatchConfigBuilder, BatchSpanProcessor, SpanProcessor};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, RwLock};
use std::time::Duration;

/// Batch settings; `None` keeps the SDK's default (queue 2048, batch 512,
/// 5 s delay, or the `OTEL_BSP_*` variables, which the SDK reads itself).
#[derive(Clone, Debug, Default)]
pub struct SdkOptions {
    /// Spans the processor holds before it drops new ones.
    pub max_queue_size: Option<usize>,
    /// Most spans in one export request.
    pub max_export_batch_size: Option<usize>,
    /// How long the processor waits before exporting a batch that is not full.
    pub scheduled_delay: Option<Duration>,
    /// How long [`SdkEngine::finish`] waits for each pipeline to export what it
    /// holds. `None`: long enough for every queued batch to run into the request
    /// timeout, so a hanging endpoint still ends in bounded time.
    pub shutdown_timeout: Option<Duration>,
}

const SDK_DEFAULT_QUEUE: usize = 2048;
const SDK_DEFAULT_BATCH: usize = 512;

impl SdkOptions {
    fn batch_config(&self) -> opentelemetry_sdk::trace::BatchConfig {
        let mut b = BatchConfigBuilder::default();
        if let Some(q) = self.max_queue_size {
            b = b.with_max_queue_size(q.max(1));
        }
        if let Some(n) = self.max_export_batch_size {
            b = b.with_max_export_batch_size(n.max(1));
        }
        if let Some(d) = self.scheduled_delay {
            b = b.with_scheduled_delay(d);
        }
        b.build()
    }

    fn shutdown_timeout(&self, request_timeout: Duration) -> Duration {
        if let Some(t) = self.shutdown_timeout {
            return t;
        }
        let queue = self.max_queue_size.unwrap_or(SDK_DEFAULT_QUEUE).max(1);
        let batch = self
            .max_export_batch_size
            .unwrap_or(SDK_DEFAULT_BATCH)
            .max(1);
        let batches = queue.div_ceil(batch.min(queue)) as u32 + 1;
        request_timeout.saturating_mul(batches) + Duration::from_secs(1)
    }
}

/// What the SDK did with the spans it was given. After a complete shutdown
/// `offered_spans == exported_spans + failed_spans + dropped_spans` exactly.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct SdkStats {
    /// Spans handed to a batch processor (or lost before one could be built).
    pub offered_spans: u64,
    /// Spans in export calls that succeeded.
    pub exported_spans: u64,
    /// Spans in export calls that failed (the SDK does not retry them), plus
    /// spans whose pipeline could not be built.
    pub failed_spans: u64,
    /// Spans that never reached an export call: dropped by the processor's full
    /// queue, or still queued when a shutdown timed out (see `shutdown_complete`).
    pub dropped_spans: u64,
    /// Successful export requests.
    pub export_requests: u64,
    /// Failed export calls (and pipelines that could not be built).
    pub export_errors: u64,
    /// The first export error's message, to show why spans failed.
    pub first_error: Option<String>,
    /// Every pipeline shut down within its timeout; when false, `dropped_spans`
    /// also holds spans that were still queued or in flight.
    pub shutdown_complete: bool,
    /// Pipelines (one per resource) that were started.
    pub pipelines: u64,
}

/// Where and how the OTLP exporters send, resolved once from the [`ExportConfig`].
#[derive(Clone, Debug)]
struct Target {
    protocol: Protocol,
    url: String,
    headers: Vec<(String, String)>,
    gzip: bool,
    timeout: Duration,
}

impl Target {
    fn new(cfg: &ExportConfig) -> Result<Self> {
        if cfg.output_file.is_some() {
            bail!("the SDK engine sends over the network only: --output-file is not supported with it");
        }
        let url = match cfg.protocol {
            Protocol::HttpJson => bail!(
                "the SDK engine supports grpc and http/protobuf; http/json is otelsim's own exporter only"
            ),
            Protocol::Grpc => cfg.signal_endpoints[0]
                .clone()
                .unwrap_or_else(|| endpoint_url(&cfg.endpoint)),
            Protocol::HttpProtobuf => cfg.signal_endpoints[0]
                .clone()
                .unwrap_or_else(|| http_signal_url(&cfg.endpoint, "traces")),
        };
        Ok(Target {
            protocol: cfg.protocol,
            url,
            headers: cfg.headers.clone(),
            gzip: cfg.gzip,
            timeout: cfg.request_timeout,
        })
    }

    /// The SDK's OTLP span exporter for this target. gRPC channels are created
    /// inside `rt`, which drives their connections.
    fn exporter(
        &self,
        rt: Option<&tokio::runtime::Runtime>,
    ) -> Result<opentelemetry_otlp::SpanExporter> {
        let built = match self.protocol {
            Protocol::Grpc => {
                let rt = rt.context("internal: no runtime for the gRPC exporter")?;
                let _entered = rt.enter();
                let mut meta = tonic::metadata::MetadataMap::new();
                for (k, v) in &self.headers {
                    let key =
                        tonic::metadata::MetadataKey::from_bytes(k.to_ascii_lowercase().as_bytes())
                            .with_context(|| format!("invalid header name `{k}`"))?;
                    let val = v
                        .parse()
                        .with_context(|| format!("invalid value for header `{k}`"))?;
                    meta.append(key, val);
                }
                let mut b = opentelemetry_otlp::SpanExporter::builder()
                    .with_tonic()
                    .with_endpoint(self.url.clone())
                    .with_timeout(self.timeout)
                    .with_metadata(meta);
                if self.gzip {
                    b = b.with_compression(opentelemetry_otlp::Compression::Gzip);
                }
                b.build()
            }
            _ => {
                let mut b = opentelemetry_otlp::SpanExporter::builder()
                    .with_http()
                    .with_protocol(opentelemetry_otlp::Protocol::HttpBinary)
                    .with_endpoint(self.url.clone())
                    .with_timeout(self.timeout)
                    .with_headers(self.headers.iter().cloned().collect());
                if self.gzip {
                    b = b.with_compression(opentelemetry_otlp::Compression::Gzip);
                }
                b.build()
            }
        };
        built.with_context(|| format!("building the SDK's OTLP exporter for {}", self.url))
    }
}

/// Spans through the SDK, one batch-processor pipeline per resource.
pub struct SdkEngine {
    target: Target,
    resources: Resources,
    opts: SdkOptions,
    pipelines: RwLock<HashMap<ServiceId, Arc<BatchSpanProcessor>>>,
    scopes: RwLock<HashMap<crate::record::Key, InstrumentationScope>>,
    tally: Arc<Tally>,
    offered: AtomicU64,
    /// Spans whose pipeline could not be built (counted as failed).
    unbuilt: AtomicU64,
    started: AtomicU64,
    /// Drives the gRPC exporters' connections; `None` for HTTP (the blocking
    /// reqwest client brings its own).
    runtime: Option<tokio::runtime::Runtime>,
    finished: bool,
}

impl crate::export::SpanSink for SdkEngine {
    fn submit(&self, traces: &[TraceRecord]) {
        SdkEngine::submit(self, traces);
    }
}

impl std::fmt::Debug for SdkEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SdkEngine")
            .field("target", &self.target)
            .field("opts", &self.opts)
            .finish_non_exhaustive()
    }
}

impl SdkEngine {
    /// Starts with the SDK's default batch settings.
    pub fn start(cfg: &ExportConfig, resources: &Resources) -> Result<Self> {
        Self::start_with(cfg, resources, &SdkOptions::default())
    }

    /// Starts the data-plane and control-plane pipelines (component pipelines
    /// start with their first span). Refuses http/json and file output.
    pub fn start_with(
        cfg: &ExportConfig,
        resources: &Resources,
        opts: &SdkOptions,
    ) -> Result<Self> {
        let target = Target::new(cfg)?;
        let runtime = match target.protocol {
            Protocol::Grpc => Some(
                // Default worker count (one per core), as under `#[tokio::main]`.
                tokio::runtime::Builder::new_multi_thread()
                    .thread_name("otelsim-sdk-grpc")
                    .enable_all()
                    .build()
                    .context("starting the SDK engine's gRPC runtime")?,
            ),
            _ => None,
        };
        let engine = SdkEngine {
            target,
            resources: resources.clone(),
            opts: opts.clone(),
            pipelines: RwLock::new(HashMap::new()),
            scopes: RwLock::new(HashMap::new()),
            tally: Arc::new(Tally::default()),
            offered: AtomicU64::new(0),
            unbuilt: AtomicU64::new(0),
            started: AtomicU64::new(0),
            runtime,
            finished: false,
        };
        // Building these now reports a bad endpoint or header before any span.
        for plane in crate::plan::Services::PLANES {
            engine.pipeline(plane)?;
        }
        Ok(engine)
    }

    /// The pipeline of `key`, built on first use.
    fn pipeline(&self, key: ServiceId) -> Result<Arc<BatchSpanProcessor>> {
        if let Some(p) = self
            .pipelines
            .read()
            .ok()
            .and_then(|m| m.get(&key).cloned())
        {
            return Ok(p);
        }
        let mut map = self
            .pipelines
            .write()
            .map_err(|_| anyhow::anyhow!("SDK engine state poisoned"))?;
        if let Some(p) = map.get(&key) {
            return Ok(p.clone());
        }
        let exporter = Counting::new(
            self.target.exporter(self.runtime.as_ref())?,
            self.tally.clone(),
        );
        let mut processor = BatchSpanProcessor::new(exporter, self.opts.batch_config());
        // What SdkTracerProvider's builder does with its resource.
        processor.set_resource(&convert::resource(
            &self.resources.resource(key),
            self.resources.schema_url(),
        ));
        let p = Arc::new(processor);
        map.insert(key, p.clone());
        self.started.fetch_add(1, Relaxed);
        Ok(p)
    }

    fn scope(&self, name: &crate::record::Key) -> InstrumentationScope {
        if let Some(s) = self.scopes.read().ok().and_then(|m| m.get(name).cloned()) {
            return s;
        }
        let s = convert::scope(name, self.resources.schema_url());
        if let Ok(mut m) = self.scopes.write() {
            m.insert(*name, s.clone());
        }
        s
    }

    /// Hands every span to its pipeline's batch processor, as the SDK's tracer
    /// does when a span ends. Never blocks: a full queue drops the span, as the
    /// SDK does.
    pub fn submit(&self, traces: &[TraceRecord]) {
        for t in traces {
            let scope = self.scope(&t.scope);
            for s in &t.spans {
                self.offered.fetch_add(1, Relaxed);
                match self.pipeline(s.service) {
                    Ok(p) => p.on_end(convert::span_data(&t.trace_id, s, &scope)),
                    Err(e) => {
                        if self.unbuilt.fetch_add(1, Relaxed) == 0 {
                            self.tally.errors.fetch_add(1, Relaxed);
                            self.tally.record_error(format!("{e:#}"));
                        }
                    }
                }
            }
        }
    }

    /// Spans offered so far.
    pub fn offered(&self) -> u64 {
        self.offered.load(Relaxed)
    }

    /// Shuts every pipeline down (which exports everything still queued), all at
    /// once and each within the shutdown timeout, and reports. Blocks: from async
    /// code call it through `spawn_blocking`.
    pub fn finish(mut self) -> SdkStats {
        self.close()
    }

    fn close(&mut self) -> SdkStats {
        self.finished = true;
        let pipelines: Vec<Arc<BatchSpanProcessor>> = match self.pipelines.write() {
            Ok(mut m) => m.drain().map(|(_, p)| p).collect(),
            Err(_) => Vec::new(),
        };
        let timeout = self.opts.shutdown_timeout(self.target.timeout);
        // The 0.31 processor's shutdown exports every queued span first, so a
        // separate force_flush would only add a second wait.
        let results: Vec<Result<(), String>> = std::thread::scope(|sc| {
            let handles: Vec<_> = pipelines
                .iter()
                .map(|p| {
                    sc.spawn(move || p.shutdown_with_timeout(timeout).map_err(|e| e.to_string()))
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().unwrap_or_else(|_| Err("shutdown panicked".into())))
                .collect()
        });
        let mut complete = true;
        for r in results {
            if let Err(e) = r {
                complete = false;
                self.tally.record_error(format!("SDK shutdown: {e}"));
            }
        }
        // Background shutdown: never blocks, and is allowed inside async code.
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
        let offered = self.offered.load(Relaxed);
        let exported = self.tally.exported.load(Relaxed);
        let failed = self.tally.failed.load(Relaxed) + self.unbuilt.load(Relaxed);
        SdkStats {
            offered_spans: offered,
            exported_spans: exported,
            failed_spans: failed,
            dropped_spans: offered.saturating_sub(exported + failed),
            export_requests: self.tally.requests.load(Relaxed),
            export_errors: self.tally.errors.load(Relaxed),
            first_error: self.tally.first_error(),
            shutdown_complete: complete,
            pipelines: self.started.load(Relaxed),
        }
    }
}

impl Drop for SdkEngine {
    /// An engine dropped without `finish` still exports what it holds (bounded).
    fn drop(&mut self) {
        if !self.finished {
            self.close();
        }
    }
}
