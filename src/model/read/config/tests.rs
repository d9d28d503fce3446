//! `services:` in config.yaml: what it reads to, and each bad form's diagnostic.

use crate::diag::{Diags, Pos};
use crate::model::config::{Config, ServiceDef};
use crate::model::AttrValue;

/// Loads inline config.yaml text; returns the config and every diagnostic as printed.
fn load(src: &str) -> (Option<Config>, Vec<String>) {
    let mut d = Diags::new("config.yaml");
    let node = crate::yaml::parse(src, &mut d).expect("test YAML parses");
    let cfg = super::load(&node, None, &mut d);
    (cfg, d.items.iter().map(ToString::to_string).collect())
}

/// The single diagnostic of `src`, which must also name `needles`.
fn one_error(src: &str, needles: &[&str]) -> String {
    let (_, diags) = load(src);
    assert_eq!(diags.len(), 1, "{diags:#?}");
    for n in needles {
        assert!(diags[0].contains(n), "`{n}` missing from: {}", diags[0]);
    }
    diags[0].clone()
}

#[test]
fn services_are_read_in_file_order_with_their_attributes() {
    let (cfg, diags) = load(
        "services:\n  checkout:\n    attributes:\n      deployment.environment: prod\n      service.version: \"1.4.2\"\n      replicas: 3\n      ratio: 0.5\n      canary: false\n  payments: {}\n  inventory:\n",
    );
    assert!(diags.is_empty(), "{diags:#?}");
    let services = cfg.expect("config loads").services;
    assert_eq!(
        services,
        vec![
            ServiceDef {
                name: "checkout".into(),
                attributes: vec![
                    ("deployment.environment".into(), AttrValue::str("prod")),
                    ("service.version".into(), AttrValue::str("1.4.2")),
                    ("replicas".into(), AttrValue::Int(3)),
                    ("ratio".into(), AttrValue::Double(0.5)),
                    ("canary".into(), AttrValue::Bool(false)),
                ],
                pos: Pos { line: 2, col: 3 },
                ..Default::default()
            },
            ServiceDef {
                name: "payments".into(),
                attributes: Vec::new(),
                pos: Pos { line: 9, col: 3 },
                ..Default::default()
            },
            ServiceDef {
                name: "inventory".into(),
                attributes: Vec::new(),
                pos: Pos { line: 10, col: 3 },
                ..Default::default()
            },
        ]
    );
}

#[test]
fn no_services_key_means_no_services() {
    for src in ["tenants: {}\n", "services:\n", "services: {}\n"] {
        let (cfg, diags) = load(src);
        assert!(diags.is_empty(), "{src}: {diags:#?}");
        assert!(cfg.expect("config loads").services.is_empty(), "{src}");
    }
}

#[test]
fn service_name_among_the_attributes_is_an_error() {
    let e = one_error(
        "services:\n  checkout:\n    attributes:\n      service.name: shop\n",
        &[
            "config.yaml:4:7",
            "key `services.checkout.attributes.service.name`",
            "names the service",
            "`checkout`",
        ],
    );
    assert!(e.contains("error"), "{e}");
}

#[test]
fn non_scalar_attribute_values_are_errors() {
    one_error(
        "services:\n  checkout:\n    attributes:\n      zones: [a, b]\n",
        &[
            "config.yaml:4:14",
            "key `services.checkout.attributes.zones`",
            "must be scalars",
        ],
    );
    one_error(
        "services:\n  checkout:\n    attributes: [a, b]\n",
        &[
            "config.yaml:3:17",
            "key `services.checkout.attributes`",
            "mapping of attribute name → value",
        ],
    );
}

#[test]
fn unknown_keys_inside_a_service_name_the_valid_one() {
    // An error in config.yaml, unlike in a scenario file: every scenario depends on it.
    one_error(
        "services:\n  checkout:\n    atributes:\n      tier: gold\n",
        &[
            "config.yaml:3:5: error:",
            "key `services.checkout.atributes`",
            "did you mean `attributes`",
            "valid keys here: address, attributes, db_system, error_rate, error_types, kind, latency, protocol",
        ],
    );
}

#[test]
fn an_empty_service_name_is_an_error() {
    one_error(
        "services:\n  \"\": {}\n",
        &["config.yaml:2:3", "key `services`", "empty service name"],
    );
}

