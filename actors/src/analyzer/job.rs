//! The analysis of a job's failure: attached once, when the failure is recorded. The failure's
//! own code and phase (known to the code that failed) come first; the job's kind gives the
//! phase only where the failure carries none. Suggestions are computed from the job's
//! effective config (remedies applied), and a suggestion whose config change admission would
//! refuse for this job is not offered (docs/errors.md, "The failure analysis").

use serde_json::Value;
use tunewright_events::projection::JobView;
use tunewright_schemas::config::with_changes;
use tunewright_schemas::{ErrorPhase, Failure, JobKind, Suggestion};

use super::{analyze, AnalyzeInput};
use crate::admission;

/// Facts about the model a failure's context may carry that suggestions use.
const MODEL_FACTS: &[&str] = &[
    "base_model_parameters",
    "base_weights_bytes",
    "base_weights_bytes_4bit",
];

/// The phase a job's kind implies, for a failure that does not say.
fn phase_of(kind: JobKind) -> ErrorPhase {
    match kind {
        JobKind::Train => ErrorPhase::Training,
        JobKind::DatasetGenerate | JobKind::DatasetPreview => ErrorPhase::Generation,
        JobKind::Export => ErrorPhase::Export,
        JobKind::Evaluate => ErrorPhase::Evaluation,
    }
}

/// The failure's texts, outermost first: its detail, its causes, the last log lines.
fn text_of(f: &Failure) -> String {
    let mut text = f.detail.clone();
    for line in f.cause_chain.iter().chain(&f.log_tail) {
        text.push('\n');
        text.push_str(line);
    }
    text
}

/// Whether admission accepts the job's effective config with `s`'s changes applied
/// (`gpu`: what the hardware probe says, if known).
pub fn admissible(job: &JobView, s: &Suggestion, gpu: Option<bool>) -> bool {
    let Some(changes) = s.config_changes.0.as_object().filter(|c| !c.is_empty()) else {
        return true;
    };
    let changed = with_changes(&job.effective_config.0, &Value::Object(changes.clone()));
    admission::offline(job.kind, &changed, gpu).is_ok()
}

/// `f` with its analysis (kept as it is when it has one).
pub fn analyze_job_failure(mut f: Failure, job: &JobView, gpu: Option<bool>) -> Failure {
    if f.analysis.is_some() {
        return f;
    }
    // The suggestions read the config, and the facts about the model a failure carries (an
    // out-of-memory failure's base-weight sizes), from one map.
    let mut seen = job.effective_config.0.clone();
    if let (Some(seen), Some(context)) = (seen.as_object_mut(), f.context.0.as_object()) {
        for key in MODEL_FACTS {
            if let Some(v) = context.get(*key) {
                seen.insert((*key).to_string(), v.clone());
            }
        }
    }
    let mut analysis = analyze(&AnalyzeInput {
        error_text: text_of(&f),
        phase: Some(f.phase.unwrap_or_else(|| phase_of(job.kind))),
        config: Some(seen),
        code: Some(f.error_code),
    });
    analysis.suggestions.retain(|s| admissible(job, s, gpu));
    f.analysis = Some(analysis);
    f
}
