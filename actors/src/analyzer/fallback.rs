//! The statistical fallback: a naive Bayes classifier over the words of a failure's signal,
//! learned from the corpus's tune texts, asked only when no rule matched (docs/analyzer.md,
//! "The statistical fallback"). It owns the tokens a text is read as, the model's file format
//! (`fallback_model.txt`, generated from the tune texts by the test
//! `actors/tests/analyzer_fallback.rs`, never from holdout texts), the score and its threshold.
//!
//! The model is Bernoulli-style multinomial naive Bayes: each text counts once per distinct
//! word and word pair it contains. Its score is the top class's posterior, tempered by the
//! square root of the number of known words (naive Bayes is overconfident on long texts); a
//! type is answered only at or above [`THRESHOLD`], and never `unknown`.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::OnceLock;

use tunewright_schemas::ErrorType;

/// The checked-in model, generated from the tune texts.
const MODEL: &str = include_str!("fallback_model.txt");
/// The least score (tempered posterior of the best type) answered; below it, `unknown`.
/// Chosen on the tune rounds read as holdouts in turn (each round by a model of the rounds
/// before it, on the texts the rules left unknown), never on a holdout.
pub const THRESHOLD: f64 = 0.6;
/// Additive smoothing of the word counts.
const ALPHA: f64 = 0.1;
/// Words kept in the file: those in at least this many tune texts.
const MIN_TEXTS: u32 = 2;
/// Words too common to say anything alone (they still count inside word pairs).
const STOP: &[&str] = &[
    "the", "a", "an", "of", "to", "in", "is", "and", "or", "for", "on", "at", "by", "be", "it",
    "this", "that", "with", "was", "are", "as", "from",
];

/// What the model says about one text.
#[derive(Debug, Clone, PartialEq)]
pub struct Guess {
    pub error_type: ErrorType,
    /// The tempered posterior of `error_type`, in 0..=1.
    pub score: f64,
}

/// A trained model: per type, how many texts it had and how many contained each word.
#[derive(Debug, Default)]
pub struct Model {
    types: Vec<ErrorType>,
    texts: Vec<u32>,
    /// Sum over the type's texts of their distinct words (the denominator of a word's share).
    words_total: Vec<u64>,
    /// Word -> (type index, number of that type's texts containing it).
    counts: HashMap<String, Vec<(usize, u32)>>,
}

/// The words of a signal (see `signal`): runs of ASCII letters, digits and `_` that start with
/// a letter, 2 to 40 long, without the stop words; and every pair of neighbouring words.
pub fn tokens(signal: &str) -> BTreeSet<String> {
    let words: Vec<&str> = signal
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|w| (2..=40).contains(&w.len()) && w.starts_with(|c: char| c.is_ascii_alphabetic()))
        .collect();
    let mut out: BTreeSet<String> = words
        .iter()
        .filter(|w| !STOP.contains(w))
        .map(|w| (*w).to_string())
        .collect();
    for pair in words.windows(2) {
        out.insert(format!("{} {}", pair[0], pair[1]));
    }
    out
}

