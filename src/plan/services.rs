//! The services of a run: every span and log record is emitted under one, and
//! each is one OTel resource (`service.name` plus attributes).
//!
//! Two kinds share one table. The agent platform's planes come first: the data
//! plane and the control plane from config `resource:`, each bare and once per
//! component (`vendor.component` set), in a fixed order — the order encoders
//! have always grouped resources in, so output stays byte-identical. Services
//! declared in config `services:` follow, in file order; a step names one with
//! `service: NAME`, and one trace may cross many.

use crate::model::AttrValue;
use crate::record::ServiceId;
use std::sync::Arc;

/// Components a plane's span can belong to (semconv `component` values), sorted:
/// the order of the planes' component services.
pub const PLANE_COMPONENTS: [&str; 6] = [
    "llm",
    "mcp_client",
    "orchestrator",
    "planning",
    "retrieval",
    "tool_recommender",
];

/// Services per plane: the bare plane, then one per component.
const PER_PLANE: usize = 1 + PLANE_COMPONENTS.len();

/// One service: the resource its spans, log records and metrics are sent under.
#[derive(Clone, Debug)]
pub struct Service {
    /// How reports and diagnostics name it: the declared name, or
    /// `data-plane` / `control-plane/llm` for the planes.
    pub label: Arc<str>,
    /// Resource attributes, `service.name` included.
    pub attrs: Vec<(String, AttrValue)>,
    /// Attributes emitted after the run's own (`otelsim.run.id`): a plane
    /// component's `component`, where otelsim has always put it.
    pub after_run: Vec<(String, AttrValue)>,
    /// The service whose resource reports this one's metrics: itself, or the
    /// bare plane for a plane component (metrics are per plane).
    pub metrics_on: ServiceId,
}

impl Service {
    /// `service.name`.
    pub fn name(&self) -> Option<&AttrValue> {
        self.attrs
            .iter()
            .find(|(k, _)| k == "service.name")
            .map(|(_, v)| v)
    }
}

/// The run's service table.
#[derive(Clone, Debug, Default)]
pub struct Services {
    list: Vec<Service>,
}

impl Services {
    /// The bare data plane and control plane services.
    pub const PLANES: [ServiceId; 2] = [ServiceId(0), ServiceId(PER_PLANE as u16)];

    /// The planes (resource attributes of the data and control plane, and the
    /// key of the component attribute) followed by the declared services.
    pub fn new(
        data_plane: &[(String, AttrValue)],
        control_plane: &[(String, AttrValue)],
        component_key: &str,
        declared: Vec<(String, Vec<(String, AttrValue)>)>,
    ) -> Services {
        let mut list = Vec::with_capacity(2 * PER_PLANE + declared.len());
        for (p, (label, attrs)) in [("data-plane", data_plane), ("control-plane", control_plane)]
            .into_iter()
            .enumerate()
        {
            let bare = ServiceId((p * PER_PLANE) as u16);
            list.push(Service {
                label: Arc::from(label),
                attrs: attrs.to_vec(),
                after_run: Vec::new(),
                metrics_on: bare,
            });
            for c in PLANE_COMPONENTS {
                list.push(Service {
                    label: Arc::from(format!("{label}/{c}")),
                    attrs: attrs
                        .iter()
                        .filter(|(k, _)| k != component_key)
                        .cloned()
                        .collect(),
                    after_run: vec![(component_key.to_string(), AttrValue::str(c))],
                    metrics_on: bare,
                });
            }
        }
        for (name, attrs) in declared {
            let id = ServiceId(list.len() as u16);
            list.push(Service {
                label: Arc::from(name.as_str()),
                attrs,
                after_run: Vec::new(),
                metrics_on: id,
            });
        }
        Services { list }
    }

    /// The service of a plane's span with an optional component; an unknown
    /// component (never produced by the compiler) falls back to the bare plane.
    pub fn plane(&self, control_plane: bool, component: Option<&str>) -> ServiceId {
        let base = if control_plane { PER_PLANE } else { 0 };
        let offset = component
            .and_then(|c| PLANE_COMPONENTS.iter().position(|k| *k == c))
            .map_or(0, |i| i + 1);
        ServiceId((base + offset) as u16)
    }

    /// A service declared in config `services:`.
    pub fn declared(&self, name: &str) -> Option<ServiceId> {
        self.list
            .iter()
            .enumerate()
            .skip(2 * PER_PLANE)
            .find(|(_, s)| &*s.label == name)
            .map(|(i, _)| ServiceId(i as u16))
    }

    /// Names of the declared services, in file order.
    pub fn declared_names(&self) -> impl Iterator<Item = &str> {
        self.list.iter().skip(2 * PER_PLANE).map(|s| &*s.label)
    }

    /// The service with this id.
    pub fn get(&self, id: ServiceId) -> &Service {
        &self.list[usize::from(id.0)]
    }

    /// Every service with its id, in id order.
    pub fn iter(&self) -> impl Iterator<Item = (ServiceId, &Service)> {
        self.list
            .iter()
            .enumerate()
            .map(|(i, s)| (ServiceId(i as u16), s))
    }

    /// How many services there are.
    pub fn len(&self) -> usize {
        self.list.len()
    }

    /// Whether there are none (never, once built from a config).
    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attrs(pairs: &[(&str, &str)]) -> Vec<(String, AttrValue)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), AttrValue::str(v)))
            .collect()
    }

    #[test]
    fn planes_keep_the_order_resources_were_always_grouped_in() {
        let dp = attrs(&[("service.name", "agent-platform"), ("vendor.module", "dp")]);
        let cp = attrs(&[
            ("service.name", "agent-platform"),
            ("vendor.component", "gateway"),
        ]);
        let s = Services::new(&dp, &cp, "vendor.component", Vec::new());
        // (control plane, component) in the order a BTreeMap over them sorts.
        let mut old: Vec<(bool, Option<&str>)> = Vec::new();
        for cp in [false, true] {
            old.push((cp, None));
            old.extend(PLANE_COMPONENTS.iter().map(|c| (cp, Some(*c))));
        }
        let mut sorted = old.clone();
        sorted.sort();
        assert_eq!(old, sorted);
        for (i, (cp, c)) in old.iter().enumerate() {
            assert_eq!(s.plane(*cp, *c), ServiceId(i as u16));
        }
        let llm = s.get(s.plane(true, Some("llm")));
        assert!(llm.attrs.iter().all(|(k, _)| k != "vendor.component"));
        assert_eq!(llm.after_run, attrs(&[("vendor.component", "llm")]));
        assert_eq!(llm.metrics_on, s.plane(true, None));
        assert_eq!(&*llm.label, "control-plane/llm");
    }

    #[test]
    fn declared_services_follow_the_planes_and_report_their_own_metrics() {
        let p = attrs(&[("service.name", "p")]);
        let s = Services::new(
            &p,
            &p,
            "vendor.component",
            vec![
                ("checkout".into(), attrs(&[("service.name", "checkout")])),
                ("payments".into(), attrs(&[("service.name", "payments")])),
            ],
        );
        let id = s.declared("payments").expect("declared");
        assert_eq!(id, ServiceId(15));
        assert_eq!(s.get(id).metrics_on, id);
        assert_eq!(s.get(id).name(), Some(&AttrValue::str("payments")));
        assert_eq!(
            s.declared_names().collect::<Vec<_>>(),
            ["checkout", "payments"]
        );
        assert_eq!(s.declared("data-plane"), None);
        assert_eq!(s.len(), 16);
    }
}
