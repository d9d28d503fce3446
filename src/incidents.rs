//! Incident windows, for testing dashboards and alerts: a load profile's
//! `incidents:` say that from T for D (offsets on the run's clock, whichever
//! clock that is: back-dated, realtime or virtual), service S fails at rate E
//! and/or takes F times as long, stepped or ramped up over `ramp`. The
//! generator applies them to the requests S handles; the run report measures
//! what was produced inside and outside each window.
//!
//! ```yaml
//! incidents:
//!   - { service: bank-api, from: 2m, for: 1m, error_rate: 0.5 }
//!   - { service: payment-service, from: 5m, for: 2m, latency_factor: 3, ramp: 30s }
//! ```

use crate::diag::{Diags, Pos};
use crate::plan::World;
use crate::record::{ServiceId, SpanKind, StatusCode, TraceRecord};
use crate::yaml::{self, read_prob, read_str, Kind, MapReader, Node};
use std::collections::HashSet;

/// Largest latency factor an incident may declare.
pub const MAX_LATENCY_FACTOR: f64 = 1000.0;

/// One incident window, as written.
#[derive(Clone, Debug, PartialEq)]
pub struct Incident {
    /// The service it hits (a name of config `services:`, or a plane's `data-plane`).
    pub service: String,
    /// Where it is written, for diagnostics.
    pub pos: Pos,
    /// Start, in seconds after the run's start.
    pub from_s: f64,
    /// Length, in seconds.
    pub for_s: f64,
    /// Seconds over which it rises linearly to full strength (0: stepped).
    pub ramp_s: f64,
    /// The service's own error rate while it is at full strength.
    pub error_rate: Option<f64>,
    /// Its latencies are multiplied by this at full strength (1: unchanged).
    pub latency_factor: f64,
}

impl Incident {
    /// How much of the incident is in effect `at_s` seconds after the run's
    /// start: 0 outside the window, 1 at full strength.
    pub fn strength(&self, at_s: f64) -> f64 {
        if !self.contains(at_s) {
            return 0.0;
        }
        if self.ramp_s > 0.0 {
            ((at_s - self.from_s) / self.ramp_s).clamp(0.0, 1.0)
        } else {
            1.0
        }
    }

    /// Whether `at_s` falls inside the window.
    pub fn contains(&self, at_s: f64) -> bool {
        at_s >= self.from_s && at_s < self.from_s + self.for_s
    }
}

/// Reads `incidents: [{service, from, for, error_rate, latency_factor, ramp}]`.
pub fn read(node: &Node, d: &mut Diags) -> Vec<Incident> {
    let Kind::Seq(items) = &node.kind else {
        d.error(
            node.pos,
            "incidents",
            format!(
                "expected a list of {{service, from, for, error_rate, latency_factor, ramp}}, found {}",
                yaml::describe(node)
            ),
        );
        return Vec::new();
    };
    let mut out = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let path = format!("incidents[{i}]");
        let Some(mut m) = MapReader::new(item, &path, d) else {
            continue;
        };
        let service = match m.get("service") {
            Some(n) => read_str(n, &m.sub("service"), d),
            None => {
                d.error(
                    item.pos,
                    &path,
                    "an incident needs `service` (a service of config `services:`)",
                );
                None
            }
        };
        let secs = |k: &'static str, m: &mut MapReader<'_>, d: &mut Diags| -> Option<f64> {
            let n = m.get(k)?;
            crate::load_profile::duration(n, &m.sub(k), d)
        };
        let from_s = secs("from", &mut m, d).unwrap_or(0.0);
        let for_s = match secs("for", &mut m, d) {
            Some(v) if v > 0.0 => Some(v),
            Some(_) => {
                d.error(item.pos, &m.sub("for"), "an incident lasts longer than 0 s");
                None
            }
            None => {
                d.error(
                    item.pos,
                    &path,
                    "an incident needs `for` (how long it lasts, e.g. 2m)",
                );
                None
            }
        };
        let ramp_s = secs("ramp", &mut m, d).unwrap_or(0.0);
        let error_rate = m
            .get("error_rate")
            .and_then(|n| read_prob(n, &m.sub("error_rate"), d));
        let latency_factor = match m.get("latency_factor") {
            Some(n) => match n.as_f64() {
                Some(f) if (f > 0.0) && f <= MAX_LATENCY_FACTOR => f,
                _ => {
                    d.error(
                        n.pos,
                        &m.sub("latency_factor"),
                        format!(
                            "expected a number above 0 and at most {MAX_LATENCY_FACTOR}, found {}",
                            yaml::describe(n)
                        ),
                    );
                    1.0
                }
            },
            None => 1.0,
        };
        if m.get("error_rate").is_none() && m.get("latency_factor").is_none() {
            d.error(
                item.pos,
                &path,
                "an incident changes `error_rate` (0–1) and/or `latency_factor` (e.g. 3)",
            );
        }
        m.finish(d);
        if let (Some(service), Some(for_s)) = (service, for_s) {
            out.push(Incident {
                service,
                pos: item.pos,
                from_s,
                for_s,
                ramp_s: ramp_s.min(for_s),
                error_rate,
                latency_factor,
            });
        }
    }
    out
}