impl Model {
    /// Learn from `(text, type)` pairs (the texts as pasted; their signal is read here).
    pub fn train<'a>(cases: impl IntoIterator<Item = (&'a str, ErrorType)>) -> Model {
        let mut per_type: BTreeMap<String, (u32, BTreeMap<String, u32>)> = BTreeMap::new();
        for (text, t) in cases {
            let entry = per_type.entry(t.as_str().to_string()).or_default();
            entry.0 += 1;
            for w in tokens(&super::signal::signal(text)) {
                *entry.1.entry(w).or_default() += 1;
            }
        }
        let mut texts_with: BTreeMap<&str, u32> = BTreeMap::new();
        for (_, words) in per_type.values() {
            for (w, n) in words {
                *texts_with.entry(w).or_default() += n;
            }
        }
        let mut m = Model::default();
        for (i, (name, (n, words))) in per_type.iter().enumerate() {
            let Ok(t) = name.parse::<ErrorType>() else {
                continue;
            };
            m.types.push(t);
            m.texts.push(*n);
            m.words_total
                .push(words.values().map(|c| u64::from(*c)).sum());
            for (w, c) in words {
                if texts_with.get(w.as_str()).copied().unwrap_or(0) >= MIN_TEXTS {
                    m.counts.entry(w.clone()).or_default().push((i, *c));
                }
            }
        }
        m
    }

    /// The model as the text of `fallback_model.txt`: a header line per type
    /// (`type<TAB>texts<TAB>words`), a blank line, then one line per word
    /// (`word<TAB>type index:count ...`), words sorted.
    pub fn to_text(&self) -> String {
        let mut out = String::from(
            "# tunewright analyzer fallback model: generated from the corpus's tune texts by\n# cargo test -p tunewright-actors --test analyzer_fallback (see docs/analyzer.md)\n",
        );
        for i in 0..self.types.len() {
            out.push_str(&format!(
                "{}\t{}\t{}\n",
                self.types[i].as_str(),
                self.texts[i],
                self.words_total[i]
            ));
        }
        out.push('\n');
        let words: BTreeMap<&String, &Vec<(usize, u32)>> = self.counts.iter().collect();
        for (w, cs) in words {
            let cells: Vec<String> = cs.iter().map(|(i, c)| format!("{i}:{c}")).collect();
            out.push_str(&format!("{w}\t{}\n", cells.join(" ")));
        }
        out
    }

    /// Read the text `to_text` wrote; `None` if it is not that.
    pub fn from_text(text: &str) -> Option<Model> {
        let mut m = Model::default();
        let mut lines = text.lines().filter(|l| !l.starts_with('#'));
        for line in lines.by_ref() {
            if line.is_empty() {
                break;
            }
            let mut f = line.split('\t');
            m.types.push(f.next()?.parse().ok()?);
            m.texts.push(f.next()?.parse().ok()?);
            m.words_total.push(f.next()?.parse().ok()?);
        }
        for line in lines {
            let (w, cells) = line.split_once('\t')?;
            let mut cs = Vec::new();
            for cell in cells.split(' ') {
                let (i, c) = cell.split_once(':')?;
                let i: usize = i.parse().ok()?;
                if i >= m.types.len() {
                    return None;
                }
                cs.push((i, c.parse().ok()?));
            }
            m.counts.insert(w.to_string(), cs);
        }
        (!m.types.is_empty()).then_some(m)
    }

    /// `guess` on a text as pasted (its signal is read here).
    pub fn guess_text(&self, text: &str) -> Option<Guess> {
        self.guess(&super::signal::signal(text))
    }

    /// The most likely type of a signal and its score (which may be under the threshold, and
    /// may be `unknown`); `None` when no word of it is known.
    pub fn guess(&self, signal: &str) -> Option<Guess> {
        let known: Vec<&Vec<(usize, u32)>> = tokens(signal)
            .iter()
            .filter_map(|w| self.counts.get(w))
            .collect();
        if known.is_empty() {
            return None;
        }
        let all_texts: u32 = self.texts.iter().sum();
        let vocabulary = self.counts.len() as f64;
        let mut logp: Vec<f64> = (0..self.types.len())
            .map(|i| {
                let denominator = self.words_total[i] as f64 + ALPHA * vocabulary;
                let unseen = (ALPHA / denominator).ln();
                (f64::from(self.texts[i]) / f64::from(all_texts.max(1))).ln()
                    + unseen * known.len() as f64
            })
            .collect();
        // Words start as unseen in every type; a type that has seen one gains the difference.
        for cs in &known {
            for (i, c) in cs.iter() {
                let denominator = self.words_total[*i] as f64 + ALPHA * vocabulary;
                logp[*i] +=
                    ((f64::from(*c) + ALPHA) / denominator).ln() - (ALPHA / denominator).ln();
            }
        }
        let temper = (known.len() as f64).sqrt().max(1.0);
        let (best, top) = logp
            .iter()
            .enumerate()
            .max_by(|a, b| a.1.total_cmp(b.1))
            .map(|(i, l)| (i, *l))?;
        let z: f64 = logp.iter().map(|l| ((l - top) / temper).exp()).sum();
        Some(Guess {
            error_type: self.types[best],
            score: 1.0 / z,
        })
    }
}

