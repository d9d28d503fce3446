//! What a retrieval step found: the query (the user's message), the knowledge base,
//! and `top_k` of config.yaml's `retrieval.documents` with descending scores, as the
//! GenAI conventions' retrieval attributes (`gen_ai.operation.name = retrieval`) and,
//! with the OpenInference view on, its `retrieval.documents.*`.

use super::Builder;
use crate::model::AttrValue;
use crate::record::Key;
use rand::Rng;

impl<R: Rng + ?Sized> Builder<'_, '_, R> {
    /// The retrieval attributes of a `context.augment` / `rag.retrieve` span.
    pub(super) fn retrieval_attrs(&mut self, set: &mut Vec<(Key, AttrValue)>) {
        let Some(r) = self.world.retrieval.as_ref() else {
            return;
        };
        let k = r.top_k.min(r.documents.len());
        // Rank the passages by the words they share with the query, with some noise, as
        // a retriever's similarity would; scores fall from the best match down.
        let query = self
            .input
            .sample
            .map_or("", |s| &*s.user_input)
            .to_lowercase();
        let words: Vec<&str> = query
            .split(|c: char| !c.is_alphanumeric())
            .filter(|w| w.len() > 3)
            .collect();
        let mut ranked: Vec<(f64, usize)> = r
            .documents
            .iter()
            .enumerate()
            .map(|(i, (_, content))| {
                let text = content.to_lowercase();
                let shared = words.iter().filter(|w| text.contains(**w)).count() as f64;
                (shared + self.rng.random_range(0.0..0.8), i)
            })
            .collect();
        ranked.sort_by(|a, b| b.0.total_cmp(&a.0));
        let picked: Vec<usize> = ranked.iter().take(k).map(|(_, i)| *i).collect();
        let mut scores: Vec<f64> = (0..k)
            .map(|_| (self.rng.random_range(0.55..0.97_f64) * 1000.0).round() / 1000.0)
            .collect();
        scores.sort_by(|a, b| b.total_cmp(a));
        let docs: Vec<serde_json::Value> = picked
            .iter()
            .zip(&scores)
            .map(|(i, score)| {
                let (id, content) = &r.documents[*i];
                serde_json::json!({"id": id, "score": score, "content": content})
            })
            .collect();
        let key = Key::from_static;
        // The same query and documents as OpenInference lists them, for LLM UIs.
        if self.world.genai_profile.openinference() {
            if let Some(s) = self.input.sample {
                set.push((
                    key("input.value"),
                    AttrValue::Str(s.user_input.clone().into()),
                ));
            }
            for (n, (i, score)) in picked.iter().zip(&scores).enumerate() {
                let (id, content) = &r.documents[*i];
                let doc = |f: &str| Key::from(format!("retrieval.documents.{n}.document.{f}"));
                set.push((doc("id"), AttrValue::str(id)));
                set.push((doc("score"), AttrValue::Double(*score)));
                set.push((doc("content"), AttrValue::str(content)));
            }
        }
        set.push((key("gen_ai.operation.name"), AttrValue::str("retrieval")));
        set.push((key("gen_ai.data_source.id"), AttrValue::str(&r.data_source)));
        // `gen_ai.retrieval.top_k` came after the conventions release the data's
        // schema_url names; the number of documents says it.
        if let Some(s) = self.input.sample {
            set.push((
                key("gen_ai.retrieval.query.text"),
                AttrValue::Str(s.user_input.clone().into()),
            ));
        }
        set.push((
            key("gen_ai.retrieval.documents"),
            AttrValue::str(&serde_json::Value::Array(docs).to_string()),
        ));
    }
}
