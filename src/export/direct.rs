//! One request at a time, no queue, no retries: what `otelsim bench --to sink`
//! sends with, so the cost of sending is measured on the bench's own thread.

use super::transport::{Outcome, Transport};
use super::{Body, ExportConfig};

/// A transport used directly, one awaited request after another.
pub(crate) struct DirectSender {
    transport: Transport,
}

impl DirectSender {
    /// Connects to `cfg`'s endpoint (the same preflight as a run's).
    pub(crate) async fn connect(cfg: &ExportConfig) -> anyhow::Result<DirectSender> {
        Ok(DirectSender {
            transport: Transport::new(cfg).await?,
        })
    }

    /// Sends `body` once; the items the receiver rejected (OTLP partial
    /// success) and the bytes put on the wire, or why it failed.
    pub(crate) async fn send(&self, body: &Body) -> Result<(u64, u64), String> {
        let mut bytes = 0;
        match self.transport.send(body, &mut bytes).await {
            Outcome::Ok { rejected, .. } => Ok((rejected, bytes)),
            Outcome::Retry(m, _) | Outcome::Fail(m) | Outcome::TooLarge(m) | Outcome::Fatal(m) => {
                Err(m)
            }
            Outcome::NotAccepted { failure, .. } => Err(failure),
        }
    }
}
