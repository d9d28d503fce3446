//! A request of a `topology:` becomes the spans its instrumentation would emit:
//! a CLIENT span in the caller and a SERVER span in the callee for an
//! instrumented service, a CLIENT span alone for a database or an external API,
//! each with the OTel HTTP, gRPC or database attributes. The callee's kind, latency
//! and error rate come from config `services:`; everything else is a plain
//! `Node`, so the generator needs to know nothing about topologies.

use super::compile::{key, Compiler};
use super::{AttrGen, EventPlan, Node, ResponseStatus};
use crate::diag::Diags;
use crate::model::config::{McpServer, ServiceKind, ServiceProtocol};
use crate::model::distribution::{Count, Distribution};
use crate::model::scenario::{CallDef, StepDef};
use crate::model::AttrValue;
use crate::record::{ServiceId, SpanKind};

/// Port callers reach an instrumented service on.
const SERVICE_PORT: i64 = 8080;
/// Port callers reach a gRPC service on.
const GRPC_PORT: i64 = 50051;
/// Port of an external API (HTTPS).
const EXTERNAL_PORT: i64 = 443;
/// Value a route parameter (`{id}`) takes in `url.full`.
const ROUTE_PARAM: &str = "12345";
/// A CLIENT span's own time around its SERVER child (connection, serialisation), in ms.
const CLIENT_OVERHEAD_MS: f64 = 1.0;

