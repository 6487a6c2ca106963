//! Attention masks: causal, padding keys hidden, and for sliding-window layers only the last
//! `window` keys (a query at i sees keys j with i - window < j <= i, as transformers'
//! `sliding_window_overlay`). Every query may see itself, so fully padded rows stay finite.

use tch::{Device, Kind, Tensor};

use super::spec::AttentionSpan;

/// The boolean `[b, 1, t, t]` mask of `span` for a batch of `t` tokens, or None when plain
/// causal attention is exact (no padding, and the window covers the whole sequence).
pub fn build(
    attention_mask: Option<&Tensor>,
    t: i64,
    span: AttentionSpan,
    dev: Device,
) -> Option<Tensor> {
    let keys = attention_mask
        .map(|m| m.to_kind(Kind::Bool))
        .filter(|k| k.all().int64_value(&[]) != 1);
    let window = match span {
        AttentionSpan::Sliding(w) if w < t => Some(w),
        _ => None,
    };
    if keys.is_none() && window.is_none() {
        return None;
    }
    let mut allowed = Tensor::ones([t, t], (Kind::Bool, dev)).tril(0);
    if let Some(w) = window {
        // Keep j > i - w: the band of the last w diagonals.
        allowed = allowed.logical_and(&Tensor::ones([t, t], (Kind::Bool, dev)).triu(1 - w));
    }
    let mut m = allowed.unsqueeze(0).unsqueeze(0);
    if let Some(k) = keys {
        m = m.logical_and(&k.unsqueeze(1).unsqueeze(1));
    }
    let eye = Tensor::eye(t, (Kind::Bool, dev));
    Some(m.logical_or(&eye.unsqueeze(0).unsqueeze(0)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sliding_window_keeps_the_last_w_keys() {
        let m = build(None, 5, AttentionSpan::Sliding(2), Device::Cpu).unwrap();
        let rows: Vec<Vec<i64>> = (0..5)
            .map(|i| (0..5).map(|j| m.int64_value(&[0, 0, i, j])).collect())
            .collect();
        assert_eq!(
            rows,
            [
                [1, 0, 0, 0, 0],
                [1, 1, 0, 0, 0],
                [0, 1, 1, 0, 0],
                [0, 0, 1, 1, 0],
                [0, 0, 0, 1, 1]
            ]
        );
        assert!(build(None, 5, AttentionSpan::Sliding(5), Device::Cpu).is_none());
        assert!(build(None, 5, AttentionSpan::Global, Device::Cpu).is_none());
    }
}
