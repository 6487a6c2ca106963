//! One chunk through the LLM: the generation call, the repair pipeline of docs/jobs.md (steps 1-4 on
//! the answer, step 5 one LLM repair call, step 6 reject), example validation.

use tunewright_schemas::Failure;

use super::examples::{validate, Example};
use super::json_repair::{repair, RepairStep};
use super::llm_client::LlmClient;
use super::prompt;

/// What one chunk gave.
#[derive(Debug, Clone)]
pub struct ChunkOutcome {
    pub examples: Vec<Example>,
    pub step: RepairStep,
    /// Examples in the answer that failed validation.
    pub dropped: usize,
}

/// Generate from one chunk. An LLM failure (after the client's retries) is returned as is;
/// an answer no step can repair is `Ok` with step `Rejected` and no examples.
pub async fn run_chunk(
    client: &LlmClient,
    index: u32,
    text: &str,
    examples_per_chunk: usize,
) -> Result<ChunkOutcome, Failure> {
    let answer = client
        .chat(&prompt::generation(text, examples_per_chunk))
        .await?;
    let parsed = match repair(&answer) {
        Some(p) => Some(p),
        None => {
            let fixed = client.chat(&prompt::repair(&answer)).await?;
            repair(&fixed).map(|(x, _)| (x, RepairStep::LlmRepair))
        }
    };
    Ok(match parsed {
        Some((raw, step)) => {
            let (examples, dropped) = validate(raw, index);
            ChunkOutcome {
                examples,
                step,
                dropped,
            }
        }
        None => ChunkOutcome {
            examples: Vec::new(),
            step: RepairStep::Rejected,
            dropped: 0,
        },
    })
}
