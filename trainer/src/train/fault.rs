//! Allocator fault injection, for tests of the OOM path on machines that never run out of
//! memory (CI has no GPU, and the tiny test model needs a few MB).
//!
//! With `TUNEWRIGHT_FAULT_OOM_AT_STEP=N` in the worker's environment, the forward pass of
//! optimizer step `N` of a run that did not resume from a checkpoint first asks libtorch for a
//! tensor no machine can hold (2^58 bytes, beyond any x86-64 or arm64 address space) on the
//! run's device. Nothing is faked past that point: libtorch's allocator refuses with its own
//! message ("DefaultCPUAllocator: not enough memory: you tried to allocate ..." on the CPU,
//! "CUDA out of memory. Tried to allocate ..." on a GPU), and the error takes the path of any
//! torch error in the forward pass (`TrainerError::torch`, whose classification makes it
//! `TRAINING_OOM`). A resumed run does not hit the fault again, like a transient OOM.

use tch::{Device, Kind, Tensor};

/// The environment variable naming the step whose forward pass fails to allocate.
pub const OOM_AT_STEP_ENV: &str = "TUNEWRIGHT_FAULT_OOM_AT_STEP";

/// Bytes asked for: more than any machine's address space.
pub const IMPOSSIBLE_BYTES: i64 = 1 << 58;

/// The optimizer step whose forward pass gets the injected allocation failure, if any.
pub fn oom_at_step() -> Option<u64> {
    std::env::var(OOM_AT_STEP_ENV).ok()?.trim().parse().ok()
}

/// Ask libtorch for `IMPOSSIBLE_BYTES` on `device`; its allocator's error when it refuses.
pub fn allocate_impossible(device: Device) -> Result<(), tch::TchError> {
    Tensor::f_empty([IMPOSSIBLE_BYTES], (Kind::Uint8, device)).map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::TrainerError;
    use tunewright_schemas::ErrorCode;

    #[test]
    fn the_impossible_allocation_is_refused_by_libtorch_and_classified_as_oom() {
        let err = allocate_impossible(Device::Cpu).expect_err("no machine has 256 PiB");
        let text = err.to_string();
        assert!(crate::error::is_oom_message(&text), "{text}");
        let e = TrainerError::torch("forward", err);
        assert_eq!(e.code(), ErrorCode::TrainingOom, "{e}");
    }
}
