//! Reads the catalogue sections of config.yaml: `tenants`/`tenant`, `agents`,
//! `mcp_servers`, and `realistic_scenarios` (divisions, error templates, workflows).

use crate::diag::{Diags, Pos};
use crate::model::config::{ErrorTemplate, McpServer, McpTool, Tenant, WORKFLOW_STEPS};
use crate::model::read::did_you_mean;
use crate::yaml::{join, read_str, read_str_list, Kind, MapReader, Node};
use std::collections::BTreeMap;

/// `tenants: {<key>: {id, display_name}}`, then the spec's single-tenant form
/// `tenant: {id: ...}`, which becomes the first tenant (key `default`).
pub(crate) fn read_tenants(r: &mut MapReader<'_>, d: &mut Diags) -> Vec<Tenant> {
    let mut tenants = read_tenant_map(r.get("tenants"), d);
    if let Some(n) = r.get("tenant") {
        if let Some(mut tr) = MapReader::new(n, "tenant", d) {
            let id = tr.get("id").and_then(|v| read_str(v, "tenant.id", d));
            let display_name = tr
                .get("display_name")
                .and_then(|v| read_str(v, "tenant.display_name", d));
            tr.finish(d);
            if let Some(id) = id {
                tenants.insert(
                    0,
                    Tenant {
                        key: "default".into(),
                        id,
                        display_name,
                    },
                );
            }
        }
    }
    tenants
}

fn read_tenant_map(node: Option<&Node>, d: &mut Diags) -> Vec<Tenant> {
    let mut out = Vec::new();
    let Some(mut r) = node.and_then(|n| MapReader::new(n, "tenants", d)) else {
        return out;
    };
    let entries: Vec<(String, Node)> = r.rest().cloned().collect();
    for (key, body) in entries {
        let p = join("tenants", &key);
        let Some(mut tr) = MapReader::new(&body, &p, d) else {
            continue;
        };
        let id = tr.get("id").and_then(|n| read_str(n, &tr.sub("id"), d));
        let display_name = tr
            .get("display_name")
            .and_then(|n| read_str(n, &tr.sub("display_name"), d));
        tr.finish(d);
        match id {
            Some(id) => out.push(Tenant {
                key,
                id,
                display_name,
            }),
            None => d.error(body.pos, &p, "tenant needs an `id`"),
        }
    }
    out
}

/// `agents`: a list of ids or `{id: ...}` entries.
pub(crate) fn read_agents(node: Option<&Node>, d: &mut Diags) -> Vec<String> {
    let Some(node) = node else {
        return Vec::new();
    };
    let Kind::Seq(items) = &node.kind else {
        d.error(node.pos, "agents", "expected a list of `{id: ...}`");
        return Vec::new();
    };
    let mut out = Vec::new();
    for (i, it) in items.iter().enumerate() {
        let p = format!("agents[{i}]");
        if let Some(s) = it.as_str() {
            out.push(s.to_string());
            continue;
        }
        let Some(mut r) = MapReader::new(it, &p, d) else {
            continue;
        };
        r.ignore("description");
        r.ignore("name");
        match r.get("id").and_then(|n| read_str(n, &r.sub("id"), d)) {
            Some(id) => out.push(id),
            None => d.error(it.pos, &p, "agent needs an `id`"),
        }
        r.finish(d);
    }
    out
}

/// `address: host[:port]` of an MCP server (port 443 when not given).
fn read_address(n: &Node, path: &str, d: &mut Diags) -> Option<(String, u16)> {
    let text = read_str(n, path, d)?;
    let (host, port) = match text.rsplit_once(':') {
        Some((h, p)) => (h, p.parse::<u16>().ok().filter(|p| *p > 0)),
        None => (text.as_str(), Some(443)),
    };
    let valid_host = !host.is_empty()
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'));
    match port {
        Some(port) if valid_host => Some((host.to_string(), port)),
        _ => {
            d.error(
                n.pos,
                path,
                format!("`{text}` is not `host` or `host:port` (a host name, a port 1-65535)"),
            );
            None
        }
    }
}

