//! Text generation from a `CausalLm` (base + adapter, or merged weights): greedy or sampled
//! decoding (temperature, top-p, a seed) over the key/value cache, stopping at the first
//! end-of-sequence or end-of-turn id (`stop.rs`) or after `max_new_tokens`. The rules are in
//! docs/generation.md.

pub mod sampler;
pub mod stop;

use tch::{Kind, Tensor};
use tunewright_schemas::{ctx, ErrorCode, Failure};

pub use sampler::Sampling;
pub use stop::stop_ids;

use crate::model::CausalLm;
use crate::TrainerError;

/// How to decode.
#[derive(Debug, Clone, PartialEq)]
pub struct GenerateOptions {
    pub max_new_tokens: usize,
    pub sampling: Sampling,
    /// Generation ends after any of these ids (which is kept in the output).
    pub stop_ids: Vec<i64>,
    /// Decode with the key/value cache (false: every step re-runs the whole sequence).
    pub use_cache: bool,
    /// Keep each step's f32 logits (for the exports' self-check).
    pub keep_logits: bool,
}

impl GenerateOptions {
    pub fn greedy(max_new_tokens: usize, stop_ids: Vec<i64>) -> GenerateOptions {
        GenerateOptions {
            max_new_tokens,
            sampling: Sampling::Greedy,
            stop_ids,
            use_cache: true,
            keep_logits: false,
        }
    }
}

/// Why generation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopReason {
    /// A stop id was produced.
    Stop,
    /// `max_new_tokens` were produced without a stop id.
    Length,
}

#[derive(Debug)]
pub struct Generation {
    /// The new tokens (the stop id included when there was one).
    pub tokens: Vec<i64>,
    pub stop: StopReason,
    /// Each step's logits `[vocab]` (f32, CPU) when `keep_logits` was asked.
    pub logits: Vec<Tensor>,
}

/// `VALIDATION_ERROR` for decoding options or a prompt that cannot be used.
pub(crate) fn invalid(reason: String) -> TrainerError {
    TrainerError::Rejected(Failure::new(
        ErrorCode::ValidationError,
        ctx! {"reason" => reason, "field" => "generation"},
    ))
}

/// Generate after `prompt` (token ids, not empty).
pub fn generate(
    model: &CausalLm,
    prompt: &[i64],
    options: &GenerateOptions,
) -> Result<Generation, TrainerError> {
    if prompt.is_empty() {
        return Err(invalid("the prompt has no tokens".into()));
    }
    let _guard = tch::no_grad_guard();
    let mut sampler = sampler::Sampler::new(&options.sampling);
    let mut cache = model.new_cache();
    let mut sequence: Vec<i64> = prompt.to_vec();
    let mut next_input: Vec<i64> = prompt.to_vec();
    let mut out = Generation {
        tokens: Vec::new(),
        stop: StopReason::Length,
        logits: Vec::new(),
    };
    for _ in 0..options.max_new_tokens {
        let logits = if options.use_cache {
            let ids = Tensor::from_slice(&next_input)
                .unsqueeze(0)
                .to_device(model.device);
            model.forward_cached(&ids, &mut cache)?
        } else {
            let ids = Tensor::from_slice(&sequence)
                .unsqueeze(0)
                .to_device(model.device);
            model.try_forward(&ids, None, false)?
        };
        let last = logits
            .select(0, 0)
            .select(0, -1)
            .to_kind(Kind::Float)
            .to_device(tch::Device::Cpu);
        let token = sampler.next(&last)?;
        if options.keep_logits {
            out.logits.push(last);
        }
        out.tokens.push(token);
        sequence.push(token);
        next_input = vec![token];
        if options.stop_ids.contains(&token) {
            out.stop = StopReason::Stop;
            break;
        }
    }
    Ok(out)
}
