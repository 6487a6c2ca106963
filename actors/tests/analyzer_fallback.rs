//! The analyzer's statistical fallback (actors/src/analyzer/fallback.rs) against the corpus:
//! the checked-in model is the one the tune texts give (and is regenerated here), and each
//! tune round, read as a holdout by a model of the rounds before it, shows how often the
//! fallback's answers to the texts the rules left unknown are right (docs/analyzer.md).

use tunewright_actors::analyzer::fallback::{self, Model, THRESHOLD};
use tunewright_actors::analyzer::{analyze, AnalyzeInput};
use tunewright_schemas::{Confidence, ErrorPhase, ErrorType};

mod corpus;

use corpus::{cases, Case};

fn label(c: &Case) -> ErrorType {
    c.error_type.parse().expect("error type")
}

/// The model of the given cases.
fn model_of<'a>(cases: impl IntoIterator<Item = &'a Case>) -> Model {
    Model::train(cases.into_iter().map(|c| (c.error.as_str(), label(c))))
}

/// Regenerate with `TUNEWRIGHT_WRITE_FALLBACK_MODEL=1 cargo test -p tunewright-actors --test
/// analyzer_fallback`: the model is learned from the tune texts only.
#[test]
fn the_checked_in_model_is_the_model_of_the_tune_texts() {
    let all = cases();
    let text = model_of(all.iter().filter(|c| c.split == "tune")).to_text();
    if std::env::var_os("TUNEWRIGHT_WRITE_FALLBACK_MODEL").is_some() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/src/analyzer/fallback_model.txt"
        );
        std::fs::write(path, &text).expect("write the model");
        return;
    }
    assert!(
        fallback::checked_in() == text,
        "fallback_model.txt is not the model of the tune texts: regenerate it (see this test)"
    );
}

/// Each tune round, read by a model of the tune rounds before it: of its texts, how many the
/// fallback answers (at or above the threshold) and how many of those rightly. All its texts
/// count, not only those today's rules leave unknown: the rules were since tuned on every tune
/// round, so what they leave unknown there is a handful of the hardest texts, while a new
/// round's unknowns are wordings never seen, as these texts were to the rounds before them.
#[test]
fn each_tune_round_read_by_a_model_of_the_rounds_before_it() {
    let all = cases();
    let last = all
        .iter()
        .filter(|c| c.split == "tune")
        .map(|c| c.round)
        .max()
        .unwrap_or(0);
    let (mut texts, mut answered, mut right) = (0, 0, 0);
    for round in 1..=last {
        let model = model_of(all.iter().filter(|c| c.split == "tune" && c.round < round));
        let (mut n, mut a, mut r) = (0, 0, 0);
        for c in all.iter().filter(|c| c.split == "tune" && c.round == round) {
            n += 1;
            let Some(g) = model.guess_text(&c.error) else {
                continue;
            };
            if g.score >= THRESHOLD && g.error_type != ErrorType::Unknown {
                a += 1;
                if g.error_type == label(c) {
                    r += 1;
                }
            }
        }
        println!("round {round}: {n} texts; the fallback alone answered {a}, {r} right");
        texts += n;
        answered += a;
        right += r;
    }
    println!(
        "rounds 1..={last}: {texts} texts; the fallback alone answered {answered}, {right} right"
    );
    // Most of its answers are right: a fallback that guessed at random would fail here.
    assert!(
        answered > 0 && right * 4 >= answered * 3,
        "{right} of {answered} right"
    );
}

/// What the rules and the fallback answer together, on the whole corpus: the fallback only
/// speaks where the rules did not, so it turns no right answer wrong.
#[test]
fn the_fallback_only_answers_where_the_rules_did_not() {
    for c in cases() {
        let a = analyze(&AnalyzeInput {
            error_text: c.error.clone(),
            phase: c
                .phase
                .as_deref()
                .map(|p| p.parse::<ErrorPhase>().expect("phase")),
            config: None,
            code: None,
        });
        if a.confidence == Confidence::Low && a.error_type != ErrorType::Unknown {
            assert!(a.description.contains("A guess"), "{}", a.description);
            assert!(!a.suggestions.is_empty(), "{:?}", c.error);
        }
    }
}
