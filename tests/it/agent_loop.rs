//! The generated content is an agent loop an LLM engineer recognises: a system
//! prompt and the conversation so far, an LLM call that asks for the turn's tools
//! (with the ids the tool spans carry), the tools with their arguments and results,
//! and an LLM call that answers from those results; retrieval steps carry their
//! query and documents.

use crate::support::*;
use serde_json::Value;

const T0: &str = "2026-03-02T00:00:00Z";

fn spans(args: &str) -> Vec<Flat> {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.jsonl");
    Otelsim::new()
        .cli(args)
        .seed(8)
        .start_time(T0)
        .output_file(&out)
        .run_ok();
    spans_in(&out)
}

fn json(s: &Flat, k: &str) -> Value {
    serde_json::from_str(&s.attrs[k]).unwrap_or_else(|e| panic!("{k}: {e}: {}", s.attrs[k]))
}

#[test]
fn the_llm_asks_for_the_tools_and_answers_from_their_results() {
    let spans = spans("scenario --name new_claim_phone --count 5 --genai-profile otel");
    for trace in by_trace(&spans).values() {
        let mut llm: Vec<&Flat> = trace
            .iter()
            .filter(|s| s.class == "vendor.llm.call")
            .collect();
        if llm.is_empty() {
            continue;
        }
        llm.sort_by_key(|s| s.start);
        assert_eq!(llm.len(), 2, "asking and answering");
        let (ask, answer) = (llm[0], llm[1]);
        let tools: Vec<&Flat> = trace
            .iter()
            .filter(|s| s.class == "vendor.mcp.tool.execute")
            .collect();
        // The tools run between the two calls.
        assert!(tools
            .iter()
            .all(|t| t.start > ask.end && t.end < answer.start));
        // The request: tool-call parts with the tool spans' ids, finish reason tool_call.
        assert!(ask.attrs["gen_ai.response.finish_reasons"].contains("tool_call"));
        let out = json(ask, "gen_ai.output.messages");
        let parts = out[0]["parts"].as_array().unwrap();
        assert_eq!(parts.len(), tools.len());
        for (p, t) in parts.iter().zip(&tools) {
            assert_eq!(p["type"], "tool_call");
            assert_eq!(p["id"], t.attrs["gen_ai.tool.call.id"].as_str());
            assert_eq!(p["name"], t.attrs["gen_ai.tool.name"].as_str());
            assert!(p["arguments"].is_object());
        }
        // The input starts with the system instructions.
        let input = json(ask, "gen_ai.input.messages");
        assert_eq!(input[0]["role"], "system");
        // The answer sees the request and each result, and stops.
        assert!(answer.attrs["gen_ai.response.finish_reasons"].contains("stop"));
        let seen = json(answer, "gen_ai.input.messages");
        let roles: Vec<&str> = seen
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["role"].as_str().unwrap())
            .collect();
        assert_eq!(roles.last(), Some(&"tool"));
        assert!(roles.contains(&"assistant"));
        let result = seen.as_array().unwrap().last().unwrap()["parts"][0].clone();
        assert_eq!(result["type"], "tool_call_response");
        assert_eq!(result["id"], parts[0]["id"]);
        // More to read than the request had.
        let tokens = |s: &Flat| s.attrs["gen_ai.usage.input_tokens"].parse::<i64>().unwrap();
        assert!(tokens(answer) > tokens(ask) - 400);
        // The tool span carries what the LLM called it with.
        let attempt = trace.iter().find(|s| s.parent == tools[0].span_id).unwrap();
        assert!(attempt.attrs.contains_key("gen_ai.tool.call.arguments"));
        assert!(attempt.attrs.contains_key("gen_ai.tool.call.result"));
    }
}

#[test]
fn later_turns_carry_the_conversation_so_far() {
    let spans = spans("scenario --name new_claim_phone_multi_turn --count 1 --genai-profile otel");
    let mut asks: Vec<&Flat> = spans
        .iter()
        .filter(|s| s.class == "vendor.llm.call")
        .filter(|s| s.attrs["gen_ai.response.finish_reasons"].contains("tool_call"))
        .collect();
    asks.sort_by_key(|s| s.start);
    assert!(asks.len() >= 2, "{}", asks.len());
    let count = |s: &Flat| json(s, "gen_ai.input.messages").as_array().unwrap().len();
    // system + user, then system + (user, assistant) + user, ...
    assert_eq!(count(asks[0]), 2);
    assert_eq!(count(asks[1]), 4);
}

