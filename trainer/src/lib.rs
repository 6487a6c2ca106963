//! tunewright-trainer: LoRA fine-tuning on libtorch.
//!
//! Loads Llama-family Hugging Face checkpoints, tokenizes SFT datasets, runs the training loop
//! and writes checkpoints and PEFT adapters. Only the worker process links this crate's code
//! paths that touch the device; the service talks to it through the worker protocol.

pub mod device;
pub mod error;
pub mod evaluate;
pub mod export;
pub mod generate;
pub mod model;
pub mod space;
pub mod train;

pub use error::TrainerError;