impl Compiler<'_> {
    /// The spans of one request to `st.service` from `caller` (`None`: the entry).
    pub(super) fn call(
        &self,
        st: &StepDef,
        call: &CallDef,
        server: Option<&McpServer>,
        caller: Option<ServiceId>,
        d: &mut Diags,
    ) -> Node {
        // The reader checked the name and the kind; a service without them
        // (reported there) runs as an internal one so compiling goes on.
        let name = st.service.as_ref().map_or("", |(n, _)| n.as_str());
        let def = self.cfg.service(name);
        let kind = def.and_then(|s| s.kind).unwrap_or(ServiceKind::Internal);
        let grpc = def.is_some_and(|s| s.protocol == ServiceProtocol::Grpc);
        let address = def
            .and_then(|s| s.address.clone())
            .unwrap_or_else(|| name.to_string());
        let callee = self.world.services.declared(name);
        let op = call.operation.as_str();
        let mut work = self.call_node(op, st, call, d);
        match kind {
            ServiceKind::Database => {
                work.class_name = key("db.client");
                work.kind = SpanKind::Client;
                if let Some(id) = caller {
                    work.service = id;
                }
                let mut words = op.split_whitespace();
                let system = def
                    .and_then(|s| s.db_system.clone())
                    .unwrap_or_else(|| "postgresql".into());
                self.lit(&mut work, "db.system.name", AttrValue::str(&system), st, d);
                if let Some(o) = words.next() {
                    self.lit(&mut work, "db.operation.name", AttrValue::str(o), st, d);
                }
                if let Some(c) = words.next() {
                    self.lit(&mut work, "db.collection.name", AttrValue::str(c), st, d);
                }
                self.peer(&mut work, name, &address, None, st, d);
                work.handled_by = callee;
                work
            }
            ServiceKind::External => {
                work.kind = SpanKind::Client;
                if let Some(id) = caller {
                    work.service = id;
                }
                if grpc {
                    self.rpc(&mut work, "rpc.client", op, st, d);
                } else {
                    let (method, route) = split_http(op);
                    let url = format!("https://{address}{}", fill_route(route));
                    self.http_client(&mut work, method, &url, st, d);
                }
                self.peer(&mut work, name, &address, Some(EXTERNAL_PORT), st, d);
                work.handled_by = callee;
                work
            }
            ServiceKind::Gateway | ServiceKind::Internal => {
                work.kind = SpanKind::Server;
                if let Some(id) = callee {
                    work.service = id;
                }
                let (method, route) = split_http(op);
                if grpc {
                    self.rpc(&mut work, "rpc.server", op, st, d);
                } else {
                    work.class_name = key("http.server");
                    self.lit(
                        &mut work,
                        "http.request.method",
                        AttrValue::str(method),
                        st,
                        d,
                    );
                    self.lit(&mut work, "http.route", AttrValue::str(route), st, d);
                    self.lit(&mut work, "url.scheme", AttrValue::str("http"), st, d);
                    work.response_status = ResponseStatus::Http;
                }
                work.handled_by = callee;
                // The server's failure always reaches its client span; whether it
                // goes further is the client's (the caller's) business.
                work.error.propagate = true;
                work.children = st
                    .children
                    .iter()
                    .map(|c| self.step(c, server, callee.or(caller), d))
                    .collect();
                let Some(caller) = caller else {
                    return work;
                };
                let mut client = self.call_node(op, st, call, d);
                client.kind = SpanKind::Client;
                client.service = caller;
                client.events.clear();
                client.latency = Distribution::Constant(CLIENT_OVERHEAD_MS);
                client.error.rate = 0.0;
                if grpc {
                    self.rpc(&mut client, "rpc.client", op, st, d);
                    self.peer(&mut client, name, &address, Some(GRPC_PORT), st, d);
                } else {
                    let url = format!("http://{address}:{SERVICE_PORT}{}", fill_route(route));
                    self.http_client(&mut client, method, &url, st, d);
                    self.peer(&mut client, name, &address, Some(SERVICE_PORT), st, d);
                }
                client.handled_by = None;
                work.probability = 1.0;
                work.count = Count::Fixed(1);
                client.children = vec![work];
                client
            }
        }
    }

    /// The span that does a request's work, before its kind decides its attributes.
    fn call_node(&self, op: &str, st: &StepDef, call: &CallDef, d: &mut Diags) -> Node {
        let mut n = self.base_node("service.call", false);
        n.name = key(op);
        n.role = super::Role::Generic;
        n.service_call = true;
        n.latency = st.latency.clone().unwrap_or(Distribution::MeanVariance {
            mean: 10.0,
            variance: 0.3,
            spike_rate: 0.0,
            spike_multiplier: 1.0,
        });
        n.error = self.error_model_of(st, d);
        n.parallel = st.parallel;
        n.probability = st.probability;
        n.count = st.count.clone();
        for e in &call.events {
            let path = format!("{}.events", st.path);
            n.events.push(EventPlan {
                name: key(&e.name),
                attrs: Vec::new(),
                sampled: e
                    .attributes
                    .iter()
                    .map(|(k, spec, pos)| (key(k), self.attr_gen(k, spec, *pos, &path, d)))
                    .collect(),
                probability: e.probability,
            });
        }
        n
    }

    /// A gRPC span (class `rpc.client` or `rpc.server`) of the method `op`
    /// (`package.Service/Method`, also its name, as the RPC conventions name spans).
    fn rpc(&self, n: &mut Node, class: &str, op: &str, st: &StepDef, d: &mut Diags) {
        n.class_name = key(class);
        self.lit(n, "rpc.system.name", AttrValue::str("grpc"), st, d);
        self.lit(n, "rpc.method", AttrValue::str(op), st, d);
        n.response_status = ResponseStatus::Grpc;
    }

    /// An HTTP CLIENT span's class, `http.request.method` and `url.full`; its status
    /// code comes from the outcome.
    fn http_client(&self, n: &mut Node, method: &str, url: &str, st: &StepDef, d: &mut Diags) {
        n.class_name = key("http.client");
        self.lit(n, "http.request.method", AttrValue::str(method), st, d);
        self.lit(n, "url.full", AttrValue::str(url), st, d);
        n.response_status = ResponseStatus::Http;
    }

    /// `peer.service`, `server.address` and `server.port` (where known) of a CLIENT span.
    fn peer(
        &self,
        n: &mut Node,
        name: &str,
        address: &str,
        port: Option<i64>,
        st: &StepDef,
        d: &mut Diags,
    ) {
        self.lit(n, "peer.service", AttrValue::str(name), st, d);
        self.lit(n, "server.address", AttrValue::str(address), st, d);
        if let Some(p) = port {
            self.lit(n, "server.port", AttrValue::Int(p), st, d);
        }
    }

    /// A fixed attribute, held to its semconv enum like every declared literal.
    fn lit(&self, n: &mut Node, name: &str, v: AttrValue, st: &StepDef, d: &mut Diags) {
        let path = format!("{}.operation", st.path);
        let v = self.world.normalise(name, v, st.pos, &path, d);
        n.attrs.push((key(name), AttrGen::Literal(v)));
    }
}

/// `GET /users/{id}` → (`GET`, `/users/{id}`); the reader checked the shape.
fn split_http(op: &str) -> (&str, &str) {
    let mut parts = op.split_whitespace();
    let method = parts.next().unwrap_or("GET");
    (method, parts.next().unwrap_or("/"))
}

/// A route with each `{param}` replaced by a value, as a URL would carry it.
fn fill_route(route: &str) -> String {
    let mut out = String::with_capacity(route.len());
    let mut rest = route;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        match rest[open..].find('}') {
            Some(close) => {
                out.push_str(ROUTE_PARAM);
                rest = &rest[open + close + 1..];
            }
            None => {
                rest = &rest[open..];
                break;
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_route_becomes_a_path_with_values() {
        assert_eq!(
            fill_route("/users/{id}/orders/{o}"),
            "/users/12345/orders/12345"
        );
        assert_eq!(fill_route("/health"), "/health");
        assert_eq!(split_http("POST /orders"), ("POST", "/orders"));
    }
}
