//! The project's own config, conventions and definitions, compiled into the
//! binary so an installed `otelsim` works from any directory.

/// `config/config.yaml`: ids, tenants, agents and texts that scenarios name by key.
pub const CONFIG: &str = include_str!("../config/config.yaml");
/// `conventions/semconv.yaml`: span and attribute names, types and allowed values.
pub const SEMCONV: &str = include_str!("../conventions/semconv.yaml");

macro_rules! definitions {
    ($($name:literal),* $(,)?) => {
        /// (path under `definitions/` without `.yaml`, YAML text) for every file in
        /// `definitions/` and its pack subfolders; the scenario name is the file stem.
        pub const DEFINITIONS: &[(&str, &str)] = &[
            $(($name, include_str!(concat!("../definitions/", $name, ".yaml")))),*
        ];
    };
}

/// The scenario name of a `DEFINITIONS` path: its file stem.
pub fn stem(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
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
    "agent_trace/new_claim_phone_reasoning",
    "instability/long_drift_chains",
    "instability/noisy_mixed_sessions",
    "instability/simple_correction_loop",
    "microservices/ms_browse_catalog",
    "microservices/ms_checkout",
    "microservices/ms_login",
    "microservices/ms_order_cancel",
    "microservices/ms_order_history",
    "microservices/ms_order_status",
    "microservices/ms_stock_check",
    "microservices/ms_update_profile",
    "microservices/ms_user_profile",
    "episodes/grid_world_episode",
    "episodes/support_desk_episode",
);

#[cfg(test)]
mod tests {
    /// Every file in definitions/ and its subfolders must be embedded (and nothing else).
    #[test]
    fn embedded_list_matches_the_definitions_folder() {
        let dir = std::path::PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/definitions"));
        // Every file, pack subfolders included, as its path under definitions/.
        let mut on_disk: Vec<String> = Vec::new();
        let mut stack = vec![dir.clone()];
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(&d).expect("definitions folder").flatten() {
                let p = e.path();
                if p.is_dir() {
                    stack.push(p);
                } else {
                    let rel = p.strip_prefix(&dir).expect("under definitions");
                    let rel = rel.with_extension("");
                    on_disk.push(rel.to_string_lossy().replace('\\', "/"));
                }
            }
        }
        on_disk.sort();
        let mut embedded: Vec<String> = super::DEFINITIONS
            .iter()
            .map(|(n, _)| n.to_string())
            .collect();
        embedded.sort();
        assert_eq!(on_disk, embedded, "update the list in src/embedded.rs");
    }
}
