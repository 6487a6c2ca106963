//! Checks on the name a user gives an uploaded file (`FILE_INVALID_NAME`): no traversal, no
//! separators, not absolute, no control characters, no reserved device names, bounded length.
//! The file is stored under a generated id whatever its name; the name is kept for display.

use tunewright_schemas::{ctx, ErrorCode, Failure};

const MAX_NAME_BYTES: usize = 255;

const RESERVED: &[&str] = &[
    "CON", "PRN", "AUX", "NUL", "COM1", "COM2", "COM3", "COM4", "COM5", "COM6", "COM7", "COM8",
    "COM9", "LPT1", "LPT2", "LPT3", "LPT4", "LPT5", "LPT6", "LPT7", "LPT8", "LPT9",
];

fn invalid(name: &str, reason: &str) -> Failure {
    let shown: String = name
        .chars()
        .take(120)
        .map(|c| if c.is_control() { '\u{FFFD}' } else { c })
        .collect();
    Failure::new(
        ErrorCode::FileInvalidName,
        ctx! {"filename" => shown, "reason" => reason},
    )
}

/// The name, accepted as given, or why not.
pub fn check_file_name(name: &str) -> Result<&str, Failure> {
    if name.is_empty() {
        return Err(invalid(name, "the name is empty"));
    }
    if name.len() > MAX_NAME_BYTES {
        return Err(invalid(name, "the name is longer than 255 bytes"));
    }
    if name.chars().any(|c| c.is_control()) {
        return Err(invalid(name, "the name contains control characters"));
    }
    if name.contains('/') || name.contains('\\') {
        return Err(invalid(name, "the name contains a path separator"));
    }
    if name == "." || name == ".." || name.contains("..") {
        return Err(invalid(
            name,
            "the name refers to a parent or current directory",
        ));
    }
    let bytes = name.as_bytes();
    if bytes.len() >= 2 && bytes[1] == b':' && bytes[0].is_ascii_alphabetic() {
        return Err(invalid(name, "the name is an absolute path"));
    }
    if name.contains(':') {
        return Err(invalid(name, "the name contains ':'"));
    }
    if name.starts_with(' ') || name.ends_with(' ') || name.ends_with('.') {
        return Err(invalid(
            name,
            "the name starts or ends with a space, or ends with a dot",
        ));
    }
    let stem = name.split('.').next().unwrap_or(name).trim_end();
    if RESERVED.iter().any(|r| r.eq_ignore_ascii_case(stem)) {
        return Err(invalid(name, "the name is a reserved device name"));
    }
    Ok(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordinary_names_pass() {
        for n in [
            "report.pdf",
            "notes.md",
            "data set (v2).jsonl",
            "été.txt",
            ".hidden.csv",
        ] {
            assert!(check_file_name(n).is_ok(), "{n}");
        }
    }

    #[test]
    fn dangerous_names_fail() {
        for n in [
            "",
            "../etc/passwd",
            "..",
            ".",
            "a/b.txt",
            "a\\b.txt",
            "/etc/passwd",
            "C:evil.txt",
            "c:\\x.txt",
            "nul.txt",
            "CON",
            "Com1.md",
            "bad\u{0}.txt",
            "line\nbreak.txt",
            "trailing.",
            " lead.txt",
            "x..txt",
        ] {
            let e = check_file_name(n).unwrap_err();
            assert_eq!(e.error_code, ErrorCode::FileInvalidName, "{n:?}");
        }
        assert!(check_file_name(&"a".repeat(256)).is_err());
    }
}