fn model() -> Option<&'static Model> {
    static CELL: OnceLock<Option<Model>> = OnceLock::new();
    CELL.get_or_init(|| Model::from_text(MODEL)).as_ref()
}

/// The checked-in model's answer for a signal the rules did not read: a type at or above the
/// threshold, never `unknown`.
pub fn classify(signal: &str) -> Option<Guess> {
    model()?
        .guess(signal)
        .filter(|g| g.score >= THRESHOLD && g.error_type != ErrorType::Unknown)
}

/// The text of the checked-in model (for the test that checks it is the tune texts' model).
pub fn checked_in() -> &'static str {
    MODEL
}

#[cfg(test)]
mod tests {
    use super::*;
    use ErrorType::*;

    fn toy() -> Model {
        Model::train([
            (
                "the shard process failed to start, backend exited",
                LlmServerError,
            ),
            (
                "backend exited: shard failed to start on rank 0",
                LlmServerError,
            ),
            (
                "the llm server backend exited while loading",
                LlmServerError,
            ),
            (
                "dataset row has a list where a record was expected",
                DatasetFormat,
            ),
            ("a dataset row is a list, expected a record", DatasetFormat),
            ("dataset record expected, got list in row 3", DatasetFormat),
        ])
    }

    #[test]
    fn the_checked_in_model_reads() {
        let m = model().expect("fallback_model.txt parses");
        assert!(m.types.len() > 30, "{} types", m.types.len());
        assert!(m.counts.len() > 1000, "{} words", m.counts.len());
    }

    #[test]
    fn words_and_word_pairs_are_the_tokens() {
        let t = tokens("runtimeerror: the shard 0 failed-to start");
        assert!(t.contains("runtimeerror"));
        assert!(t.contains("shard"));
        assert!(t.contains("failed to"));
        assert!(t.contains("the shard"));
        assert!(!t.contains("the"), "stop words alone are not tokens");
        assert!(!t.contains("0"));
    }

    #[test]
    fn a_text_like_one_type_is_guessed_as_it_and_nothing_known_is_no_guess() {
        let m = toy();
        let g = m
            .guess("error: shard failed to start, backend exited")
            .unwrap();
        assert_eq!(g.error_type, LlmServerError);
        assert!(g.score > 0.9, "{g:?}");
        let g = m
            .guess("row 7 of the dataset: expected a record, got list")
            .unwrap();
        assert_eq!(g.error_type, DatasetFormat);
        assert_eq!(m.guess("zzz qqq"), None);
    }

    #[test]
    fn a_text_between_types_scores_under_a_clear_one() {
        let m = toy();
        let clear = m.guess("shard failed to start backend exited").unwrap();
        let mixed = m.guess("backend exited dataset row list").unwrap();
        assert!(mixed.score < clear.score, "{mixed:?} vs {clear:?}");
    }

    #[test]
    fn the_model_survives_its_own_text_and_refuses_a_broken_one() {
        let m = toy();
        let again = Model::from_text(&m.to_text()).unwrap();
        assert_eq!(again.to_text(), m.to_text());
        let s = "shard failed to start";
        assert_eq!(again.guess(s), m.guess(s));
        assert!(Model::from_text("not_a_type\t1\t2\n\nword\t0:1\n").is_none());
        assert!(Model::from_text("oom_cpu\t1\t2\n\nword\t5:1\n").is_none());
    }

    #[test]
    fn only_a_confident_known_type_is_answered() {
        // Nothing known: no answer, whatever the model.
        assert_eq!(classify("qqqq zzzz"), None);
        if let Some(g) = classify("the shard failed to start") {
            assert!(g.score >= THRESHOLD);
            assert_ne!(g.error_type, Unknown);
        }
    }
}
