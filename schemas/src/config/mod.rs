//! Job configurations as users write them (Hugging Face names where they exist).

pub mod generation;
pub mod train;

pub use generation::GenerationConfig;
pub use train::{ComputeDtype, LrSchedulerType, QuantType4bit, TrainConfig, TrainDevice};
