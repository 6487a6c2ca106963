//! Choosing the next token from f32 logits: greedy (the first maximum, as `argmax`), or
//! sampled at a temperature from the top-p nucleus with our own seeded generator (SplitMix64),
//! so that a seed gives the same tokens on every device and libtorch version.

use tch::Tensor;

use crate::TrainerError;

#[derive(Debug, Clone, PartialEq)]
pub enum Sampling {
    Greedy,
    /// `temperature` > 0, `top_p` in (0, 1].
    Sample {
        temperature: f64,
        top_p: f64,
        seed: u64,
    },
}

pub(super) struct Sampler {
    sampling: Sampling,
    state: u64,
}

impl Sampler {
    pub(super) fn new(sampling: &Sampling) -> Sampler {
        let state = match sampling {
            Sampling::Sample { seed, .. } => *seed,
            Sampling::Greedy => 0,
        };
        Sampler {
            sampling: sampling.clone(),
            state,
        }
    }

    /// SplitMix64: a uniform draw in [0, 1).
    fn uniform(&mut self) -> f64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        (z >> 11) as f64 / (1u64 << 53) as f64
    }

    /// The next token from `logits` `[vocab]` (f32, CPU).
    pub(super) fn next(&mut self, logits: &Tensor) -> Result<i64, TrainerError> {
        let values: Vec<f32> = Vec::<f32>::try_from(logits).map_err(|e| TrainerError::Torch {
            phase: "generation".into(),
            message: e.to_string(),
        })?;
        match self.sampling.clone() {
            Sampling::Greedy => Ok(argmax(&values)),
            Sampling::Sample {
                temperature, top_p, ..
            } => {
                let valid = temperature > 0.0 && top_p > 0.0 && top_p <= 1.0;
                if !valid {
                    return Err(super::invalid(format!(
                        "temperature {temperature} must be > 0 and top_p {top_p} in (0, 1]"
                    )));
                }
                let u = self.uniform();
                Ok(sample(&values, temperature, top_p, u))
            }
        }
    }
}

/// The index of the first maximum (NaN never wins).
pub fn argmax(values: &[f32]) -> i64 {
    let mut best = 0;
    for (i, v) in values.iter().enumerate() {
        if *v > values[best] || values[best].is_nan() {
            best = i;
        }
    }
    best as i64
}

/// Draw from softmax(values / temperature) restricted to the smallest set of most likely
/// tokens whose mass reaches `top_p`, with `u` uniform in [0, 1).
pub fn sample(values: &[f32], temperature: f64, top_p: f64, u: f64) -> i64 {
    let max = values
        .iter()
        .filter(|v| v.is_finite())
        .fold(f64::NEG_INFINITY, |m, v| m.max(f64::from(*v)));
    let mut probs: Vec<(usize, f64)> = values
        .iter()
        .enumerate()
        .map(|(i, v)| {
            let p = if v.is_finite() {
                ((f64::from(*v) - max) / temperature).exp()
            } else {
                0.0
            };
            (i, p)
        })
        .collect();
    let total: f64 = probs.iter().map(|(_, p)| p).sum();
    if total.is_nan() || total <= 0.0 {
        return argmax(values);
    }
    probs.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    let mut kept = 0;
    let mut mass = 0.0;
    for (_, p) in &probs {
        kept += 1;
        mass += p / total;
        if mass >= top_p {
            break;
        }
    }
    let nucleus = &probs[..kept];
    let nucleus_total: f64 = nucleus.iter().map(|(_, p)| p).sum();
    let mut target = u * nucleus_total;
    for (i, p) in nucleus {
        if target < *p {
            return *i as i64;
        }
        target -= p;
    }
    nucleus[kept - 1].0 as i64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn top_p_keeps_the_nucleus_and_a_seed_repeats() {
        let logits = [0.0f32, 3.0, 2.9, -5.0];
        // p(1) + p(2) ~ 0.99: a top_p of 0.5 keeps only token 1.
        for k in 0..20 {
            assert_eq!(sample(&logits, 1.0, 0.5, f64::from(k) / 20.0), 1);
        }
        let t = Tensor::from_slice(&logits);
        let draw = |seed| {
            let mut s = Sampler::new(&Sampling::Sample {
                temperature: 1.0,
                top_p: 0.99,
                seed,
            });
            (0..30).map(|_| s.next(&t).unwrap()).collect::<Vec<_>>()
        };
        assert_eq!(draw(7), draw(7));
        assert_ne!(draw(7), draw(8));
        assert!(draw(7).iter().all(|i| *i == 1 || *i == 2));
        assert_eq!(argmax(&logits), 1);
        let mut bad = Sampler::new(&Sampling::Sample {
            temperature: 0.0,
            top_p: 1.0,
            seed: 1,
        });
        assert!(bad.next(&t).is_err());
    }
}