/// `mcp_servers: {<key>: {mcp_server_uuid, description, address, tools: [{name, tool_uuid}]}}`.
pub(crate) fn read_mcp_servers(node: Option<&Node>, d: &mut Diags) -> Vec<McpServer> {
    let mut out = Vec::new();
    let Some(mut r) = node.and_then(|n| MapReader::new(n, "mcp_servers", d)) else {
        return out;
    };
    let entries: Vec<(String, Node)> = r.rest().cloned().collect();
    for (key, body) in entries {
        let p = join("mcp_servers", &key);
        let Some(mut sr) = MapReader::new(&body, &p, d) else {
            continue;
        };
        let uuid = sr
            .get_any(&["mcp_server_uuid", "uuid"])
            .and_then(|(k, n)| read_str(n, &sr.sub(k), d));
        let description = sr
            .get("description")
            .and_then(|n| read_str(n, &sr.sub("description"), d))
            .unwrap_or_default();
        let address = sr
            .get("address")
            .and_then(|n| read_address(n, &sr.sub("address"), d))
            .unwrap_or_else(|| (format!("mcp-{key}"), 443));
        let mut tools = Vec::new();
        if let Some(tn) = sr.get("tools") {
            match &tn.kind {
                Kind::Seq(items) => {
                    for (i, it) in items.iter().enumerate() {
                        let tp = format!("{p}.tools[{i}]");
                        let Some(mut tr) = MapReader::new(it, &tp, d) else {
                            continue;
                        };
                        let name = tr.get("name").and_then(|n| read_str(n, &tr.sub("name"), d));
                        let tuuid = tr
                            .get_any(&["tool_uuid", "uuid"])
                            .and_then(|(k, n)| read_str(n, &tr.sub(k), d));
                        tr.ignore("description");
                        tr.finish(d);
                        match (name, tuuid) {
                            (Some(name), Some(uuid)) => tools.push(McpTool { name, uuid }),
                            _ => d.error(it.pos, &tp, "tool needs `name` and `tool_uuid`"),
                        }
                    }
                }
                _ => d.error(
                    tn.pos,
                    &sr.sub("tools"),
                    "expected a list of `{name, tool_uuid}`",
                ),
            }
        }
        sr.finish(d);
        match uuid {
            Some(uuid) => out.push(McpServer {
                key,
                uuid,
                description,
                address,
                tools,
            }),
            None => d.error(body.pos, &p, "MCP server needs `mcp_server_uuid`"),
        }
    }
    out
}

/// What `realistic_scenarios` (alias `scenarios`) declares.
#[derive(Default)]
pub(crate) struct Realistic {
    /// division name → MCP server key.
    pub divisions: Vec<(String, String)>,
    pub error_templates: BTreeMap<String, ErrorTemplate>,
    pub workflow_templates: BTreeMap<String, Vec<String>>,
    /// Where each workflow step is written, in step order.
    pub workflow_step_pos: BTreeMap<String, Vec<Pos>>,
}

/// Reads `realistic_scenarios` and checks that each division names a declared MCP server.
pub(crate) fn read_realistic(
    r: &mut MapReader<'_>,
    root: &Node,
    mcp_servers: &[McpServer],
    d: &mut Diags,
) -> Realistic {
    let mut out = Realistic::default();
    if let Some((k, n)) = r.get_any(&["realistic_scenarios", "scenarios"]) {
        read_realistic_section(n, k, &mut out, d);
    }
    check_workflow_steps(&out, mcp_servers, d);
    for (div, server) in &out.divisions {
        if !mcp_servers.iter().any(|s| &s.key == server) {
            d.error(
                root.get("realistic_scenarios")
                    .or(root.get("scenarios"))
                    .map_or(Pos::default(), |n| n.pos),
                &format!("realistic_scenarios.divisions.{div}"),
                format!(
                    "unknown mcp_servers key `{server}`; defined: {}",
                    keys_of(mcp_servers)
                ),
            );
        }
    }
    out
}

