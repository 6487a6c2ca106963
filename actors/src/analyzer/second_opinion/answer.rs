//! Reading the LLM's answer strictly: JSON (fences and surrounding prose are cut by the repair
//! pipeline's first steps), an error type from the vocabulary, and suggestions whose config
//! changes the job's config accepts. What fails a check is never shown: a bad type rejects
//! the whole answer, a bad suggestion is dropped (the reason, without its content, is kept
//! for the record).

use serde_json::{Map, Value};
use tunewright_schemas::{Analysis, Confidence, ErrorPhase, ErrorType, Json, Suggestion};

use super::super::config_keys::ConfigKind;
use super::super::describe::describe;
use super::super::facts::facts;
use super::super::suggest::suggestions;
use super::super::AnalyzeInput;
use crate::generation::json_repair::{extract_json, strip_fences};
use tunewright_schemas::failure_codes::code_of_type;

/// Bounds on what is shown from an answer.
const MAX_SUGGESTIONS: usize = 5;
const MAX_DESCRIPTION_CHARS: usize = 600;
const MAX_ACTION_CHARS: usize = 200;
const MAX_DETAIL_CHARS: usize = 1_000;

/// A validated answer and what was dropped from it.
#[derive(Debug)]
pub struct Checked {
    pub analysis: Analysis,
    pub dropped: Vec<String>,
}

/// The answer as an analysis, or why it was rejected.
pub fn check(answer: &str, input: &AnalyzeInput, rules: &Analysis) -> Result<Checked, String> {
    let v = parse(answer).ok_or("the answer is not a JSON object")?;
    let o = v.as_object().ok_or("the answer is not a JSON object")?;
    let error_type = field_str(o, "error_type")
        .ok_or("the answer has no error_type")?
        .parse::<ErrorType>()
        .map_err(|_| "error_type is not in the vocabulary".to_string())?;
    if error_type == ErrorType::Unknown {
        return Err("the answer does not know either".into());
    }
    let phase = input.phase.unwrap_or_else(|| {
        field_str(o, "error_phase")
            .and_then(|p| p.parse::<ErrorPhase>().ok())
            .unwrap_or(rules.error_phase)
    });
    let kind = ConfigKind::of(phase, error_type);
    let mut dropped = Vec::new();
    let mut kept = Vec::new();
    for (i, s) in o
        .get("suggestions")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .enumerate()
    {
        match suggestion(s, kind, input.config.as_ref()) {
            Ok(s) if kept.len() < MAX_SUGGESTIONS => kept.push(s),
            Ok(_) => dropped.push(format!("suggestion {i}: more than {MAX_SUGGESTIONS}")),
            Err(why) => dropped.push(format!("suggestion {i}: {why}")),
        }
    }
    let config = input.config.as_ref().and_then(Value::as_object);
    let f = facts(&input.error_text);
    if kept.is_empty() {
        kept = suggestions(error_type, phase, config, &f);
    }
    let description = field_str(o, "description")
        .map(|d| bounded(d, MAX_DESCRIPTION_CHARS))
        .filter(|d| !d.trim().is_empty())
        .unwrap_or_else(|| describe(error_type, phase, &f));
    let error_code = input
        .code
        .filter(|c| *c != tunewright_schemas::ErrorCode::InternalError)
        .unwrap_or_else(|| code_of_type(error_type));
    Ok(Checked {
        analysis: Analysis {
            error_type,
            error_phase: phase,
            error_code,
            description,
            confidence: confidence(o),
            suggestions: kept,
        },
        dropped,
    })
}

/// Strict parse, then the repair pipeline's fence stripping and extraction.
fn parse(answer: &str) -> Option<Value> {
    let strict = |t: &str| {
        serde_json::from_str::<Value>(t.trim())
            .ok()
            .filter(Value::is_object)
    };
    strict(answer)
        .or_else(|| strict(&strip_fences(answer)))
        .or_else(|| extract_json(&strip_fences(answer)).and_then(|t| strict(&t)))
}

fn field_str<'a>(o: &'a Map<String, Value>, key: &str) -> Option<&'a str> {
    o.get(key).and_then(Value::as_str)
}