#[test]
fn services_and_their_bodies_must_be_mappings() {
    one_error(
        "services: [checkout]\n",
        &["config.yaml:1:11", "key `services`", "expected a mapping"],
    );
    one_error(
        "services:\n  checkout: yes\n",
        &[
            "config.yaml:2:13",
            "key `services.checkout`",
            "expected a mapping",
        ],
    );
}

#[test]
fn an_empty_or_missing_attempt_list_is_an_error_not_one_success() {
    one_error(
        "mcp_retry_templates:\n  flaky:\n    attempts: []\n",
        &[
            "config.yaml:3:15",
            "mcp_retry_templates.flaky",
            "`attempts` is empty",
        ],
    );
    one_error(
        "mcp_retry_templates:\n  flaky: {}\n",
        &["config.yaml:2:10", "missing `attempts:"],
    );
}

#[test]
fn a_default_workflow_must_name_a_workflow() {
    one_error(
        "realistic_scenarios:\n  workflow_templates:\n    new_claim: [planner]\ncontrol_plane:\n  default_data_plane_workflow: new_clam\n",
        &[
            "config.yaml:5:32",
            "control_plane.default_data_plane_workflow",
            "unknown workflow `new_clam` (did you mean `new_claim`?)",
        ],
    );
}

#[test]
fn attribute_lists_are_capped_at_what_sdks_keep() {
    let attrs: String = (0..129).map(|i| format!("      k{i}: {i}\n")).collect();
    one_error(
        &format!("services:\n  checkout:\n    attributes:\n{attrs}"),
        &["config.yaml:4:7", "129 attributes; at most 128"],
    );
    let flat: String = (0..129).map(|i| format!("  k{i}: {i}\n")).collect();
    one_error(
        &format!("resource:\n{flat}"),
        &["config.yaml:2:3", "129 resource attributes; at most 128"],
    );
}

#[test]
fn defaults_copied_into_every_template_are_bounded_like_aliases() {
    // 1 MB of defaults copied into 40 templates: 40 MB from a 1 MB file.
    let templates: String = (0..40).map(|i| format!("    t{i}: {{}}\n")).collect();
    let src = format!(
        "control_plane:\n  request_validation_templates:\n    _defaults:\n      root: {{note: \"{}\"}}\n{templates}",
        "n".repeat(1 << 20)
    );
    one_error(
        &src,
        &[
            "request_validation_templates.t",
            "with `_defaults` merged in take more than 32 MiB",
        ],
    );
}

#[test]
fn models_read_their_token_cap_and_guardrail() {
    let (cfg, diags) = load(
        "llm:\n  models:\n    - { provider: openai, model: gpt-4.1, max_tokens: 2048 }\n    - { provider: aws.bedrock, model: nova, guardrail_id: gr-1 }\n",
    );
    assert!(diags.is_empty(), "{diags:#?}");
    let m = cfg.expect("config loads").llm_models;
    assert_eq!(
        (m[0].max_tokens, m[0].guardrail_id.as_deref()),
        (2048, None)
    );
    assert_eq!(
        (m[1].max_tokens, m[1].guardrail_id.as_deref()),
        (crate::model::config::DEFAULT_MAX_TOKENS, Some("gr-1"))
    );
    one_error(
        "llm:\n  models:\n    - { provider: openai, model: gpt-4.1, max_tokens: 0 }\n",
        &["config.yaml:3:", "llm.models[0].max_tokens", "at least 1"],
    );
}

#[test]
fn an_mcp_server_address_is_a_host_and_an_optional_port() {
    let server = |address: &str| {
        format!("mcp_servers:\n  phone:\n    mcp_server_uuid: u\n    {address}tools: [{{name: t, tool_uuid: v}}]\n")
    };
    let address_of = |src: &str| {
        let (cfg, diags) = load(src);
        assert!(diags.is_empty(), "{diags:#?}");
        cfg.expect("config loads").mcp_servers[0].address.clone()
    };
    assert_eq!(address_of(&server("")), ("mcp-phone".to_string(), 443));
    assert_eq!(
        address_of(&server("address: mcp.example.internal\n    ")),
        ("mcp.example.internal".to_string(), 443)
    );
    assert_eq!(
        address_of(&server("address: \"10.0.0.7:8080\"\n    ")),
        ("10.0.0.7".to_string(), 8080)
    );
    for bad in ["\"host:0\"", "\"host:http\"", "\"a b:80\"", "\":443\""] {
        one_error(
            &server(&format!("address: {bad}\n    ")),
            &["config.yaml:4:", "mcp_servers.phone.address", "host:port"],
        );
    }
}
