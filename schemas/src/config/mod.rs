//! Job configurations as users write them (Hugging Face names where they exist).

pub mod train;

pub use train::{LrSchedulerType, TrainConfig, TrainDevice};
