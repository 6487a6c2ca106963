//! Validation and de-duplication of generated examples; each keeps its source chunk.

use std::collections::HashSet;

use serde::{Deserialize, Serialize};

use super::json_repair::RawExample;

pub const MAX_INSTRUCTION_CHARS: usize = 4_000;
pub const MAX_OUTPUT_CHARS: usize = 16_000;
pub const MIN_CHARS: usize = 3;

/// A generated example in alpaca form, as written to the dataset JSONL.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Example {
    pub instruction: String,
    pub output: String,
    pub source_chunk: u32,
}

/// Why an example was dropped.
pub fn invalid_reason(x: &RawExample) -> Option<&'static str> {
    let (i, o) = (x.instruction.chars().count(), x.output.chars().count());
    if i < MIN_CHARS || o < MIN_CHARS {
        Some("too_short")
    } else if i > MAX_INSTRUCTION_CHARS || o > MAX_OUTPUT_CHARS {
        Some("too_long")
    } else {
        None
    }
}

/// The valid examples of one chunk's answer, and how many were dropped.
pub fn validate(raw: Vec<RawExample>, chunk: u32) -> (Vec<Example>, usize) {
    let before = raw.len();
    let kept: Vec<Example> = raw
        .into_iter()
        .filter(|x| invalid_reason(x).is_none())
        .map(|x| Example {
            instruction: x.instruction,
            output: x.output,
            source_chunk: chunk,
        })
        .collect();
    let dropped = before - kept.len();
    (kept, dropped)
}

fn key(x: &Example) -> String {
    let norm = |s: &str| {
        s.split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
            .to_lowercase()
    };
    format!("{}\u{0}{}", norm(&x.instruction), norm(&x.output))
}

/// Drops repeats (same instruction and output up to case and whitespace), first one kept.
pub fn dedup(examples: Vec<Example>) -> (Vec<Example>, usize) {
    let mut seen = HashSet::new();
    let before = examples.len();
    let kept: Vec<Example> = examples
        .into_iter()
        .filter(|x| seen.insert(key(x)))
        .collect();
    let dropped = before - kept.len();
    (kept, dropped)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(i: &str, o: &str) -> RawExample {
        RawExample {
            instruction: i.into(),
            output: o.into(),
        }
    }

    #[test]
    fn validates_and_dedups() {
        let (v, dropped) = validate(
            vec![
                raw("What?", "That."),
                raw("a", "That."),
                raw("What?", &"x".repeat(20_000)),
            ],
            7,
        );
        assert_eq!((v.len(), dropped), (1, 2));
        assert_eq!(v[0].source_chunk, 7);
        let mut twice = v.clone();
        twice.push(Example {
            instruction: " what? ".into(),
            output: "that.".into(),
            source_chunk: 8,
        });
        assert_eq!(dedup(twice).0.len(), 1);
    }
}