/// An LLM's confidence is at most medium: it is a second opinion, not a recognised text.
fn confidence(o: &Map<String, Value>) -> Confidence {
    match field_str(o, "confidence").and_then(|c| c.parse::<Confidence>().ok()) {
        Some(Confidence::Low) | None => Confidence::Low,
        Some(_) => Confidence::Medium,
    }
}

fn suggestion(v: &Value, kind: ConfigKind, job: Option<&Value>) -> Result<Suggestion, String> {
    let o = v.as_object().ok_or("not an object")?;
    let action = field_str(o, "action")
        .filter(|a| !a.trim().is_empty())
        .ok_or("no action")?;
    let changes = match o.get("config_changes") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(c)) => c.clone(),
        Some(_) => return Err("config_changes is not an object".into()),
    };
    // The reason does not quote the refused change: what fails a check is never shown.
    if !kind.accepts(job, &changes) {
        return Err(format!(
            "its config_changes are not a change the {} config accepts",
            kind.as_str()
        ));
    }
    Ok(Suggestion {
        action: bounded(action, MAX_ACTION_CHARS),
        detail: bounded(field_str(o, "detail").unwrap_or_default(), MAX_DETAIL_CHARS),
        config_changes: Json(Value::Object(changes)),
    })
}

/// At most `max` characters of `s`.
fn bounded(s: &str, max: usize) -> String {
    s.chars().take(max).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analyzer::analyze;

    fn input(text: &str) -> AnalyzeInput {
        AnalyzeInput {
            error_text: text.into(),
            ..Default::default()
        }
    }

    #[test]
    fn a_fenced_answer_with_prose_is_read() {
        let i = input("worker stopped");
        let rules = analyze(&i);
        let a = "Sure!\n```json\n{\"error_type\": \"disk_full\", \"error_phase\": \"checkpoint\", \"confidence\": \"high\", \"description\": \"The disk filled up.\", \"suggestions\": [{\"action\": \"Keep one checkpoint\", \"detail\": \"saves space\", \"config_changes\": {\"keep_checkpoints\": 1}}]}\n```";
        let c = check(a, &i, &rules).unwrap();
        assert_eq!(c.analysis.error_type, ErrorType::DiskFull);
        assert_eq!(c.analysis.error_phase, ErrorPhase::Checkpoint);
        assert_eq!(c.analysis.confidence, Confidence::Medium);
        assert_eq!(c.analysis.suggestions.len(), 1);
        assert!(c.dropped.is_empty());
    }

    #[test]
    fn types_outside_the_vocabulary_reject_the_answer() {
        let i = input("worker stopped");
        let rules = analyze(&i);
        for a in [
            "{\"error_type\": \"gpu_on_fire\"}",
            "{\"error_type\": \"unknown\"}",
            "{\"description\": \"no type\"}",
            "not json at all",
            "[1, 2]",
        ] {
            assert!(check(a, &i, &rules).is_err(), "{a}");
        }
    }

    #[test]
    fn suggestions_with_fields_the_config_lacks_are_dropped() {
        let i = input("worker stopped");
        let rules = analyze(&i);
        let a = r#"{"error_type": "auth_failed", "suggestions": [
            {"action": "Put the key in the job", "config_changes": {"api_key": "sk-123"}},
            {"action": "Raise the timeout", "config_changes": {"request_timeout_secs": 100000}},
            {"action": "Name the variable", "config_changes": {"llm_api_key_env": "MY_KEY"}}
        ]}"#;
        let c = check(a, &i, &rules).unwrap();
        assert_eq!(c.analysis.suggestions.len(), 1);
        assert_eq!(c.analysis.suggestions[0].action, "Name the variable");
        assert_eq!(c.dropped.len(), 2);
        assert!(!format!("{:?}", c.analysis).contains("sk-123"));
        // With no valid suggestion left, the rules' own ones for that type are shown.
        let a = r#"{"error_type": "auth_failed", "suggestions": [{"action": "x", "config_changes": {"api_key": "k"}}]}"#;
        let c = check(a, &i, &rules).unwrap();
        assert!(!c.analysis.suggestions.is_empty());
        assert!(c
            .analysis
            .suggestions
            .iter()
            .all(|s| s.config_changes.0 == serde_json::json!({})));
    }
}
