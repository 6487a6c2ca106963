//! The worker process (`tunewright worker train|export|evaluate|probe`): the only place the service's
//! binary touches the torch device. It reads its spec from a file named in argv, writes
//! protocol lines (`tunewright_schemas::worker::WorkerLine`) on stdout and reads stop commands
//! from stdin. A failure is written as a `failure` line before a non-zero exit, so the trainer
//! actor can tell a reported failure from a death.

pub mod control;
pub mod evaluate;
pub mod export;
pub mod out;
pub mod probe;
pub mod train;

use std::path::Path;

use serde::de::DeserializeOwned;
use tunewright_schemas::{ctx, ErrorCode, Failure};

/// Read and parse a spec file; the failure names the file.
pub fn read_spec<T: DeserializeOwned>(path: &Path, code: ErrorCode) -> Result<T, Failure> {
    let bytes = std::fs::read(path).map_err(|e| {
        Failure::new(
            code,
            ctx! {"reason" => format!("cannot read the worker spec {}: {e}", path.display())},
        )
    })?;
    serde_json::from_slice(&bytes).map_err(|e| {
        Failure::new(
            code,
            ctx! {"reason" => format!("the worker spec {} is not valid: {e}", path.display())},
        )
    })
}
