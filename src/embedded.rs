//! The project's own config, conventions and definitions, compiled into the
//! binary so an installed `otelsim` works from any directory.

/// `config/config.yaml`: ids, tenants, agents and texts that scenarios name by key.
pub const CONFIG: &str = include_str!("../config/config.yaml");
/// `conventions/semconv.yaml`: span and attribute names, types and allowed values.
pub const SEMCONV: &str = include_str!("../conventions/semconv.yaml");

macro_rules! definitions {
    ($($name:literal),* $(,)?) => {
        /// (scenario name, YAML text) for every file in `definitions/`.
        pub const DEFINITIONS: &[(&str, &str)] = &[
            $(($name, include_str!(concat!("../definitions/", $name, ".yaml")))),*
        ];
    };
}

definitions!(
    "agent_turn_with_rag",
    "claim_status_ungrounded_response",
    "example_scenario",
    "new_claim_phone",
    "new_claim_phone_4xx_invalid_arguments",
    "new_claim_phone_mcp_tool_retry_then_success",
    "new_claim_phone_multi_turn",
    "new_claim_phone_wrong_division",
    "parallel_tool_fanout",
    "pay_partial_workflow",
    "request_allowed_audit_flagged",
    "request_blocked_by_policy",
    "request_blocked_invalid_context_augment_exception",
    "request_blocked_invalid_payload",
    "request_blocked_invalid_payload_multi",
    "request_blocked_policy_fail_closed",
    "request_blocked_rate_limited",
    "request_error_policy_runtime",
    "request_error_policy_unavailable",
    "tool_retry_backoff",
);

#[cfg(test)]
mod tests {
    /// Every file in definitions/ must be embedded (and nothing else).
    #[test]
    fn embedded_list_matches_the_definitions_folder() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/definitions");
        let mut on_disk: Vec<String> = std::fs::read_dir(dir)
            .expect("definitions folder")
            .filter_map(|e| e.ok())
            .filter_map(|e| {
                e.path()
                    .file_stem()
                    .map(|s| s.to_string_lossy().into_owned())
            })
            .collect();
        on_disk.sort();
        let mut embedded: Vec<String> = super::DEFINITIONS
            .iter()
            .map(|(n, _)| n.to_string())
            .collect();
        embedded.sort();
        assert_eq!(on_disk, embedded, "update the list in src/embedded.rs");
    }
}