/// What the incidents in effect do to one request's generation.
#[derive(Clone, Debug, Default)]
pub struct Effects {
    /// (service, declared error rate, strength 0–1, latency factor now).
    by_service: Vec<(ServiceId, Option<f64>, f64, f64)>,
}

impl Effects {
    /// The error rate and latency factor of a request `service` handles, whose
    /// own error rate is `base`: `None` when no incident is in force on it. A
    /// ramping incident moves the rate from `base` towards the declared one.
    pub fn of(&self, service: ServiceId, base: f64) -> Option<(f64, f64)> {
        self.by_service
            .iter()
            .find(|(s, ..)| *s == service)
            .map(|(_, rate, k, factor)| (rate.map_or(base, |r| base + (r - base) * k), *factor))
    }
}

/// Requests, failures and time measured on one side of a window.
#[derive(Clone, Debug, Default, serde::Serialize, PartialEq)]
pub struct Side {
    /// Requests the service handled.
    pub requests: u64,
    /// Of those, failed.
    pub errors: u64,
    /// `errors / requests`.
    pub error_share: f64,
    /// Mean duration of those requests, in ms.
    pub mean_latency_ms: f64,
    #[serde(skip)]
    latency_ns: u128,
}

impl Side {
    fn add(&mut self, failed: bool, dur_ns: u64) {
        self.requests += 1;
        self.errors += u64::from(failed);
        self.latency_ns += u128::from(dur_ns);
    }

    fn merge(&mut self, o: &Side) {
        self.requests += o.requests;
        self.errors += o.errors;
        self.latency_ns += o.latency_ns;
    }

    fn finish(&mut self) {
        if self.requests > 0 {
            self.error_share =
                (self.errors as f64 / self.requests as f64 * 10_000.0).round() / 10_000.0;
            self.mean_latency_ms =
                (self.latency_ns as f64 / self.requests as f64 / 1e6 * 100.0).round() / 100.0;
        }
    }
}

/// One window in the run report: what it declared and what the run produced.
#[derive(Clone, Debug, serde::Serialize, PartialEq)]
pub struct WindowReport {
    /// The service it hits.
    pub service: String,
    /// Start, seconds after the run's start.
    pub from_s: f64,
    /// Length, in seconds.
    pub for_s: f64,
    /// Ramp, in seconds (0: stepped).
    pub ramp_s: f64,
    /// Declared error rate at full strength.
    pub error_rate: Option<f64>,
    /// Declared latency factor at full strength.
    pub latency_factor: f64,
    /// The service's requests inside the window.
    pub inside: Side,
    /// Its requests outside the window.
    pub outside: Side,
}

/// The run's incidents, resolved to services, with their tallies.
#[derive(Clone, Debug, Default)]
pub struct Incidents {
    list: Vec<(Incident, ServiceId)>,
    /// Per incident: (inside, outside).
    tallies: Vec<(Side, Side)>,
}

