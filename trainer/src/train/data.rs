//! The training data: examples read, tokenized and filtered (with counts per reason, for
//! the pre-flight report), and batches in a deterministic order per epoch.

use std::collections::{BTreeMap, HashSet};
use std::path::Path;

use rand::seq::SliceRandom;
use rand::SeedableRng;
use tch::{Device, Kind, Tensor};
use tunewright_schemas::dataset::parse_jsonl;

use super::tokenize::{ChatTokenizer, IGNORE};
use crate::TrainerError;

/// A tokenized example.
#[derive(Debug, Clone)]
pub struct Tokenized {
    pub ids: Vec<i64>,
    pub labels: Vec<i64>,
}

impl Tokenized {
    pub fn answer_tokens(&self) -> usize {
        // Position i predicts token i+1: the first label never counts.
        self.labels.iter().skip(1).filter(|l| **l != IGNORE).count()
    }
}

/// The examples kept and why the others were dropped.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Prepared {
    #[serde(skip)]
    pub examples: Vec<Tokenized>,
    pub kept: usize,
    pub dropped: BTreeMap<&'static str, usize>,
    pub tokens: usize,
    pub answer_tokens: usize,
}

/// Read `path` (JSONL), tokenize, and drop what cannot be trained on.
pub fn prepare(
    path: &Path,
    tok: &ChatTokenizer,
    max_seq_length: i64,
) -> Result<Prepared, TrainerError> {
    let bytes = std::fs::read(path).map_err(|e| TrainerError::Io {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })?;
    let (examples, _) = parse_jsonl(&bytes).map_err(TrainerError::Rejected)?;
    let mut out = Prepared::default();
    let mut seen = HashSet::new();
    for ex in examples {
        let key = serde_json::to_string(&ex.turns).unwrap_or_default();
        if !seen.insert(key) {
            *out.dropped.entry("duplicate").or_default() += 1;
            continue;
        }
        let (ids, labels) = tok.encode_example(&ex.turns)?;
        if ids.len() as i64 > max_seq_length {
            *out.dropped.entry("longer_than_max_seq_length").or_default() += 1;
            continue;
        }
        let t = Tokenized { ids, labels };
        if t.answer_tokens() == 0 {
            *out.dropped.entry("empty_answer_after_masking").or_default() += 1;
            continue;
        }
        out.tokens += t.ids.len();
        out.answer_tokens += t.answer_tokens();
        out.examples.push(t);
    }
    out.kept = out.examples.len();
    Ok(out)
}

/// The order of examples in `epoch` (a permutation seeded by seed and epoch).
pub fn epoch_order(n: usize, seed: u64, epoch: u64) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..n).collect();
    let mut rng =
        rand::rngs::StdRng::seed_from_u64(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ epoch);
    idx.shuffle(&mut rng);
    idx
}

/// A padded micro-batch on `device`.
pub struct Batch {
    pub input_ids: Tensor,
    pub attention_mask: Tensor,
    /// Labels shifted for next-token prediction: `[b, t-1]`.
    pub targets: Tensor,
    pub tokens: i64,
    pub answer_tokens: i64,
}

pub fn collate(examples: &[&Tokenized], pad_id: i64, device: Device) -> Batch {
    let t = examples
        .iter()
        .map(|e| e.ids.len())
        .max()
        .unwrap_or(1)
        .max(2);
    let b = examples.len();
    let mut ids = vec![pad_id; b * t];
    let mut mask = vec![0i64; b * t];
    let mut labels = vec![IGNORE; b * t];
    let mut tokens = 0;
    for (i, e) in examples.iter().enumerate() {
        for (j, id) in e.ids.iter().enumerate() {
            ids[i * t + j] = *id;
            mask[i * t + j] = 1;
            labels[i * t + j] = e.labels[j];
        }
        tokens += e.ids.len() as i64;
    }
    let shape = [b as i64, t as i64];
    let labels = Tensor::from_slice(&labels).view(shape).to_device(device);
    let targets = labels.narrow(1, 1, t as i64 - 1);
    let answer_tokens = targets.ne(IGNORE).sum(Kind::Int64).int64_value(&[]);
    Batch {
        input_ids: Tensor::from_slice(&ids).view(shape).to_device(device),
        attention_mask: Tensor::from_slice(&mask).view(shape).to_device(device),
        targets,
        tokens,
        answer_tokens,
    }
}
