//! Reads a scenario's `topology:`: the short way to write an explicit span tree
//! of requests between services. Each request becomes a `StepDef` with `service`
//! and `call` set, so a topology compiles through the same plan as `root:`.
//!
//! ```yaml
//! topology:
//!   service: api-gateway            # the entry service (kind gateway or internal)
//!   operation: GET /api/users/{id}  # HTTP: `METHOD /route`
//!   calls:
//!     - to: user-service
//!       operation: GET /users/{id}
//!       events: [{name: cache_hit, probability: 0.7, attributes: {key: "user:12345"}}]
//!       calls:
//!         - {to: profile-db, operation: SELECT profiles, probability: 0.3}
//! ```
//!
//! A service's kind, latency and error rate come from config `services:`; a
//! request may override `latency` and `error_rate`.

use crate::diag::{Diags, Pos};
use crate::model::config::{Config, ServiceKind, ServiceProtocol};
use crate::model::distribution::Count;
use crate::model::read::distribution::{read_count, read_latency, DEFAULT_VARIANCE};
use crate::model::read::scenario::step::read_attributes;
use crate::model::scenario::{CallDef, ErrorDef, EventDef, StepDef};
use crate::yaml::{describe, read_bool, read_prob, read_str, Kind, MapReader, Node};

const CALL_KEYS_HELP: &str =
    "to, operation, probability, count, parallel, handled, latency, error_rate, events, calls";

/// Reads `topology:` into the root step (the entry service's request).
pub fn read_topology(node: &Node, cfg: &Config, d: &mut Diags) -> Option<StepDef> {
    read_call(node, "topology", true, cfg, d)
}

/// One request: `service`/`to`, `operation`, and the requests it makes in turn.
fn read_call(node: &Node, path: &str, entry: bool, cfg: &Config, d: &mut Diags) -> Option<StepDef> {
    let mut r = MapReader::new(node, path, d)?;
    let service_key = if entry { "service" } else { "to" };
    let service = match r.get(service_key) {
        Some(n) => read_str(n, &r.sub(service_key), d).map(|s| (s, n.pos)),
        None => {
            d.error(
                node.pos,
                path,
                format!("a request needs `{service_key}` (a service of config `services:`); keys: {CALL_KEYS_HELP}"),
            );
            None
        }
    };
    let kind = service.as_ref().and_then(|(name, pos)| {
        let def = cfg.service(name)?; // an unknown name is reported with the `root:` checks
        match def.kind {
            Some(k) => Some(k),
            None => {
                d.error(
                    *pos,
                    &r.sub(service_key),
                    format!("service `{name}` has no `kind` in config `services:`; a topology needs it ({})", ServiceKind::NAMES),
                );
                None
            }
        }
    });
    if entry && kind.is_some_and(|k| !k.instrumented()) {
        d.error(
            node.pos,
            &r.sub(service_key),
            "the entry of a topology must be a gateway or internal service (databases and external APIs emit no spans of their own)",
        );
    }
    let protocol = service
        .as_ref()
        .and_then(|(name, _)| cfg.service(name))
        .map_or(ServiceProtocol::Http, |s| s.protocol);
    let operation = match r.get("operation") {
        Some(n) => read_str(n, &r.sub("operation"), d)
            .filter(|op| check_operation(op, kind, protocol, n.pos, &r.sub("operation"), d)),
        None => {
            d.error(
                node.pos,
                path,
                "a request needs `operation` (`GET /users/{id}` for HTTP, `SELECT users` for a database)",
            );
            None
        }
    };
    let probability = r
        .get("probability")
        .and_then(|n| read_prob(n, &r.sub("probability"), d))
        .unwrap_or(1.0);
    let count = r
        .get("count")
        .and_then(|n| read_count(n, &r.sub("count"), d))
        .unwrap_or(Count::Fixed(1));
    let parallel = r
        .get("parallel")
        .and_then(|n| read_bool(n, &r.sub("parallel"), d))
        .unwrap_or(false);
    let handled = r
        .get("handled")
        .and_then(|n| read_bool(n, &r.sub("handled"), d))
        .unwrap_or(false);
    let latency = r
        .get("latency")
        .and_then(|n| read_latency(n, &r.sub("latency"), DEFAULT_VARIANCE, d));
    let error_rate = r
        .get("error_rate")
        .and_then(|n| read_prob(n, &r.sub("error_rate"), d));
    let events = r
        .get("events")
        .map(|n| read_events(n, &r.sub("events"), d))
        .unwrap_or_default();
    let children: Vec<StepDef> = match r.get("calls") {
        Some(n) => {
            let cpath = r.sub("calls");
            if kind.is_some_and(|k| !k.instrumented()) {
                d.error(
                    n.pos,
                    &cpath,
                    "a database or external API makes no calls of its own (its calls would have no span to hang under)",
                );
            }
            match &n.kind {
                Kind::Seq(items) => items
                    .iter()
                    .enumerate()
                    .filter_map(|(i, it)| read_call(it, &format!("{cpath}[{i}]"), false, cfg, d))
                    .collect(),
                _ => {
                    d.error(
                        n.pos,
                        &cpath,
                        format!("expected a list of requests, found {}", describe(n)),
                    );
                    Vec::new()
                }
            }
        }
        None => Vec::new(),
    };
    r.finish(d);
    let (service, operation) = (service?, operation?);
    let mut error = ErrorDef {
        propagate: !handled,
        ..ErrorDef::default()
    };
    if let Some(def) = cfg.service(&service.0) {
        error.rate = error_rate.unwrap_or(def.error_rate);
        error.types.clone_from(&def.error_types);
    }
    Some(StepDef {
        type_name: operation.clone(),
        pos: node.pos,
        path: path.to_string(),
        kind: None,
        latency: latency.or_else(|| cfg.service(&service.0).and_then(|s| s.latency.clone())),
        error,
        attributes: Vec::new(),
        children,
        parallel,
        probability,
        count,
        retry: None,
        service: Some(service),
        call: Some(CallDef {
            operation,
            handled,
            events,
        }),
    })
}

