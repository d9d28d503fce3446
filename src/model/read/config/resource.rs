//! Reads resource attributes: `resource:` in config.yaml and the predecessor's
//! `resource.yaml`.

use crate::diag::Diags;
use crate::model::config::ResourceConfig;
use crate::model::read::{attr_from_node, read_attr_map};
use crate::yaml::{join, read_str, MapReader, Node};

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
    for (plane, slot) in [
        ("data_plane", &mut res.data_plane),
        ("control_plane", &mut res.control_plane),
    ] {
        if let Some(n) = r.get(plane) {
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
    for slot in [&mut res.data_plane, &mut res.control_plane] {
        for (k, v) in &shared {
            if !slot.iter().any(|(sk, _)| sk == k) {
                slot.push((k.clone(), v.clone()));
            }
        }
    }
    res
}
