//! Checks on the name a user gives an uploaded file (`FILE_INVALID_NAME`): no traversal, no
//! separators, not absolute, no control characters, no invisible formatting characters (zero-width
//! spaces and joiners, byte-order marks, bidirectional overrides: they make two names look
//! alike, or a name look like another), no reserved device names, bounded length.
//! The file is stored under a generated id whatever its name; the name is kept for display.

use tunewright_schemas::{ctx, ErrorCode, Failure};

const MAX_NAME_BYTES: usize = 255;

const RESERVED: &[&str] = &[
    "CON", "PRN", "AUX", "NUL", "COM1", "COM2", "COM3", "COM4", "COM5", "COM6", "COM7", "COM8",
    "COM9", "LPT1", "LPT2", "LPT3", "LPT4", "LPT5", "LPT6", "LPT7", "LPT8", "LPT9",
];

/// Characters that change how a name looks without being seen: Unicode's format characters
/// (general category Cf) that can appear in a file name.
fn is_invisible(c: char) -> bool {
    matches!(
        c as u32,
        0x00AD
            | 0x034F
            | 0x061C
            | 0x115F..=0x1160
            | 0x17B4..=0x17B5
            | 0x180B..=0x180E
            | 0x200B..=0x200F
            | 0x202A..=0x202E
            | 0x2060..=0x206F
            | 0x3164
            | 0xFE00..=0xFE0F
            | 0xFEFF
            | 0xFFA0
            | 0xFFF0..=0xFFFB
            | 0xE0000..=0xE0FFF
    )
}

fn invalid(name: &str, reason: &str) -> Failure {
    let shown: String = name
        .chars()
        .take(120)
        .map(|c| {
            if c.is_control() || is_invisible(c) {
                '\u{FFFD}'
            } else {
                c
            }
        })
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
    if let Some(c) = name.chars().find(|c| is_invisible(*c)) {
        return Err(invalid(
            name,
            &format!(
                "the name contains the invisible character U+{:04X} (zero-width, byte-order mark or direction override)",
                c as u32
            ),
        ));
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
