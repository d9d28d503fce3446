//! Reads resource attributes: `resource:` in config.yaml, the predecessor's
//! `resource.yaml`, and `services:` (per-service resource attributes).

use crate::diag::Diags;
use crate::model::config::{ResourceConfig, ServiceDef, ServiceKind, ServiceProtocol};
use crate::model::read::distribution::{read_latency, DEFAULT_VARIANCE};
use crate::model::read::{attr_from_node, read_attr_map};
use crate::model::{over_limit, MAX_ATTRIBUTES};
use crate::yaml::{describe, join, read_prob, read_str, read_str_list, MapReader, Node};

/// `resource:` from config.yaml; each plane left empty there is taken from
/// `resource.yaml` (read into its own diagnostics), as the predecessor did.
pub(crate) fn read_resources(
    node: Option<&Node>,
    resource_yaml: Option<(&Node, &mut Diags)>,
    d: &mut Diags,
) -> ResourceConfig {
    let mut resource = node
        .map(|n| read_resource(n, "resource", d))
        .unwrap_or_default();
    if let Some((node, rd)) = resource_yaml {
        let extra = read_resource(node, "", rd);
        if resource.data_plane.is_empty() && resource.control_plane.is_empty() {
            resource.source = Some(rd.file.to_string());
        }
        if resource.schema_url.is_none() {
            resource.schema_url = extra.schema_url;
        }
        if resource.data_plane.is_empty() {
            resource.data_plane = extra.data_plane;
        }
        if resource.control_plane.is_empty() {
            resource.control_plane = extra.control_plane;
        }
    }
    resource
}

/// Resource section: `{schema_url, attributes}`, `{schema_url, control_plane: {attributes}, data_plane: {attributes}}`,
/// or flat attributes beside `schema_url`.
fn read_resource(node: &Node, path: &str, d: &mut Diags) -> ResourceConfig {
    let mut res = ResourceConfig::default();
    let Some(mut r) = MapReader::new(node, path, d) else {
        return res;
    };
    res.schema_url = r
        .get("schema_url")
        .and_then(|n| read_str(n, &r.sub("schema_url"), d));
    let mut shared = Vec::new();
    if let Some(n) = r.get("attributes") {
        shared = read_attr_map(n, &r.sub("attributes"), d);
    }
    // The predecessor's v2 files spell the planes with a hyphen and keep the version
    // in an anchor holder (`service_version: &v "2.1.1"`) that is no attribute.
    r.ignore("service_version");
    for (planes, slot) in [
        (["data_plane", "data-plane"], &mut res.data_plane),
        (["control_plane", "control-plane"], &mut res.control_plane),
    ] {
        if let Some((plane, n)) = r.get_any(&planes) {
            let p = r.sub(plane);
            if let Some(mut pr) = MapReader::new(n, &p, d) {
                if let Some(a) = pr.get("attributes") {
                    *slot = read_attr_map(a, &pr.sub("attributes"), d);
                }
                pr.finish(d);
            }
        }
    }
    let flat: Vec<(String, Node)> = r.rest().cloned().collect();
    for (k, v) in flat {
        match attr_from_node(&v) {
            Some(val) => shared.push((k, val)),
            None => d.error(
                v.pos,
                &join(path, &k),
                "resource attribute values must be scalars",
            ),
        }
    }
    // Checked before merging, which compares every pair (each plane's own
    // `attributes` were checked as they were read).
    if shared.len() > MAX_ATTRIBUTES {
        d.error(
            node.pos,
            path,
            over_limit(
                shared.len(),
                "resource attributes",
                MAX_ATTRIBUTES,
                "OpenTelemetry SDKs keep 128 per resource by default",
            ),
        );
        shared.truncate(MAX_ATTRIBUTES);
    }
    for slot in [&mut res.data_plane, &mut res.control_plane] {
        for (k, v) in &shared {
            if !slot.iter().any(|(sk, _)| sk == k) {
                slot.push((k.clone(), v.clone()));
            }
        }
        // Checked after the shared attributes joined each plane's own.
        if slot.len() > MAX_ATTRIBUTES {
            d.error(
                node.pos,
                path,
                over_limit(
                    slot.len(),
                    "resource attributes on one plane",
                    MAX_ATTRIBUTES,
                    "OpenTelemetry SDKs keep 128 per resource by default",
                ),
            );
            slot.truncate(MAX_ATTRIBUTES);
        }
    }
    res
}

