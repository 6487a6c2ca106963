//! Uploads streamed to disk, never whole in memory: documents (`files`) and datasets. Each
//! chunk is size-checked (`FILE_TOO_LARGE`, `FILE_TOTAL_LIMIT` detected while streaming),
//! type-checked (`kind`) and written to a `.part` file (`store`) that becomes the stored file
//! only when complete and fsynced.

pub mod kind;
pub mod name;
pub mod store;

use axum::body::Bytes;
use futures::{Stream, StreamExt};
use tunewright_schemas::{ctx, ErrorCode, Failure};

use store::PartFile;

/// How much of a refused body is still read (and discarded) so that the client, which is
/// still sending, receives the answer instead of a reset connection.
pub const DRAIN_CAP_BYTES: u64 = 16 * 1024 * 1024;

/// Largest non-file multipart field accepted.
pub const MAX_FIELD_BYTES: u64 = 64 * 1024;

pub fn mb(bytes: u64) -> f64 {
    (bytes as f64 / 1_048_576.0 * 10.0).round() / 10.0
}

/// A body that broke off or was malformed.
pub fn body_failure(e: impl std::fmt::Display) -> Failure {
    Failure::new(
        ErrorCode::ValidationError,
        ctx! {"reason" => format!("the request body could not be read: {e}")},
    )
}

/// Size limits of one upload.
#[derive(Debug, Clone, Copy)]
pub struct SizeLimits {
    pub max_file_bytes: u64,
    /// `(bytes the project already holds, most it may hold)`, for documents.
    pub project_total: Option<(u64, u64)>,
}

impl SizeLimits {
    fn check(&self, name: &str, len: u64) -> Result<(), Failure> {
        if len > self.max_file_bytes {
            return Err(Failure::new(
                ErrorCode::FileTooLarge,
                ctx! {
                    "filename" => name.chars().take(120).collect::<String>(),
                    "max_size_mb" => mb(self.max_file_bytes),
                    "max_size_bytes" => self.max_file_bytes,
                    "received_bytes_at_least" => len,
                },
            ));
        }
        if let Some((held, max)) = self.project_total {
            if held + len > max {
                return Err(Failure::new(
                    ErrorCode::FileTotalLimit,
                    ctx! {"total_mb" => mb(held + len), "max_total_mb" => mb(max), "filename" => name.chars().take(120).collect::<String>()},
                ));
            }
        }
        Ok(())
    }
}

/// Stream `body` into `part`, checking size and content chunk by chunk.
pub async fn pump<S, E>(
    body: &mut S,
    part: &mut PartFile,
    name: &str,
    limits: SizeLimits,
    mut check: impl FnMut(&[u8]) -> Result<(), Failure>,
) -> Result<(), Failure>
where
    S: Stream<Item = Result<Bytes, E>> + Unpin,
    E: std::fmt::Display,
{
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(body_failure)?;
        limits.check(name, part.len() + chunk.len() as u64)?;
        check(&chunk)?;
        part.write(&chunk).await?;
    }
    Ok(())
}

/// Read and discard up to `cap` more bytes of `body`; how many, when it ended within the cap.
pub async fn drain<S, E>(body: &mut S, cap: u64) -> Option<u64>
where
    S: Stream<Item = Result<Bytes, E>> + Unpin,
{
    let mut seen = 0u64;
    while let Some(chunk) = body.next().await {
        match chunk {
            Ok(c) => {
                seen += c.len() as u64;
                if seen > cap {
                    return None;
                }
            }
            Err(_) => return None,
        }
    }
    Some(seen)
}

/// A `FILE_TOO_LARGE` whose body was read to its end (`rest`: the bytes after the refusal):
/// its actual size goes in the context and the message. Other failures pass unchanged.
pub fn with_actual_size(f: Failure, rest: Option<u64>) -> Failure {
    if f.error_code != ErrorCode::FileTooLarge {
        return f;
    }
    let seen = f
        .context
        .0
        .get("received_bytes_at_least")
        .and_then(|v| v.as_u64());
    let (Some(seen), Some(rest)) = (seen, rest) else {
        return f;
    };
    let actual = seen + rest;
    let mut f = f
        .with_field("actual_size_bytes", serde_json::json!(actual))
        .with_field("actual_size_mb", serde_json::json!(mb(actual)));
    f.detail = format!(
        "{} (actual: {} MB)",
        f.detail,
        serde_json::json!(mb(actual))
    );
    f
}