#[test]
fn retrieval_carries_its_query_and_ranked_documents() {
    let spans = spans("scenario --name agent_turn_with_rag --count 30");
    let rag: Vec<&Flat> = spans
        .iter()
        .filter(|s| s.class == "vendor.context.augment")
        .collect();
    assert!(!rag.is_empty());
    for s in rag {
        assert_eq!(s.attrs["gen_ai.operation.name"], "retrieval");
        assert!(!s.attrs["gen_ai.retrieval.query.text"].is_empty());
        let docs = json(s, "gen_ai.retrieval.documents");
        let docs = docs.as_array().unwrap();
        assert_eq!(docs.len(), 3);
        let scores: Vec<f64> = docs.iter().map(|d| d["score"].as_f64().unwrap()).collect();
        assert!(scores.windows(2).all(|w| w[0] >= w[1]), "{scores:?}");
        assert!(docs
            .iter()
            .all(|d| d["id"].is_string() && d["content"].is_string()));
        // The OpenInference view lists the same documents.
        assert_eq!(
            s.attrs["retrieval.documents.0.document.id"],
            docs[0]["id"].as_str().unwrap()
        );
    }
}

#[test]
fn after_a_failed_tool_the_answer_reads_the_error_and_does_not_claim_success() {
    let spans = spans(
        "scenario --name new_claim_phone_4xx_invalid_arguments --count 3 --genai-profile otel",
    );
    let mut answers = 0;
    for trace in by_trace(&spans).values() {
        let failed_call = trace
            .iter()
            .any(|s| s.class == "vendor.mcp.tool.execute" && s.status == 2);
        let Some(answer) = trace.iter().find(|s| {
            s.class == "vendor.llm.call"
                && s.attrs["gen_ai.response.finish_reasons"].contains("stop")
        }) else {
            continue;
        };
        assert!(failed_call, "the goal fails the tool call");
        answers += 1;
        let seen = json(answer, "gen_ai.input.messages");
        let tool = seen.as_array().unwrap().last().unwrap();
        assert_eq!(tool["role"], "tool");
        assert_eq!(
            tool["parts"][0]["response"]["error"]["type"],
            "invalid_arguments"
        );
        let out = &answer.attrs["gen_ai.output.messages"];
        assert!(out.contains("couldn't finish"), "{out}");
    }
    assert_eq!(answers, 3);
}

#[test]
fn every_tool_execution_shows_its_arguments_and_result_and_a_failed_request_its_error() {
    let spans = spans("run --count 300 --interval 0");
    let calls: Vec<&Flat> = spans
        .iter()
        .filter(|s| s.class == "vendor.mcp.tool.execute")
        .collect();
    assert!(calls.len() > 50, "{} tool calls", calls.len());
    for c in &calls {
        // What a UI shows as the tool's parameters and output.
        assert_eq!(c.attrs["openinference.span.kind"], "TOOL");
        json(c, "gen_ai.tool.call.arguments");
        assert_eq!(
            c.attrs["input.value"],
            c.attrs["gen_ai.tool.call.arguments"]
        );
        assert_eq!(c.attrs["output.value"], c.attrs["gen_ai.tool.call.result"]);
        assert_eq!(c.attrs["input.mime_type"], "application/json");
        let result = json(c, "gen_ai.tool.call.result");
        assert_eq!(
            c.status == 2,
            result.get("error").is_some(),
            "a call's result is its error exactly when it failed: {}",
            c.attrs["gen_ai.tool.call.result"]
        );
    }
    let failed: Vec<&Flat> = spans
        .iter()
        .filter(|s| s.class == "vendor.mcp.tool.execute.attempt" && s.status == 2)
        .collect();
    assert!(!failed.is_empty(), "the mix retries some tool requests");
    for a in failed {
        let result = json(a, "gen_ai.tool.call.result");
        assert_eq!(result["error"]["type"], a.attrs["error.type"].as_str());
    }
}