/// `services: {<name>: {attributes: {key: scalar, ...}}}`, in file order. The map
/// key is the service's `service.name`; an empty or null body declares no attributes.
pub(crate) fn read_services(node: &Node, d: &mut Diags) -> Vec<ServiceDef> {
    let mut out = Vec::new();
    let Some(mut r) = MapReader::new(node, "services", d) else {
        return out;
    };
    let entries: Vec<(String, Node)> = r.rest().cloned().collect();
    for (name, body) in entries {
        if name.trim().is_empty() {
            d.error(
                body.key_pos,
                "services",
                "empty service name: each key under `services:` is a service's `service.name`",
            );
            continue;
        }
        let path = join("services", &name);
        let Some(mut sr) = MapReader::new(&body, &path, d) else {
            continue;
        };
        let mut attributes = Vec::new();
        if let Some(n) = sr.get("attributes") {
            let apath = sr.sub("attributes");
            if let Some(v) = n.get("service.name") {
                d.error(
                    v.key_pos,
                    &join(&apath, "service.name"),
                    format!("the key under `services:` names the service (here `{name}`); remove `service.name` from its attributes"),
                );
            }
            attributes = read_attr_map(n, &apath, d);
            attributes.retain(|(k, _)| k != "service.name");
        }
        let topology = read_topology_keys(&mut sr, d);
        sr.finish(d);
        out.push(ServiceDef {
            name,
            attributes,
            pos: body.key_pos,
            ..topology
        });
    }
    out
}

/// A service's topology keys: `kind`, `latency`, `error_rate`, `error_types`,
/// `address`, `db_system`, `protocol` (all optional; a plain service has none).
fn read_topology_keys(sr: &mut MapReader<'_>, d: &mut Diags) -> ServiceDef {
    let mut s = ServiceDef::default();
    if let Some(n) = sr.get("kind") {
        let path = sr.sub("kind");
        s.kind = match n.as_str().and_then(ServiceKind::parse) {
            Some(k) => Some(k),
            None => {
                d.error(
                    n.pos,
                    &path,
                    format!(
                        "expected a service kind ({}), found {}",
                        ServiceKind::NAMES,
                        describe(n)
                    ),
                );
                None
            }
        };
    }
    s.latency = sr
        .get("latency")
        .and_then(|n| read_latency(n, &sr.sub("latency"), DEFAULT_VARIANCE, d));
    s.error_rate = sr
        .get("error_rate")
        .and_then(|n| read_prob(n, &sr.sub("error_rate"), d))
        .unwrap_or(0.0);
    s.error_types = sr
        .get("error_types")
        .map(|n| read_str_list(n, &sr.sub("error_types"), d))
        .unwrap_or_default();
    s.address = sr
        .get("address")
        .and_then(|n| read_str(n, &sr.sub("address"), d));
    s.db_system = sr
        .get("db_system")
        .and_then(|n| read_str(n, &sr.sub("db_system"), d));
    if let Some(n) = sr.get("protocol") {
        let path = sr.sub("protocol");
        match n.as_str().and_then(ServiceProtocol::parse) {
            None => d.error(
                n.pos,
                &path,
                format!(
                    "expected a protocol ({}), found {}",
                    ServiceProtocol::NAMES,
                    describe(n)
                ),
            ),
            // A database speaks its own protocol, described by `db_system`.
            Some(ServiceProtocol::Grpc) if s.kind == Some(ServiceKind::Database) => d.error(
                n.pos,
                &path,
                "a database's calls are `db.*` spans; `protocol: grpc` is for gateway, internal and external services (give `db_system` instead)",
            ),
            Some(p) => s.protocol = p,
        }
    }
    s
}
