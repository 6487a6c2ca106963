//! `--second-opinion`: the LLM settings of dataset generation (environment over defaults), at
//! temperature 0, on a runtime of its own for the one question. When no usable setting or
//! runtime exists, the rules' answer stands with a note saying why.

use tunewright_actors::analyzer::second_opinion::{second_opinion, wanted, SecondOpinion};
use tunewright_actors::analyzer::{analyze, AnalyzeInput};
use tunewright_actors::generation::{LlmClient, LlmSettings};
use tunewright_schemas::config::GenerationConfig;

pub fn ask(input: &AnalyzeInput) -> SecondOpinion {
    let rules = analyze(input);
    // Nothing is set up (and nothing can fail) when the rules read the text.
    if !wanted(&rules) {
        return SecondOpinion::rules(rules, "not asked: the rules recognised the failure");
    }
    let settings = GenerationConfig {
        temperature: 0.0,
        ..GenerationConfig::default()
    };
    let client = match LlmSettings::resolve(&settings).and_then(LlmClient::new) {
        Ok(c) => c,
        Err(f) => return SecondOpinion::rules(rules, format!("not asked: {f}")),
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => return SecondOpinion::rules(rules, format!("not asked: no async runtime: {e}")),
    };
    runtime.block_on(second_opinion(&client, input, rules))
}
