//! The analyzer's corpus of labelled failure texts (`fixtures/analyzer_corpus.jsonl`,
//! docs/analyzer.md), read by the corpus and fallback tests.
#![allow(dead_code)]

#[derive(serde::Deserialize)]
pub struct Case {
    pub error: String,
    pub phase: Option<String>,
    pub error_type: String,
    /// "tune": the rules were written and tuned on it; "holdout": collected after the rules
    /// were written, labelled before the analyzer ever ran on it (docs/analyzer.md).
    pub split: String,
    /// 0: the first tune set; 1, 2, ...: the holdout rounds in the order they were collected
    /// (every round but the last was turned into tune data once measured).
    pub round: u32,
    pub source: String,
    pub collected: String,
}

pub fn cases() -> Vec<Case> {
    include_str!("../fixtures/analyzer_corpus.jsonl")
        .lines()
        .enumerate()
        .map(|(i, l)| {
            serde_json::from_str(l).unwrap_or_else(|e| panic!("corpus line {}: {e}", i + 1))
        })
        .collect()
}
