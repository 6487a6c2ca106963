//! The key/value cache of decoding: each layer's past keys and values (rotated, one entry per
//! key/value head, before they are repeated to the query heads), and the masks and rotary
//! positions of new tokens that follow `len` cached ones. Sliding layers keep every key and
//! rely on their mask (a query at i sees keys j with i - window < j <= i), so one cache layout
//! serves every family (docs/generation.md).

use tch::{Device, Kind, Tensor};

use super::spec::AttentionSpan;

/// One layer's past keys and values, `[b, kv_heads, past, head_dim]` each.
#[derive(Default)]
pub struct LayerCache {
    kv: Option<(Tensor, Tensor)>,
}

impl LayerCache {
    /// Append the new keys/values and return all of them (past then new).
    pub fn append(&mut self, k: Tensor, v: Tensor) -> (Tensor, Tensor) {
        let (k, v) = match self.kv.take() {
            Some((pk, pv)) => (Tensor::cat(&[&pk, &k], 2), Tensor::cat(&[&pv, &v], 2)),
            None => (k, v),
        };
        self.kv = Some((k.shallow_clone(), v.shallow_clone()));
        (k, v)
    }
}

/// The cache of a whole model for one sequence.
pub struct KvCache {
    pub(super) layers: Vec<LayerCache>,
    /// Tokens already cached (the position of the next token).
    pub len: i64,
}

impl KvCache {
    pub fn new(layers: usize) -> KvCache {
        KvCache {
            layers: (0..layers).map(|_| LayerCache::default()).collect(),
            len: 0,
        }
    }
}

/// The boolean `[1, 1, t, past + t]` mask of `t` new tokens after `past` cached ones, or None
/// when there is nothing cached and plain causal attention is exact.
pub fn mask_after(past: i64, t: i64, span: AttentionSpan, dev: Device) -> Option<Tensor> {
    if past == 0 {
        return super::mask::build(None, t, span, dev);
    }
    let q = (Tensor::arange(t, (Kind::Int64, dev)) + past).unsqueeze(1);
    let k = Tensor::arange(past + t, (Kind::Int64, dev)).unsqueeze(0);
    let mut allowed = k.le_tensor(&q);
    if let AttentionSpan::Sliding(w) = span {
        allowed = allowed.logical_and(&k.gt_tensor(&(&q - w)));
    }
    Some(allowed.unsqueeze(0).unsqueeze(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_token_sees_the_window_of_cached_keys() {
        let m = mask_after(4, 1, AttentionSpan::Sliding(2), Device::Cpu).unwrap();
        let row: Vec<i64> = (0..5).map(|j| m.int64_value(&[0, 0, 0, j])).collect();
        assert_eq!(row, [0, 0, 0, 1, 1]);
        let m = mask_after(2, 2, AttentionSpan::Global, Device::Cpu).unwrap();
        let rows: Vec<Vec<i64>> = (0..2)
            .map(|i| (0..4).map(|j| m.int64_value(&[0, 0, i, j])).collect())
            .collect();
        assert_eq!(rows, [[1, 1, 1, 0], [1, 1, 1, 1]]);
    }
}
