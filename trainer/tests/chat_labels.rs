//! Answer-only labels on each family's real chat template (Llama 3, Mistral's [INST], Qwen2.5's
//! ChatML, Qwen3's with its <think> block, Phi-3's <|user|>...<|end|>, Gemma's
//! <start_of_turn>...<end_of_turn>): the labelled tokens decode to exactly the assistant's
//! answer and its end-of-turn token, and to nothing else, with or without a system prompt
//! where the template takes one.

mod support;

use tunewright_schemas::dataset::Turn;
use tunewright_trainer::train::tokenize::{ChatTokenizer, IGNORE};

use support::fixture;

const ANSWER: &str = "Paris is the capital of France.";

fn turn(role: &str, content: &str) -> Turn {
    serde_json::from_value(serde_json::json!({"role": role, "content": content})).unwrap()
}

/// The decoded labelled span of a conversation (the labels must be one contiguous run).
fn labelled(family: &str, turns: &[Turn]) -> String {
    let tok = ChatTokenizer::load(&fixture(family)).unwrap();
    let (ids, labels) = tok.encode_example(turns).unwrap();
    let kept: Vec<usize> = (0..ids.len()).filter(|&i| labels[i] != IGNORE).collect();
    assert!(!kept.is_empty(), "{family}: nothing labelled");
    assert_eq!(
        kept.last().unwrap() - kept[0] + 1,
        kept.len(),
        "{family}: the labels are one contiguous span"
    );
    for &i in &kept {
        assert_eq!(labels[i], ids[i], "{family}: a label is its own token");
    }
    let span: Vec<i64> = kept.iter().map(|&i| ids[i]).collect();
    tok.decode(&span).unwrap()
}

fn check(family: &str, end_of_turn: &str, with_system: bool) {
    let mut turns = vec![
        turn("user", "What is the capital of France?"),
        turn("assistant", ANSWER),
    ];
    assert_eq!(
        labelled(family, &turns),
        format!("{ANSWER}{end_of_turn}"),
        "{family}"
    );
    if with_system {
        turns.insert(0, turn("system", "You answer in one sentence."));
        assert_eq!(
            labelled(family, &turns),
            format!("{ANSWER}{end_of_turn}"),
            "{family} with a system prompt"
        );
    }
    // Several turns: only the last answer is trained.
    let mut long = vec![
        turn("user", "Name a river."),
        turn("assistant", "The river runs past the old mill."),
    ];
    long.extend([
        turn("user", "What is the capital of France?"),
        turn("assistant", ANSWER),
    ]);
    assert_eq!(
        labelled(family, &long),
        format!("{ANSWER}{end_of_turn}"),
        "{family}: multi-turn"
    );
}

#[test]
fn llama3() {
    check("llama", "<|eot_id|>", true);
}
#[test]
fn mistral_inst() {
    // Mistral's template refuses a system role.
    check("mistral", "</s>", false);
}
#[test]
fn qwen2_chatml() {
    check("qwen2", "<|im_end|>", true);
}
#[test]
fn qwen3_with_think_block() {
    check("qwen3", "<|im_end|>", true);
}
#[test]
fn phi3() {
    check("phi3", "<|end|>", true);
}
#[test]
fn gemma2() {
    // Gemma 2's template refuses a system role.
    check("gemma2", "<end_of_turn>", false);
}
#[test]
fn gemma3_system_prompt_joins_the_first_user_turn() {
    check("gemma3", "<end_of_turn>", true);
}

#[test]
fn the_rendering_is_the_templates_own() {
    let tok = ChatTokenizer::load(&fixture("qwen3")).unwrap();
    let turns = [turn("user", "Hi"), turn("assistant", "Hello.")];
    assert_eq!(
        tok.render(&turns, false).unwrap(),
        "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\nHello.<|im_end|>\n"
    );
    let tok = ChatTokenizer::load(&fixture("gemma3")).unwrap();
    let turns = [
        turn("system", "Be brief."),
        turn("user", "Hi"),
        turn("assistant", "Hello."),
    ];
    assert_eq!(
        tok.render(&turns, false).unwrap(),
        "<bos><start_of_turn>user\nBe brief.\n\nHi<end_of_turn>\n<start_of_turn>model\nHello.<end_of_turn>\n"
    );
}

/// On Llama 3's template the answer is everything after the prompt rendered with the
/// generation prompt, its end-of-turn token included; every example of the bundled SFT sample
/// keeps exactly those labels (the Llama path trains on the same tokens as before the span
/// rule) and its labelled span decodes to the answer and `<|eot_id|>`.
#[test]
fn llama3_labels_on_every_sft_sample_example() {
    let tok = ChatTokenizer::load(&fixture("llama")).unwrap();
    let bytes = std::fs::read(support::root().join("tests/fixtures/sft-sample.jsonl")).unwrap();
    let (examples, summary) = tunewright_schemas::dataset::parse_jsonl(&bytes).unwrap();
    assert_eq!(summary.num_examples, 273);
    for ex in &examples {
        let (ids, labels) = tok.encode_example(&ex.turns).unwrap();
        let prompt_turns = &ex.turns[..ex.turns.len() - 1];
        let prompt = tok
            .encode(&tok.render(prompt_turns, true).unwrap())
            .unwrap();
        let common = ids.iter().zip(&prompt).take_while(|(a, b)| a == b).count();
        assert_eq!(
            common,
            prompt.len(),
            "line {}: the prompt is a prefix",
            ex.line
        );
        let expected: Vec<i64> = (0..ids.len())
            .map(|i| if i < common { IGNORE } else { ids[i] })
            .collect();
        assert_eq!(labels, expected, "line {}", ex.line);
        let answer = ex.turns.last().unwrap().content.trim();
        assert_eq!(
            tok.decode(&ids[common..]).unwrap(),
            format!("{answer}<|eot_id|>"),
            "line {}",
            ex.line
        );
    }
}
