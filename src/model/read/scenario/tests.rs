//! `service:` on a step of the `root:` tree: read, and checked against config.yaml's `services:`.

use crate::diag::{Diags, Pos};
use crate::model::config::Config;
use crate::model::scenario::ScenarioDef;

fn config(src: &str) -> Config {
    let mut d = Diags::new("config.yaml");
    let node = crate::yaml::parse(src, &mut d).expect("test YAML parses");
    let cfg = crate::model::read::config::load(&node, None, &mut d).expect("config loads");
    assert!(d.items.is_empty(), "{:#?}", d.items);
    cfg
}

const TWO_SERVICES: &str = "services:\n  checkout: {}\n  payments:\n    attributes: {tier: gold}\n";

/// Loads an inline scenario as `defs/shop.yaml`; returns it and every diagnostic as printed.
fn scenario(cfg: &Config, src: &str) -> (Option<ScenarioDef>, Vec<String>) {
    let mut d = Diags::new("defs/shop.yaml");
    let node = crate::yaml::parse(src, &mut d).expect("test YAML parses");
    let def = super::load(&node, "shop", cfg, &mut d);
    (def, d.items.iter().map(ToString::to_string).collect())
}

/// The single diagnostic of `src`, which must name each of `needles`.
fn one_error(cfg: &Config, src: &str, needles: &[&str]) {
    let (_, diags) = scenario(cfg, src);
    assert_eq!(diags.len(), 1, "{diags:#?}");
    for n in needles {
        assert!(diags[0].contains(n), "`{n}` missing from: {}", diags[0]);
    }
}

#[test]
fn steps_name_declared_services() {
    let cfg = config(TWO_SERVICES);
    let (def, diags) = scenario(
        &cfg,
        "root:\n  type: vendor.a2a.orchestrate\n  service: checkout\n  children:\n    - type: vendor.llm.call\n      service: payments\n    - type: vendor.planner\n",
    );
    assert!(diags.is_empty(), "{diags:#?}");
    let root = def.expect("scenario loads").root.expect("has a root");
    assert_eq!(
        root.service,
        Some(("checkout".to_string(), Pos { line: 3, col: 12 }))
    );
    assert_eq!(
        root.children[0].service,
        Some(("payments".to_string(), Pos { line: 6, col: 16 }))
    );
    assert_eq!(root.children[1].service, None);
}

#[test]
fn an_unknown_service_lists_the_declared_ones_with_a_hint() {
    let cfg = config(TWO_SERVICES);
    one_error(
        &cfg,
        "root:\n  type: vendor.a2a.orchestrate\n  children:\n    - type: vendor.llm.call\n      service: chekout\n",
        &[
            "defs/shop.yaml:5:16",
            "key `root.children[0].service`",
            "unknown services key `chekout`",
            "(did you mean `checkout`?)",
            "defined in config.yaml: checkout, payments",
        ],
    );
    let (_, diags) = scenario(
        &cfg,
        "root:\n  type: vendor.a2a.orchestrate\n  service: warehouse\n",
    );
    assert_eq!(diags.len(), 1, "{diags:#?}");
    assert!(!diags[0].contains("did you mean"), "{}", diags[0]);
    assert!(
        diags[0].contains("defined in config.yaml: checkout, payments"),
        "{}",
        diags[0]
    );
}

#[test]
fn a_service_without_any_declared_says_so() {
    let cfg = config("tenants: {}\n");
    one_error(
        &cfg,
        "root:\n  type: vendor.a2a.orchestrate\n  service: checkout\n",
        &[
            "defs/shop.yaml:3:12",
            "key `root.service`",
            "unknown service `checkout`",
            "config.yaml declares no services:",
        ],
    );
}

#[test]
fn a_service_must_be_a_name() {
    let cfg = config(TWO_SERVICES);
    one_error(
        &cfg,
        "root:\n  type: vendor.a2a.orchestrate\n  service: [checkout]\n",
        &[
            "defs/shop.yaml:3:12",
            "key `root.service`",
            "expected a string",
        ],
    );
}

#[test]
fn a_misspelt_service_key_is_a_warning_that_suggests_it() {
    let cfg = config(TWO_SERVICES);
    let src = "root:\n  type: vendor.a2a.orchestrate\n  servic: checkout\n";
    one_error(
        &cfg,
        src,
        &[
            "defs/shop.yaml:3:3: warning:",
            "key `root.servic`",
            "did you mean `service`",
        ],
    );
    // The file still loads, without the key it does not know.
    let (def, _) = scenario(&cfg, src);
    let root = def.expect("scenario loads").root.expect("has a root");
    assert_eq!(root.service, None);
}
