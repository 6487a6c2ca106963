//! How a train config sets up the model and its memory: the device, the dtype the model
//! computes in, LoRA and QLoRA settings, whether layers are recomputed in the backward pass,
//! the memory estimate, and the memory facts a TRAINING_OOM failure carries.

use tch::{Device, Kind};
use tunewright_schemas::config::{ComputeDtype, QuantType4bit, TrainConfig, TrainDevice};

use super::memory::{self, MemoryEstimate, MemoryPlan};
use crate::error::MemoryFacts;
use crate::model::{LoraSettings, ModelConfig, QuantSettings};
use crate::TrainerError;

/// The device a config asks for; `cuda` without a usable GPU is `NO_GPU`.
pub fn device_for(cfg: &TrainConfig) -> Result<Device, TrainerError> {
    match cfg.device {
        TrainDevice::Cpu => Ok(Device::Cpu),
        TrainDevice::Cuda if !tch::Cuda::is_available() => Err(TrainerError::NoGpu),
        TrainDevice::Cuda => Ok(Device::Cuda(0)),
        TrainDevice::Auto => Ok(Device::cuda_if_available()),
    }
}

/// The LoRA adapter a config asks for.
pub fn lora_settings(cfg: &TrainConfig) -> LoraSettings {
    LoraSettings {
        r: cfg.lora_r,
        alpha: cfg.lora_alpha,
        dropout: cfg.lora_dropout,
        target_modules: cfg.target_modules.clone(),
    }
}

/// The dtype the model computes in: QLoRA's `bnb_4bit_compute_dtype`, else bf16 on a GPU and
/// f32 on the CPU.
pub fn compute_dtype(cfg: &TrainConfig, device: Device) -> Kind {
    if cfg.load_in_4bit {
        return match cfg.bnb_4bit_compute_dtype {
            ComputeDtype::Float32 => Kind::Float,
            ComputeDtype::Bfloat16 => Kind::BFloat16,
            ComputeDtype::Float16 => Kind::Half,
        };
    }
    if device.is_cuda() {
        Kind::BFloat16
    } else {
        Kind::Float
    }
}

/// Whether the backward pass recomputes each layer: with `gradient_checkpointing`, and always
/// with `load_in_4bit` (as PEFT's `prepare_model_for_kbit_training` does by default): autograd
/// would otherwise keep every dequantized weight for the backward pass, as many bytes as the
/// dense weights QLoRA saves (libtorch offers no autograd function that keeps the 4-bit form).
pub fn recomputes_layers(cfg: &TrainConfig) -> bool {
    cfg.gradient_checkpointing || cfg.load_in_4bit
}

/// QLoRA's storage settings of a config (None without `load_in_4bit`).
pub fn quant_settings(cfg: &TrainConfig) -> Option<QuantSettings> {
    cfg.load_in_4bit.then_some(QuantSettings {
        quant_type: cfg.bnb_4bit_quant_type,
        double_quant: cfg.bnb_4bit_use_double_quant,
    })
}

/// The memory estimate of training `mc` with `cfg` on `device`.
pub fn estimate_memory(
    mc: &ModelConfig,
    cfg: &TrainConfig,
    device: Device,
) -> Result<MemoryEstimate, TrainerError> {
    let lora = lora_settings(cfg);
    let targets = lora.resolved_targets_for(mc.family)?;
    let plan = MemoryPlan {
        micro_batch: cfg.per_device_train_batch_size.max(1) as u64,
        seq_len: cfg.max_seq_length.max(1) as u64,
        dtype_bytes: compute_dtype(cfg, device).elt_size_in_bytes() as u64,
        lora: &lora,
        targets: &targets,
        quant: quant_settings(cfg),
        gradient_checkpointing: recomputes_layers(cfg),
    };
    Ok(memory::estimate(mc, &plan))
}

/// The base model's size and the levers in use, for a TRAINING_OOM failure's context.
pub fn memory_facts(mc: &ModelConfig, cfg: &TrainConfig, device: Device) -> MemoryFacts {
    let dtype_bytes = compute_dtype(cfg, device).elt_size_in_bytes() as u64;
    let nf4 = QuantSettings {
        quant_type: QuantType4bit::Nf4,
        double_quant: true,
    };
    MemoryFacts {
        base_model_parameters: mc.num_parameters(),
        base_weights_bytes: memory::base_weight_bytes(mc, dtype_bytes, quant_settings(cfg)),
        base_weights_bytes_4bit: memory::base_weight_bytes(mc, dtype_bytes, Some(nf4)),
        load_in_4bit: cfg.load_in_4bit,
        gradient_checkpointing: cfg.gradient_checkpointing,
    }
}
