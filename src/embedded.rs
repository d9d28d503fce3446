//! The project's own config, conventions and definitions, compiled into the
//! binary so an installed `otelsim` works from any directory.

/// `config/config.yaml`: ids, tenants, agents and texts that scenarios name by key.
pub const CONFIG: &str = include_str!("../config/config.yaml");
/// `conventions/semconv.yaml`: span and attribute names, types and allowed values.
pub const SEMCONV: &str = include_str!("../conventions/semconv.yaml");

// An entry is `"name"` (definitions/name.yaml) or `"name" in "pack"`
// (definitions/pack/name.yaml); the scenario's name is the file stem either way.
macro_rules! definitions {
    ($($name:literal $(in $dir:literal)?),* $(,)?) => {
        /// (scenario name, YAML text) for every file in `definitions/` and its subfolders.
        pub const DEFINITIONS: &[(&str, &str)] = &[
            $(($name, include_str!(concat!("../definitions/", $($dir, "/",)? $name, ".yaml")))),*
        ];
        /// The path under `definitions/` of each of [`DEFINITIONS`], in the same order.
        pub const DEFINITION_PATHS: &[&str] = &[$(concat!($($dir, "/",)? $name, ".yaml")),*];
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
    "grid_world_episode" in "episodes",
    "support_desk_episode" in "episodes",
);

#[cfg(test)]
mod tests {
    /// Every file in definitions/ and its subfolders must be embedded (and nothing else).
    #[test]
    fn embedded_list_matches_the_definitions_folder() {
        let mut on_disk: Vec<String> = Vec::new();
        let mut dirs = vec![std::path::PathBuf::from(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/definitions"
        ))];
        while let Some(dir) = dirs.pop() {
            for e in std::fs::read_dir(dir)
                .expect("definitions folder")
                .flatten()
            {
                let p = e.path();
                if p.is_dir() {
                    dirs.push(p);
                } else if let Some(stem) = p.file_stem() {
                    on_disk.push(stem.to_string_lossy().into_owned());
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