/// Each workflow step must be a built-in step or a tool of some MCP server (which
/// server depends on the scenario, and is checked when it is compiled).
fn check_workflow_steps(out: &Realistic, mcp_servers: &[McpServer], d: &mut Diags) {
    let mut tools: Vec<&str> = mcp_servers
        .iter()
        .flat_map(|s| s.tools.iter().map(|t| t.name.as_str()))
        .collect();
    tools.sort_unstable();
    tools.dedup();
    for (name, steps) in &out.workflow_templates {
        let positions = out.workflow_step_pos.get(name);
        for (i, step) in steps.iter().enumerate() {
            if WORKFLOW_STEPS.contains(&step.as_str())
                || tools.binary_search(&step.as_str()).is_ok()
            {
                continue;
            }
            let hint = did_you_mean(
                step,
                WORKFLOW_STEPS.iter().copied().chain(tools.iter().copied()),
            );
            d.error(
                positions.and_then(|p| p.get(i)).copied().unwrap_or_default(),
                &format!("realistic_scenarios.workflow_templates.{name}[{i}]"),
                format!(
                    "step `{step}`{hint} is neither a built-in step (planner, task, tools_recommend, response_compose) nor a tool of an MCP server (tools: {})",
                    if tools.is_empty() { "none".to_string() } else { tools.join(", ") }
                ),
            );
        }
    }
}

fn keys_of(servers: &[McpServer]) -> String {
    servers
        .iter()
        .map(|s| s.key.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

fn read_realistic_section(node: &Node, path: &str, out: &mut Realistic, d: &mut Diags) {
    let Some(mut r) = MapReader::new(node, path, d) else {
        return;
    };
    if let Some(n) = r.get("divisions") {
        let p = r.sub("divisions");
        if let Some(mut dr) = MapReader::new(n, &p, d) {
            let entries: Vec<(String, Node)> = dr.rest().cloned().collect();
            for (k, v) in entries {
                if let Some(s) = read_str(&v, &join(&p, &k), d) {
                    out.divisions.push((k, s));
                }
            }
        }
    }
    if let Some(n) = r.get("error_templates") {
        out.error_templates = read_error_templates(n, &r.sub("error_templates"), d);
    }
    if let Some(n) = r.get("workflow_templates") {
        let p = r.sub("workflow_templates");
        if let Some(mut wr) = MapReader::new(n, &p, d) {
            let entries: Vec<(String, Node)> = wr.rest().cloned().collect();
            for (name, body) in entries {
                let wp = join(&p, &name);
                let (list, lp) = match body.get("steps") {
                    Some(s) => (s, format!("{wp}.steps")),
                    None => (&body, wp.clone()),
                };
                let mut steps = Vec::new();
                let mut positions = Vec::new();
                match &list.kind {
                    Kind::Seq(items) => {
                        for (i, it) in items.iter().enumerate() {
                            if let Some(s) = read_str(it, &format!("{lp}[{i}]"), d) {
                                steps.push(s);
                                positions.push(it.pos);
                            }
                        }
                    }
                    _ => {
                        for s in read_str_list(list, &lp, d) {
                            steps.push(s);
                            positions.push(list.pos);
                        }
                    }
                }
                if steps.is_empty() {
                    d.error(body.pos, &wp, "a workflow needs at least one step");
                }
                out.workflow_step_pos.insert(name.clone(), positions);
                out.workflow_templates.insert(name, steps);
            }
        }
    }
    r.finish(d);
}

/// `error_templates: {<goal>: {error_type, http_status_codes}}`.
fn read_error_templates(n: &Node, p: &str, d: &mut Diags) -> BTreeMap<String, ErrorTemplate> {
    let mut out = BTreeMap::new();
    let Some(mut er) = MapReader::new(n, p, d) else {
        return out;
    };
    let entries: Vec<(String, Node)> = er.rest().cloned().collect();
    for (goal, body) in entries {
        let gp = join(p, &goal);
        let Some(mut gr) = MapReader::new(&body, &gp, d) else {
            continue;
        };
        let error_type = gr
            .get("error_type")
            .and_then(|n| read_str(n, &gr.sub("error_type"), d));
        let mut codes = Vec::new();
        if let Some(cn) = gr.get("http_status_codes") {
            match &cn.kind {
                Kind::Seq(items) => {
                    for it in items {
                        match it.kind {
                            Kind::Int(c) if (100..600).contains(&c) => codes.push(c),
                            _ => d.error(
                                it.pos,
                                &gr.sub("http_status_codes"),
                                "expected HTTP status codes (100–599)",
                            ),
                        }
                    }
                }
                _ => d.error(
                    cn.pos,
                    &gr.sub("http_status_codes"),
                    "expected a list of HTTP status codes",
                ),
            }
        }
        gr.finish(d);
        out.insert(
            goal,
            ErrorTemplate {
                error_type,
                http_status_codes: codes,
            },
        );
    }
    out
}
