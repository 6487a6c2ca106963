//! An optional second opinion from an LLM, for failures the rules could not read (an
//! "unknown" or low-confidence answer). Off unless the caller brings a client; bounded by the
//! client's own retries and timeouts (those of dataset generation); never fails: any problem
//! (service down, timeout, hostile or malformed answer) leaves the rules' answer in place,
//! with a note saying why.
//!
//! The answer is constrained to the fixed vocabulary and to the real fields of the job's
//! config (`prompt`), then validated (`answer`, with the analyzer's `config_keys`). It is marked with its source;
//! `Analysis` itself, which is recorded inside events, is unchanged.

mod answer;
mod prompt;

use serde::Serialize;
use tunewright_schemas::{Analysis, Confidence, ErrorType};

use super::{analyze, AnalyzeInput, ConfigKind};
use crate::generation::LlmClient;

/// Who produced an analysis.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    Rules,
    Llm,
}

/// An analysis with its source, the LLM's model when it came from one, and what happened to
/// the question (asked or not, why an answer was not used, what was dropped from it).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SecondOpinion {
    pub analysis: Analysis,
    pub source: Source,
    pub model: Option<String>,
    pub notes: Vec<String>,
}

impl SecondOpinion {
    /// The rules' analysis, with a note on why it stands.
    pub fn rules(analysis: Analysis, note: impl Into<String>) -> SecondOpinion {
        SecondOpinion {
            analysis,
            source: Source::Rules,
            model: None,
            notes: vec![note.into()],
        }
    }
}

/// Whether the rules' answer is worth a second opinion.
pub fn wanted(a: &Analysis) -> bool {
    a.error_type == ErrorType::Unknown || a.confidence == Confidence::Low
}

/// The rules' analysis, and the LLM's instead when it is wanted, a client is given and its
/// answer passes validation.
pub async fn analyze_with_second_opinion(
    client: Option<&LlmClient>,
    input: &AnalyzeInput,
) -> SecondOpinion {
    let rules = analyze(input);
    if !wanted(&rules) {
        return SecondOpinion::rules(rules, "not asked: the rules recognised the failure");
    }
    match client {
        Some(c) => second_opinion(c, input, rules).await,
        None => SecondOpinion::rules(rules, "not asked: no LLM is configured"),
    }
}

/// Ask the LLM about `input`, which the rules read as `rules`.
pub async fn second_opinion(
    client: &LlmClient,
    input: &AnalyzeInput,
    rules: Analysis,
) -> SecondOpinion {
    let kind = ConfigKind::of(input.phase.unwrap_or(rules.error_phase), rules.error_type);
    let model = client.settings().model.clone();
    let reply = client.chat(&prompt::messages(input, &rules, kind)).await;
    let text = match reply {
        Ok(t) => t,
        Err(f) => {
            tracing::warn!(code = f.error_code.as_str(), "second opinion unavailable");
            return SecondOpinion::rules(rules, format!("the LLM failed: {f}"));
        }
    };
    match answer::check(&text, input, &rules) {
        Ok(checked) => SecondOpinion {
            analysis: checked.analysis,
            source: Source::Llm,
            model: Some(model),
            notes: checked
                .dropped
                .into_iter()
                .map(|d| format!("dropped {d}"))
                .collect(),
        },
        Err(why) => SecondOpinion::rules(rules, format!("the LLM's answer was rejected: {why}")),
    }
}
