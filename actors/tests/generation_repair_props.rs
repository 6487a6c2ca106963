//! Property tests of the JSON repair pipeline: it never panics, and whatever it accepts is a
//! non-empty list of examples with non-empty instruction and output; valid lists damaged in
//! the ways LLMs damage them are recovered.

use proptest::prelude::*;
use tunewright_actors::generation::json_repair::{repair, RepairStep};

fn example() -> impl Strategy<Value = (String, String)> {
    ("[a-zA-Z0-9 ,.?'\"\n]{1,40}", "[a-zA-Z0-9 ,.!'\"\n]{1,60}")
        .prop_filter("non-blank", |(i, o)| {
            !i.trim().is_empty() && !o.trim().is_empty()
        })
}

fn to_json(xs: &[(String, String)]) -> String {
    let v: Vec<serde_json::Value> = xs
        .iter()
        .map(|(i, o)| serde_json::json!({"instruction": i, "output": o}))
        .collect();
    serde_json::to_string(&v).unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn never_panics_and_accepts_only_example_lists(s in any::<String>()) {
        if let Some((xs, _)) = repair(&s) {
            prop_assert!(!xs.is_empty());
            for x in xs {
                prop_assert!(!x.instruction.trim().is_empty());
                prop_assert!(!x.output.trim().is_empty());
            }
        }
    }

    #[test]
    fn never_panics_on_json_like_noise(s in "[\\[\\]{}\"',:a-z \n`“”]{0,80}") {
        if let Some((xs, _)) = repair(&s) {
            prop_assert!(xs.iter().all(|x| !x.instruction.is_empty() && !x.output.is_empty()));
        }
    }

    #[test]
    fn valid_lists_parse_strictly(xs in prop::collection::vec(example(), 1..5)) {
        let (got, step) = repair(&to_json(&xs)).unwrap();
        prop_assert_eq!(step, RepairStep::Strict);
        prop_assert_eq!(got.len(), xs.len());
    }

    #[test]
    fn fenced_and_wrapped_lists_are_recovered(xs in prop::collection::vec(example(), 1..5), prose in "[a-zA-Z .!]{0,30}") {
        let json = to_json(&xs);
        let (got, _) = repair(&format!("```json\n{json}\n```")).unwrap();
        prop_assert_eq!(got.len(), xs.len());
        let (got, _) = repair(&format!("{prose}\n{json}\n{prose}")).unwrap();
        prop_assert_eq!(got.len(), xs.len());
    }

    #[test]
    fn truncated_lists_keep_their_complete_elements(xs in prop::collection::vec(example(), 2..5), cut in 1usize..20) {
        let json = to_json(&xs);
        let last = to_json(&xs[xs.len() - 1..]);
        // Cut inside the last element.
        let cut_at = json.len() - 2 - cut.min(last.len() - 4);
        if let Some((got, _)) = repair(&json[..cut_at]) {
            prop_assert!(got.len() >= xs.len() - 1);
            for (g, x) in got.iter().zip(&xs) {
                prop_assert_eq!(&g.instruction, x.0.trim());
            }
        } else {
            prop_assert!(false, "truncated list not recovered: {}", &json[..cut_at]);
        }
    }
}
