//! `ModelConfig`: the fields of a Hugging Face `config.json` the decoder needs, read from both
//! the transformers 4 form (`rope_theta`, `rope_scaling`) and the 5 form (`rope_parameters`),
//! with `head_dim`, GQA and tied embeddings. Which family a checkpoint is comes from the
//! schemas' architecture table; what differs between families is `ModelSpec` (`spec.rs`).

use super::config_fields::{bad, opt_i64};
use std::path::Path;

use serde_json::Value;
use tunewright_schemas::model_family::{family_of_architecture, family_of_model_type};
use tunewright_schemas::ModelFamily;

use super::spec::ModelSpec;
use crate::error::TrainerError;

/// How rotary frequencies are scaled.
#[derive(Debug, Clone, PartialEq)]
pub enum RopeScaling {
    None,
    /// Llama 3.1's frequency-dependent scaling.
    Llama3 {
        factor: f64,
        low_freq_factor: f64,
        high_freq_factor: f64,
        original_max_position_embeddings: f64,
    },
    /// Plain position interpolation: frequencies divided by `factor`.
    Linear {
        factor: f64,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub struct ModelConfig {
    pub architecture: String,
    pub family: ModelFamily,
    pub vocab_size: i64,
    pub hidden_size: i64,
    pub intermediate_size: i64,
    pub num_hidden_layers: i64,
    pub num_attention_heads: i64,
    pub num_key_value_heads: i64,
    pub head_dim: i64,
    pub rms_norm_eps: f64,
    pub rope_theta: f64,
    pub rope_scaling: RopeScaling,
    pub max_position_embeddings: i64,
    pub tie_word_embeddings: bool,
    pub attention_bias: bool,
    pub mlp_bias: bool,
    pub bos_token_id: Option<i64>,
    pub eos_token_ids: Vec<i64>,
    pub pad_token_id: Option<i64>,
    /// The dtype the checkpoint declares (`torch_dtype` or `dtype`), e.g. "bfloat16".
    pub dtype: Option<String>,
    /// What this family does differently from Llama.
    pub spec: ModelSpec,
}

/// The name this type had when only Llama was supported.
pub type LlamaConfig = ModelConfig;

impl ModelConfig {
    /// Read `<dir>/config.json`.
    pub fn from_dir(dir: &Path) -> Result<ModelConfig, TrainerError> {
        if !dir.is_dir() {
            return Err(TrainerError::ModelNotFound {
                path: dir.to_path_buf(),
                reason: "no such directory".into(),
            });
        }
        let path = dir.join("config.json");
        let text = std::fs::read_to_string(&path).map_err(|e| TrainerError::ModelNotFound {
            path: dir.to_path_buf(),
            reason: format!("cannot read config.json: {e}"),
        })?;
        let value: Value = serde_json::from_str(&text).map_err(|e| {
            TrainerError::load(&path, format!("config.json is not valid JSON: {e}"))
        })?;
        ModelConfig::from_json(&value).map_err(|e| match e {
            TrainerError::ModelLoad { reason, .. } => TrainerError::load(&path, reason),
            other => other,
        })
    }

    /// Parse a config.json value (path-less errors carry an empty path).
    pub fn from_json(v: &Value) -> Result<ModelConfig, TrainerError> {
        let (architecture, family) = architecture_of(v)?;
        let hidden_size = req_i64(v, "hidden_size")?;
        let num_attention_heads = req_i64(v, "num_attention_heads")?;
        if hidden_size <= 0 || num_attention_heads <= 0 {
            return Err(bad("hidden_size and num_attention_heads must be positive"));
        }
        let num_key_value_heads = opt_i64(v, "num_key_value_heads").unwrap_or(num_attention_heads);
        if num_key_value_heads <= 0 || num_attention_heads % num_key_value_heads != 0 {
            return Err(bad(format!(
                "num_attention_heads ({num_attention_heads}) is not a multiple of num_key_value_heads ({num_key_value_heads})"
            )));
        }
        let head_dim = opt_i64(v, "head_dim").unwrap_or(hidden_size / num_attention_heads);
        if head_dim <= 0 || head_dim % 2 != 0 {
            return Err(bad(format!(
                "head_dim {head_dim} must be positive and even"
            )));
        }
        let num_hidden_layers = req_i64(v, "num_hidden_layers")?;
        if !(1..=1024).contains(&num_hidden_layers) {
            return Err(bad(format!(
                "num_hidden_layers {num_hidden_layers} must be between 1 and 1024"
            )));
        }
        // transformers 5 keeps theta and scaling together in rope_parameters (per layer type
        // where layers differ, as Gemma 3's: the global layers' are under full_attention).
        let rope_params = v.get("rope_parameters").filter(|p| p.is_object()).map(|p| {
            p.get("full_attention")
                .filter(|f| f.is_object())
                .unwrap_or(p)
        });
        let rope_theta = rope_params
            .and_then(|p| p.get("rope_theta"))
            .and_then(Value::as_f64)
            .or_else(|| v.get("rope_theta").and_then(Value::as_f64))
            .unwrap_or(10000.0);
        let scaling_obj = rope_params.or_else(|| v.get("rope_scaling").filter(|s| s.is_object()));
        let rope_scaling = match scaling_obj {
            None => RopeScaling::None,
            Some(s) => parse_scaling(s)?,
        };
        let eos_token_ids = match v.get("eos_token_id") {
            Some(Value::Array(a)) => a.iter().filter_map(Value::as_i64).collect(),
            Some(x) => x.as_i64().into_iter().collect(),
            None => Vec::new(),
        };
        let spec = ModelSpec::from_json(family, v, head_dim, num_hidden_layers)?;
        Ok(ModelConfig {
            architecture,
            family,
            vocab_size: req_i64(v, "vocab_size")?,
            hidden_size,
            intermediate_size: req_i64(v, "intermediate_size")?,
            num_hidden_layers,
            num_attention_heads,
            num_key_value_heads,
            head_dim,
            rms_norm_eps: v
                .get("rms_norm_eps")
                .and_then(Value::as_f64)
                .unwrap_or(1e-6),
            rope_theta,
            rope_scaling,
            max_position_embeddings: opt_i64(v, "max_position_embeddings").unwrap_or(2048),
            tie_word_embeddings: v
                .get("tie_word_embeddings")
                .and_then(Value::as_bool)
                .unwrap_or(spec.ties_embeddings_by_default),
            attention_bias: v
                .get("attention_bias")
                .and_then(Value::as_bool)
                .unwrap_or(false),
            mlp_bias: v.get("mlp_bias").and_then(Value::as_bool).unwrap_or(false),
            bos_token_id: opt_i64(v, "bos_token_id"),
            eos_token_ids,
            pad_token_id: opt_i64(v, "pad_token_id"),
            dtype: v
                .get("torch_dtype")
                .or_else(|| v.get("dtype"))
                .and_then(Value::as_str)
                .map(str::to_string),
            spec,
        })
    }

    /// Output features of the query projection and of the key (= value) projection.
    pub fn q_kv_dims(&self) -> (i64, i64) {
        (
            self.num_attention_heads * self.head_dim,
            self.num_key_value_heads * self.head_dim,
        )
    }

    /// Parameters of the linear projections of one layer (what QLoRA quantizes).
    pub fn linear_parameters_per_layer(&self) -> i64 {
        let h = self.hidden_size;
        let (q, kv) = self.q_kv_dims();
        h * q + 2 * h * kv + q * h + 3 * h * self.intermediate_size
    }

    /// Number of parameters of the base model (embeddings counted once when tied).
    pub fn num_parameters(&self) -> i64 {
        let h = self.hidden_size;
        let (q, kv) = self.q_kv_dims();
        let s = &self.spec;
        let norms = if s.sandwich_norms { 4 } else { 2 } * h;
        let qk_norms = if s.qk_norm { 2 * self.head_dim } else { 0 };
        let attn_bias = if s.qkv_bias || self.attention_bias {
            q + 2 * kv
        } else {
            0
        } + if self.attention_bias { h } else { 0 };
        let mlp_bias = if self.mlp_bias {
            2 * self.intermediate_size + h
        } else {
            0
        };
        let per_layer =
            self.linear_parameters_per_layer() + norms + qk_norms + attn_bias + mlp_bias;
        let emb = self.vocab_size * h;
        emb + if self.tie_word_embeddings { 0 } else { emb }
            + self.num_hidden_layers * per_layer
            + h
    }
}

/// The architecture name and family of a config: `architectures[0]`, else `model_type`.
fn architecture_of(v: &Value) -> Result<(String, ModelFamily), TrainerError> {
    let declared = v
        .get("architectures")
        .and_then(|a| a.as_array())
        .and_then(|a| a.first())
        .and_then(|a| a.as_str());
    let model_type = v.get("model_type").and_then(|m| m.as_str());
    let family = match declared {
        Some(a) => family_of_architecture(a),
        None => model_type.and_then(family_of_model_type),
    };
    match family {
        Some(f) => Ok((f.architecture().to_string(), f)),
        None => Err(TrainerError::UnsupportedArch {
            architecture: declared.or(model_type).unwrap_or("unknown").to_string(),
        }),
    }
}

fn parse_scaling(s: &Value) -> Result<RopeScaling, TrainerError> {
    let kind = s
        .get("rope_type")
        .or_else(|| s.get("type"))
        .and_then(Value::as_str)
        .unwrap_or("default");
    let f = |k: &str| s.get(k).and_then(Value::as_f64);
    match kind {
        "default" => Ok(RopeScaling::None),
        "linear" => Ok(RopeScaling::Linear {
            factor: f("factor").unwrap_or(1.0),
        }),
        "llama3" => Ok(RopeScaling::Llama3 {
            factor: f("factor").ok_or_else(|| bad("llama3 rope scaling needs 'factor'"))?,
            low_freq_factor: f("low_freq_factor").unwrap_or(1.0),
            high_freq_factor: f("high_freq_factor").unwrap_or(4.0),
            original_max_position_embeddings: f("original_max_position_embeddings").ok_or_else(
                || bad("llama3 rope scaling needs 'original_max_position_embeddings'"),
            )?,
        }),
        other => Err(TrainerError::UnsupportedArch {
            architecture: format!("rope_type '{other}'"),
        }),
    }
}

fn req_i64(v: &Value, key: &str) -> Result<i64, TrainerError> {
    opt_i64(v, key).ok_or_else(|| bad(format!("config.json lacks the integer '{key}'")))
}
