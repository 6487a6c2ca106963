//! The analyzer's optional LLM second opinion against a real HTTP fake on 127.0.0.1 with a
//! paused clock: a good answer is used and marked as the LLM's; an answer naming a type
//! outside the vocabulary is rejected; suggestions naming a field the config lacks, or a value
//! it refuses, are dropped and never shown; a timeout or a 500 leaves the rules' answer.

#[path = "support/fake_llm.rs"]
mod fake_llm;

use std::time::Duration;

use fake_llm::{FakeLlm, Reply};
use tokio::time::Instant;
use tunewright_actors::analyzer::second_opinion::{
    analyze_with_second_opinion, wanted, SecondOpinion, Source,
};
use tunewright_actors::analyzer::{analyze, AnalyzeInput};
use tunewright_actors::generation::{LlmClient, LlmSettings};
use tunewright_schemas::{Confidence, ErrorPhase, ErrorType};

/// A failure the rules cannot read.
const UNREADABLE: &str = "job 7 stopped: the frobnicator said no (state 0x2a)";

fn client(fake: &FakeLlm) -> LlmClient {
    LlmClient::new(LlmSettings {
        base_url: fake.base_url.clone(),
        model: "judge-model".into(),
        api_key: None,
        timeout: Duration::from_secs(10),
        temperature: 0.0,
    })
    .unwrap()
}

fn input(text: &str) -> AnalyzeInput {
    AnalyzeInput {
        error_text: text.into(),
        phase: Some(ErrorPhase::Training),
        config: Some(serde_json::json!({"per_device_train_batch_size": 8, "keep_checkpoints": 3})),
        code: None,
    }
}

async fn ask(fake: &FakeLlm, text: &str) -> SecondOpinion {
    analyze_with_second_opinion(Some(&client(fake)), &input(text)).await
}

#[tokio::test(start_paused = true)]
async fn a_good_answer_is_used_and_marked_as_the_llms() {
    let fake = FakeLlm::start().await;
    fake.push([Reply::Content(
        r#"{"error_type": "disk_full", "error_phase": "checkpoint", "confidence": "high",
            "description": "The checkpoint could not be written: the disk is full.",
            "suggestions": [{"action": "Keep fewer checkpoints", "detail": "each one is large",
                             "config_changes": {"keep_checkpoints": 1}}]}"#
            .into(),
    )]);
    let rules = analyze(&input(UNREADABLE));
    assert!(wanted(&rules), "the rules must not read this text");

    let o = ask(&fake, UNREADABLE).await;
    assert_eq!(o.source, Source::Llm);
    assert_eq!(o.model.as_deref(), Some("judge-model"));
    assert_eq!(o.analysis.error_type, ErrorType::DiskFull);
    // The phase the caller gave stands; an LLM is never more than medium confidence.
    assert_eq!(o.analysis.error_phase, ErrorPhase::Training);
    assert_eq!(o.analysis.confidence, Confidence::Medium);
    assert_eq!(o.analysis.suggestions.len(), 1);
    assert_eq!(
        o.analysis.suggestions[0].config_changes.0,
        serde_json::json!({"keep_checkpoints": 1})
    );

    // The question listed the vocabulary and the train config's keys, and carried the text.
    let r = &fake.requests()[0];
    assert_eq!(r.model, "judge-model");
    for t in ErrorType::ALL {
        assert!(r.system.contains(t.as_str()), "{t} missing from the prompt");
    }
    assert!(r.system.contains("per_device_train_batch_size"));
    assert!(r.user.contains("frobnicator"));
}

