//! The failure analyzer: turns a failure (its text, the phase it happened in, the job's
//! config and, when known, its catalog code) into the shape of docs/errors.md
//! `{error_type, error_phase, description, confidence, suggestions}` plus the catalog code.
//!
//! `rules` (reading `table` over the text's `signal`) recognises the texts that libtorch,
//! CUDA, NCCL, the OS, Python fine-tuning stacks and HTTP APIs really print; `suggest`
//! computes concrete config changes from the config it was given. `actor` makes it reachable
//! as an actor. All of that is pure: no device, no I/O. Where no rule matches, `fallback` (a
//! naive Bayes model learned from the corpus's tune texts, checked in) may guess the type with
//! low confidence. `second_opinion`, off by default, asks an LLM about what the rules could
//! not read (or the fallback only guessed), and validates its answer.

mod actor;
mod config_keys;
mod describe;
mod facts;
pub mod fallback;
pub mod job;
mod phase;
mod phase_words;
mod rules;
pub mod second_opinion;
mod signal;
mod suggest;
mod suggest_generation;
mod suggestion;
mod table;

pub use actor::{AnalyzerActor, AnalyzerMsg};
pub use config_keys::ConfigKind;
pub use job::analyze_job_failure;
pub use phase_words::understand_phase;

use tunewright_schemas::failure_codes::{code_of_type, decisive_type, type_of_code};
use tunewright_schemas::{Analysis, Confidence, ErrorCode, ErrorPhase, ErrorType};

/// What the analyzer looks at.
#[derive(Debug, Clone, Default)]
pub struct AnalyzeInput {
    pub error_text: String,
    pub phase: Option<ErrorPhase>,
    pub config: Option<serde_json::Value>,
    pub code: Option<ErrorCode>,
}

/// Analyze a failure. Never panics, whatever the input.
pub fn analyze(input: &AnalyzeInput) -> Analysis {
    let text = input.error_text.to_lowercase();
    let phase = input.phase.unwrap_or_else(|| phase::from_text(&text));
    // A VALIDATION_ERROR is tunewright's own precise refusal of an input: its text quotes the
    // input (field names such as `request_timeout_secs`), so a text rule naming some other kind
    // of failure would only be matching the quote.
    // Structure first: a code tunewright raised that decides the type (with its phase) is
    // taken as it is; the text is read for the rest, and the code is the fallback.
    let decided = input
        .code
        .and_then(|c| decisive_type(c, input.phase))
        .map(|t| (t, Confidence::High));
    let signal = signal::signal(&input.error_text);
    let by_text = || {
        rules::classify(&signal, phase).filter(|(t, _)| {
            input.code != Some(ErrorCode::ValidationError)
                || code_of_type(*t) == ErrorCode::ValidationError
        })
    };
    // Last, before `unknown`: the statistical fallback's guess, with low confidence.
    let mut guessed = false;
    let (error_type, confidence) = match decided.or_else(by_text) {
        Some(hit) => hit,
        None => match input.code.and_then(type_of_code) {
            Some(t) => (t, Confidence::Medium),
            None => match fallback::classify(&signal) {
                Some(g) => {
                    guessed = true;
                    (rules::refine(g.error_type, phase), Confidence::Low)
                }
                None => (ErrorType::Unknown, Confidence::Low),
            },
        },
    };
    // Where the text says nothing about the phase, the type does (a missing driver is found
    // before anything runs).
    let phase = match phase {
        ErrorPhase::Unknown => phase::of_type(error_type),
        p => p,
    };
    // A known code that agrees raises confidence; the code always wins as the catalog code.
    let error_code = input
        .code
        .filter(|c| *c != ErrorCode::InternalError)
        .unwrap_or_else(|| code_of_type(error_type));
    let config = input.config.as_ref().and_then(|c| c.as_object());
    let facts = facts::facts(&input.error_text);
    Analysis {
        error_type,
        error_phase: phase,
        error_code,
        description: if guessed {
            format!(
                "{} (A guess: no rule matched the text, which reads most like the failures of this type seen before.)",
                describe::describe(error_type, phase, &facts)
            )
        } else {
            describe::describe(error_type, phase, &facts)
        },
        confidence,
        suggestions: suggest::suggestions(error_type, phase, config, &facts),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_validation_error_is_not_read_as_what_its_quoted_input_mentions() {
        let a = analyze(&AnalyzeInput {
            error_text: "Invalid request: generation config: unknown field `model`, expected one of `llm_model`, `request_timeout_secs`".into(),
            code: Some(ErrorCode::ValidationError),
            ..Default::default()
        });
        assert_ne!(a.error_type, ErrorType::NetworkTimeout);
        assert_eq!(a.error_code, ErrorCode::ValidationError);
        // Without the code, the same words do read as a timeout: the rule is about the code.
        let b = analyze(&AnalyzeInput {
            error_text: "request timed out after 120 s".into(),
            ..Default::default()
        });
        assert_eq!(b.error_type, ErrorType::NetworkTimeout);
    }
}