/// HTTP operations are `METHOD /route`; gRPC ones `package.Service/Method`; a
/// database's are `OPERATION [collection]`.
fn check_operation(
    op: &str,
    kind: Option<ServiceKind>,
    protocol: ServiceProtocol,
    pos: Pos,
    path: &str,
    d: &mut Diags,
) -> bool {
    let mut parts = op.split_whitespace();
    let ok = match kind {
        Some(ServiceKind::Database) => parts.next().is_some(),
        None => true,
        Some(_) if protocol == ServiceProtocol::Grpc => {
            op.split_once('/').is_some_and(|(service, method)| {
                let word = |s: &str| {
                    !s.is_empty()
                        && s.chars()
                            .all(|c| c.is_ascii_alphanumeric() || "._".contains(c))
                };
                word(service) && word(method) && !method.contains('.')
            })
        }
        Some(_) => {
            parts
                .next()
                .is_some_and(|m| m.chars().all(|c| c.is_ascii_alphabetic()))
                && parts.next().is_some_and(|r| r.starts_with('/'))
                && parts.next().is_none()
        }
    };
    if !ok {
        let want = match kind {
            Some(ServiceKind::Database) => "`OPERATION collection` (e.g. `SELECT users`)",
            _ if protocol == ServiceProtocol::Grpc => {
                "`package.Service/Method` (e.g. `orders.OrderService/PlaceOrder`), as the service's `protocol: grpc` needs"
            }
            _ => "`METHOD /route` (e.g. `GET /users/{id}`)",
        };
        d.error(pos, path, format!("operation `{op}` is not {want}"));
    }
    ok
}

/// `events: [{name, probability, attributes}]`.
fn read_events(n: &Node, path: &str, d: &mut Diags) -> Vec<EventDef> {
    let Kind::Seq(items) = &n.kind else {
        d.error(
            n.pos,
            path,
            format!("expected a list of events, found {}", describe(n)),
        );
        return Vec::new();
    };
    let mut out = Vec::new();
    for (i, it) in items.iter().enumerate() {
        let p = format!("{path}[{i}]");
        let Some(mut r) = MapReader::new(it, &p, d) else {
            continue;
        };
        let name = match r.get("name") {
            Some(n) => read_str(n, &r.sub("name"), d),
            None => {
                d.error(it.pos, &p, "an event needs `name` (e.g. cache_hit)");
                None
            }
        };
        let probability = r
            .get("probability")
            .and_then(|n| read_prob(n, &r.sub("probability"), d))
            .unwrap_or(1.0);
        let attributes = r
            .get("attributes")
            .map(|n| read_attributes(n, &r.sub("attributes"), d))
            .unwrap_or_default();
        r.finish(d);
        if let Some(name) = name {
            out.push(EventDef {
                name,
                probability,
                attributes,
            });
        }
    }
    out
}