impl Incidents {
    /// Resolves each incident's service against the world; the message names the
    /// first unknown one and the services there are.
    pub fn resolve(list: &[Incident], world: &World) -> Result<Incidents, String> {
        let mut out = Incidents::default();
        for inc in list {
            let id = world
                .services
                .iter()
                .find(|(_, s)| *s.label == *inc.service)
                .map(|(id, _)| id);
            let Some(id) = id else {
                let known: Vec<&str> = world.services.declared_names().collect();
                return Err(format!(
                    "line {}:{}: incident service `{}` is not a service of this run; declared services: {}",
                    inc.pos.line,
                    inc.pos.col,
                    inc.service,
                    if known.is_empty() { "none".to_string() } else { known.join(", ") }
                ));
            };
            out.list.push((inc.clone(), id));
            out.tallies.push(Default::default());
        }
        Ok(out)
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// The effects in force `at_s` seconds after the run's start.
    pub fn effects_at(&self, at_s: f64) -> Effects {
        let mut e = Effects::default();
        for (inc, id) in &self.list {
            let k = inc.strength(at_s);
            if k <= 0.0 {
                continue;
            }
            let factor = 1.0 + (inc.latency_factor - 1.0) * k;
            e.by_service.push((*id, inc.error_rate, k, factor));
        }
        e
    }

    /// Tallies the requests of each incident's service in `traces`, generated
    /// `at_s` seconds after the run's start, as inside or outside its window.
    pub fn observe(&mut self, traces: &[TraceRecord], at_s: f64, world: &World) {
        for (i, (inc, id)) in self.list.iter().enumerate() {
            let name = world.services.get(*id).label.clone();
            let side = if inc.contains(at_s) {
                &mut self.tallies[i].0
            } else {
                &mut self.tallies[i].1
            };
            for t in traces {
                // CLIENT spans with a SERVER child are one call with that child.
                let paired: HashSet<[u8; 8]> = t
                    .spans
                    .iter()
                    .filter(|s| s.kind == SpanKind::Server)
                    .filter_map(|s| s.parent_span_id)
                    .collect();
                for s in &t.spans {
                    let handles = if s.kind == SpanKind::Client && !paired.contains(&s.span_id) {
                        s.attr("peer.service").and_then(|v| v.as_str()) == Some(&*name)
                    } else {
                        s.service == *id
                            && (s.kind == SpanKind::Server || s.parent_span_id.is_none())
                    };
                    if handles {
                        side.add(
                            s.status == StatusCode::Error,
                            s.end_ns.saturating_sub(s.start_ns),
                        );
                    }
                }
            }
        }
    }

    /// Adds another worker's tallies to these.
    pub fn merge(&mut self, o: &Incidents) {
        for (mine, theirs) in self.tallies.iter_mut().zip(&o.tallies) {
            mine.0.merge(&theirs.0);
            mine.1.merge(&theirs.1);
        }
    }

    /// The windows with what was measured.
    pub fn report(&self) -> Vec<WindowReport> {
        self.list
            .iter()
            .zip(&self.tallies)
            .map(|((inc, _), (inside, outside))| {
                let (mut inside, mut outside) = (inside.clone(), outside.clone());
                inside.finish();
                outside.finish();
                WindowReport {
                    service: inc.service.clone(),
                    from_s: inc.from_s,
                    for_s: inc.for_s,
                    ramp_s: inc.ramp_s,
                    error_rate: inc.error_rate,
                    latency_factor: inc.latency_factor,
                    inside,
                    outside,
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inc(ramp_s: f64) -> Incident {
        Incident {
            service: "bank-api".into(),
            pos: Pos::default(),
            from_s: 10.0,
            for_s: 20.0,
            ramp_s,
            error_rate: Some(0.5),
            latency_factor: 3.0,
        }
    }

    #[test]
    fn a_window_is_stepped_or_ramped_and_ends() {
        let step = inc(0.0);
        assert_eq!(step.strength(9.9), 0.0);
        assert_eq!(step.strength(10.0), 1.0);
        assert_eq!(step.strength(29.9), 1.0);
        assert_eq!(step.strength(30.0), 0.0);
        let ramp = inc(10.0);
        assert!((ramp.strength(15.0) - 0.5).abs() < 1e-9);
        assert_eq!(ramp.strength(25.0), 1.0);
    }
}
