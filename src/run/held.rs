//! Realtime mode's holding area: spans and log records wait here until they end
//! on the wall clock, then go to the worker's batcher.

use crate::export::Batcher;
use crate::record::{LogRecord, TraceRecord};
use std::cmp::Reverse;
use std::collections::BinaryHeap;

/// Realtime mode: spans and log records waiting for their end time on the wall
/// clock. One heap per worker, no thread or timer per trace; memory is bounded
/// by rate × the longest pick.
#[derive(Default)]
pub(super) struct Held {
    heap: BinaryHeap<Reverse<Due>>,
    seq: u64,
}

struct Due {
    at: u64,
    seq: u64,
    item: Item,
}

enum Item {
    /// One span, as a one-span trace (the batcher groups by resource and scope).
    Span(TraceRecord),
    Log(LogRecord),
}

impl PartialEq for Due {
    fn eq(&self, o: &Self) -> bool {
        (self.at, self.seq) == (o.at, o.seq)
    }
}
impl Eq for Due {}
impl PartialOrd for Due {
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Due {
    fn cmp(&self, o: &Self) -> std::cmp::Ordering {
        (self.at, self.seq).cmp(&(o.at, o.seq))
    }
}

impl Held {
    fn push(&mut self, at: u64, item: Item) {
        self.seq += 1;
        self.heap.push(Reverse(Due {
            at,
            seq: self.seq,
            item,
        }));
    }

    pub(super) fn hold(&mut self, traces: Vec<TraceRecord>, logs: Vec<LogRecord>) {
        for t in traces {
            for s in t.spans {
                let at = s.end_ns;
                self.push(
                    at,
                    Item::Span(TraceRecord {
                        trace_id: t.trace_id,
                        scope: t.scope,
                        scenario: t.scenario,
                        spans: vec![s],
                    }),
                );
            }
        }
        for l in logs {
            self.push(l.time_ns, Item::Log(l));
        }
    }

    pub(super) fn next_at(&self) -> Option<u64> {
        self.heap.peek().map(|d| d.0.at)
    }

    /// Hands everything due by `now` to the batcher.
    pub(super) async fn release(&mut self, now: u64, batcher: &mut Batcher) {
        let mut traces = Vec::new();
        let mut logs = Vec::new();
        while self.heap.peek().is_some_and(|d| d.0.at <= now) {
            let Some(Reverse(d)) = self.heap.pop() else {
                break;
            };
            match d.item {
                Item::Span(t) => traces.push(t),
                Item::Log(l) => logs.push(l),
            }
        }
        if !traces.is_empty() || !logs.is_empty() {
            batcher.submit_parts(traces, logs).await;
        }
    }
}