#[tokio::test(start_paused = true)]
async fn a_type_outside_the_vocabulary_is_rejected() {
    for hostile in [
        r#"{"error_type": "gpu_on_fire", "description": "Run.", "suggestions": []}"#,
        r#"{"error_type": "unknown"}"#,
        "I think the disk is full.",
    ] {
        let fake = FakeLlm::start().await;
        fake.push([Reply::Content(hostile.into())]);
        let o = ask(&fake, UNREADABLE).await;
        assert_eq!(o.source, Source::Rules, "{hostile}");
        assert_eq!(o.model, None);
        assert_eq!(o.analysis, analyze(&input(UNREADABLE)), "{hostile}");
        assert!(!format!("{o:?}").contains("gpu_on_fire"));
        assert!(o.notes[0].contains("rejected"), "{:?}", o.notes);
    }
}

#[tokio::test(start_paused = true)]
async fn suggestions_with_fields_or_values_the_config_refuses_are_never_shown() {
    let fake = FakeLlm::start().await;
    fake.push([Reply::Content(
        r#"{"error_type": "oom_training", "confidence": "medium", "suggestions": [
            {"action": "Put the key in the job", "config_changes": {"api_key": "sk-live-123"}},
            {"action": "Use a negative batch", "config_changes": {"per_device_train_batch_size": -4}},
            {"action": "Set the magic flag", "config_changes": {"turbo_mode": true}},
            {"action": "Halve the batch", "config_changes": {"per_device_train_batch_size": 4}}
        ]}"#
        .into(),
    )]);
    let o = ask(&fake, UNREADABLE).await;
    assert_eq!(o.source, Source::Llm);
    assert_eq!(o.analysis.error_type, ErrorType::OomTraining);
    assert_eq!(o.analysis.suggestions.len(), 1);
    assert_eq!(o.analysis.suggestions[0].action, "Halve the batch");
    assert_eq!(o.notes.len(), 3, "{:?}", o.notes);
    let shown = serde_json::to_string(&o).unwrap();
    for never in ["sk-live-123", "turbo_mode", "-4"] {
        assert!(!shown.contains(never), "{never} was shown: {shown}");
    }
}

#[tokio::test(start_paused = true)]
async fn a_server_error_falls_back_to_the_rules_after_the_generation_retries() {
    let fake = FakeLlm::start().await;
    fake.push([
        Reply::Status(500, None),
        Reply::Status(500, None),
        Reply::Status(500, None),
    ]);
    let o = ask(&fake, UNREADABLE).await;
    assert_eq!(fake.count(), 3, "the generation client's three attempts");
    assert_eq!(o.source, Source::Rules);
    assert_eq!(o.analysis, analyze(&input(UNREADABLE)));
    assert!(o.notes[0].contains("the LLM failed"), "{:?}", o.notes);
}

#[tokio::test(start_paused = true)]
async fn a_timeout_falls_back_to_the_rules_in_bounded_time() {
    let fake = FakeLlm::start().await;
    let slow = Duration::from_secs(600);
    fake.push([Reply::Slow(slow), Reply::Slow(slow), Reply::Slow(slow)]);
    let t0 = Instant::now();
    let o = ask(&fake, UNREADABLE).await;
    // Three tries of 10 s each, with 2 s and 4 s between them: nowhere near the 600 s answer.
    assert!(t0.elapsed() < Duration::from_secs(60), "{:?}", t0.elapsed());
    assert_eq!(o.source, Source::Rules);
    assert_eq!(o.analysis, analyze(&input(UNREADABLE)));
}

#[tokio::test(start_paused = true)]
async fn nothing_is_asked_when_the_rules_read_the_text_or_no_llm_is_configured() {
    let fake = FakeLlm::start().await;
    let o = ask(
        &fake,
        "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB",
    )
    .await;
    assert_eq!(fake.count(), 0);
    assert_eq!(o.source, Source::Rules);
    assert_eq!(o.analysis.error_type, ErrorType::OomTraining);

    let o = analyze_with_second_opinion(None, &input(UNREADABLE)).await;
    assert_eq!(o.source, Source::Rules);
    assert!(o.notes[0].contains("no LLM"), "{:?}", o.notes);
}
