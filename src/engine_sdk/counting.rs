//! A `SpanExporter` wrapper that counts what the real exporter did with each batch.
//!
//! The SDK 0.31 BatchSpanProcessor drops spans silently when its queue is full
//! and keeps its drop counter private (it only logs it at shutdown), so the exact
//! drop count is derived instead: every span handed to the processor either
//! reached `export` (and succeeded or failed) or was dropped.

use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{SpanData, SpanExporter};
use opentelemetry_sdk::Resource;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Shared by every processor of one engine.
#[derive(Debug, Default)]
pub struct Tally {
    /// Spans of export calls that returned Ok.
    pub exported: AtomicU64,
    /// Spans of export calls that returned an error.
    pub failed: AtomicU64,
    /// Export calls that returned an error.
    pub errors: AtomicU64,
    /// Export requests that succeeded.
    pub requests: AtomicU64,
    first_error: Mutex<Option<String>>,
}

impl Tally {
    /// Keeps the message of the first error; later ones are only counted.
    pub fn record_error(&self, e: impl std::fmt::Display) {
        if let Ok(mut first) = self.first_error.lock() {
            first.get_or_insert_with(|| e.to_string());
        }
    }

    /// The first error's message, if any export failed.
    pub fn first_error(&self) -> Option<String> {
        self.first_error.lock().ok().and_then(|e| e.clone())
    }
}

/// The real exporter `E`, with every batch's outcome added to a [`Tally`].
#[derive(Debug)]
pub struct Counting<E> {
    inner: E,
    tally: Arc<Tally>,
}

impl<E> Counting<E> {
    /// Wraps `inner`; `tally` is shared with the engine that reads it.
    pub fn new(inner: E, tally: Arc<Tally>) -> Self {
        Counting { inner, tally }
    }
}

impl<E: SpanExporter> SpanExporter for Counting<E> {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        let n = batch.len() as u64;
        let result = self.inner.export(batch).await;
        match &result {
            Ok(()) => {
                self.tally.exported.fetch_add(n, Relaxed);
                self.tally.requests.fetch_add(1, Relaxed);
            }
            Err(e) => {
                self.tally.failed.fetch_add(n, Relaxed);
                self.tally.errors.fetch_add(1, Relaxed);
                self.tally.record_error(e);
            }
        }
        result
    }

    fn shutdown_with_timeout(&mut self, timeout: Duration) -> OTelSdkResult {
        self.inner.shutdown_with_timeout(timeout)
    }

    fn shutdown(&mut self) -> OTelSdkResult {
        self.inner.shutdown()
    }

    fn force_flush(&mut self) -> OTelSdkResult {
        self.inner.force_flush()
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.inner.set_resource(resource);
    }
}
