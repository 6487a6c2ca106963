//! The failure's text for `tunewright analyze`: from `--error`, or from `--error-file` (a path,
//! or `-` for standard input), never larger than `MAX_BYTES`.

use std::io::Read;
use std::path::Path;

/// The most text read: a traceback and the log lines around it fit many times over, and the
/// rules read the whole text, so a multi-gigabyte log is refused rather than read.
pub const MAX_BYTES: usize = 1024 * 1024;

/// The text, or a message saying what is wrong with where it comes from. Clap already makes
/// exactly one of the two present; bytes that are not UTF-8 are replaced, as a log may hold
/// some.
pub fn read(error: Option<&str>, file: Option<&Path>) -> Result<String, String> {
    match (error, file) {
        (Some(text), None) => within_limit("--error", text.len()).map(|_| text.to_string()),
        (None, Some(path)) if path == Path::new("-") => {
            from_reader("--error-file - (standard input)", std::io::stdin().lock())
        }
        (None, Some(path)) => {
            let what = format!("--error-file {}", path.display());
            let f = std::fs::File::open(path).map_err(|e| format!("{what}: {e}"))?;
            from_reader(&what, f)
        }
        _ => Err("give the failure with exactly one of --error and --error-file".into()),
    }
}

/// At most one byte past the limit is read: enough to know the text is too large.
fn from_reader(what: &str, r: impl Read) -> Result<String, String> {
    let mut bytes = Vec::new();
    r.take(MAX_BYTES as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("{what}: {e}"))?;
    within_limit(what, bytes.len())?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

fn within_limit(what: &str, len: usize) -> Result<(), String> {
    if len > MAX_BYTES {
        return Err(format!(
            "{what}: the failure text is over the limit of {MAX_BYTES} bytes (1 MiB); pass the \
             end of the log, e.g. `tail -c 100000 LOG | tunewright analyze --error-file -`"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn texts_up_to_the_limit_are_read_and_larger_ones_refused() {
        let at = "x".repeat(MAX_BYTES);
        assert_eq!(from_reader("t", at.as_bytes()).unwrap().len(), MAX_BYTES);
        let over = "x".repeat(MAX_BYTES + 10);
        let e = from_reader("t", over.as_bytes()).unwrap_err();
        assert!(e.contains("over the limit"), "{e}");
        assert!(read(Some(&over), None).unwrap_err().starts_with("--error:"));
    }

    #[test]
    fn bytes_that_are_not_utf8_are_replaced() {
        let t = from_reader("t", &b"CUDA out of memory \xff\xfe"[..]).unwrap();
        assert!(t.starts_with("CUDA out of memory"));
    }
}
