//! The type of an uploaded document, from its name and its content (`FILE_UNSUPPORTED_TYPE`).
//! Accepted: plain text, markdown, PDF, JSON, JSONL and CSV. A PDF must start with `%PDF-`; the
//! text kinds must be UTF-8 without NUL bytes throughout (checked as the bytes stream in), and
//! JSON/JSONL must open with `{` or `[`.

use tunewright_schemas::{ctx, ErrorCode, Failure};

/// What the name says the file is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DocKind {
    Text,
    Markdown,
    Pdf,
    Json,
    Jsonl,
    Csv,
}

impl DocKind {
    pub fn media_type(self) -> &'static str {
        match self {
            DocKind::Text => "text/plain",
            DocKind::Markdown => "text/markdown",
            DocKind::Pdf => "application/pdf",
            DocKind::Json => "application/json",
            DocKind::Jsonl => "application/jsonl",
            DocKind::Csv => "text/csv",
        }
    }

    fn is_text(self) -> bool {
        self != DocKind::Pdf
    }
}

pub fn unsupported(name: &str, detected: &str) -> Failure {
    Failure::new(
        ErrorCode::FileUnsupportedType,
        ctx! {"filename" => name.chars().take(120).collect::<String>(), "detected" => detected},
    )
}

/// The kind the file's extension names.
pub fn kind_from_name(name: &str) -> Result<DocKind, Failure> {
    let ext = name.rsplit_once('.').map(|(_, e)| e.to_ascii_lowercase());
    match ext.as_deref() {
        Some("txt" | "text") => Ok(DocKind::Text),
        Some("md" | "markdown") => Ok(DocKind::Markdown),
        Some("pdf") => Ok(DocKind::Pdf),
        Some("json") => Ok(DocKind::Json),
        Some("jsonl" | "ndjson") => Ok(DocKind::Jsonl),
        Some("csv") => Ok(DocKind::Csv),
        Some(other) => Err(unsupported(name, &format!("extension .{other}"))),
        None => Err(unsupported(name, "no extension")),
    }
}

/// A guess at what binary content is, for the error message.
fn sniff_binary(head: &[u8]) -> &'static str {
    const MAGIC: &[(&[u8], &str)] = &[
        (b"%PDF-", "application/pdf"),
        (b"\x89PNG", "image/png"),
        (b"\xFF\xD8\xFF", "image/jpeg"),
        (b"GIF8", "image/gif"),
        (b"PK\x03\x04", "application/zip"),
        (b"\x7FELF", "application/x-executable"),
        (b"\x1F\x8B", "application/gzip"),
        (b"MZ", "application/x-msdownload"),
    ];
    MAGIC
        .iter()
        .find(|(m, _)| head.starts_with(m))
        .map(|(_, t)| *t)
        .unwrap_or("application/octet-stream")
}

/// Checks the content of one upload as it streams in.
pub struct ContentCheck {
    name: String,
    kind: DocKind,
    head_checked: bool,
    /// Bytes of an incomplete UTF-8 sequence carried to the next chunk.
    carry: Vec<u8>,
    /// First non-whitespace byte seen so far (JSON kinds).
    first: Option<u8>,
}

impl ContentCheck {
    pub fn new(name: &str, kind: DocKind) -> Self {
        ContentCheck {
            name: name.into(),
            kind,
            head_checked: false,
            carry: Vec::new(),
            first: None,
        }
    }

    /// Feed the next chunk; an error as soon as the content cannot be of the named kind.
    pub fn feed(&mut self, chunk: &[u8]) -> Result<(), Failure> {
        if chunk.is_empty() {
            return Ok(());
        }
        if !self.head_checked {
            self.head_checked = true;
            let is_pdf = chunk.starts_with(b"%PDF-");
            if self.kind == DocKind::Pdf && !is_pdf {
                return Err(unsupported(&self.name, sniff_binary(chunk)));
            }
            if self.kind.is_text() && is_pdf {
                return Err(unsupported(&self.name, "application/pdf"));
            }
        }
        if !self.kind.is_text() {
            return Ok(());
        }
        if self.first.is_none() {
            self.first = chunk.iter().copied().find(|b| !b.is_ascii_whitespace());
            if let Some(b) = self.first {
                let want_json = matches!(self.kind, DocKind::Json | DocKind::Jsonl);
                if want_json && b != b'{' && b != b'[' {
                    return Err(unsupported(&self.name, "text that is not JSON"));
                }
            }
        }
        if chunk.contains(&0) {
            return Err(unsupported(&self.name, sniff_binary(chunk)));
        }
        let mut buf = std::mem::take(&mut self.carry);
        buf.extend_from_slice(chunk);
        match std::str::from_utf8(&buf) {
            Ok(_) => Ok(()),
            Err(e) if e.error_len().is_none() => {
                // An incomplete sequence at the end: keep it for the next chunk.
                self.carry = buf[e.valid_up_to()..].to_vec();
                Ok(())
            }
            Err(_) => Err(unsupported(&self.name, sniff_binary(&buf))),
        }
    }

    /// The end of the content: the media type, or why it is not acceptable.
    pub fn finish(self) -> Result<&'static str, Failure> {
        if !self.carry.is_empty() {
            return Err(unsupported(&self.name, "text that is not UTF-8"));
        }
        Ok(self.kind.media_type())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(name: &str, chunks: &[&[u8]]) -> Result<&'static str, Failure> {
        let kind = kind_from_name(name)?;
        let mut c = ContentCheck::new(name, kind);
        for ch in chunks {
            c.feed(ch)?;
        }
        c.finish()
    }

    #[test]
    fn accepted_kinds() {
        assert_eq!(check("a.txt", &[b"hello"]).unwrap(), "text/plain");
        assert_eq!(check("a.MD", &[b"# t"]).unwrap(), "text/markdown");
        assert_eq!(
            check("a.pdf", &[b"%PDF-1.7\n\x00\xff"]).unwrap(),
            "application/pdf"
        );
        assert_eq!(
            check("a.json", &[b" {\"a\":1}"]).unwrap(),
            "application/json"
        );
        assert_eq!(check("a.jsonl", &[b"{}\n{}"]).unwrap(), "application/jsonl");
        assert_eq!(check("a.csv", &[b"a,b\n1,2"]).unwrap(), "text/csv");
        // A multi-byte character split across chunks.
        let e = "é".as_bytes();
        assert!(check("a.txt", &[&[b'x', e[0]], &[e[1], b'y']]).is_ok());
    }

    #[test]
    fn refused_kinds() {
        let code = |r: Result<&str, Failure>| r.unwrap_err().error_code;
        assert_eq!(
            code(check("a.exe", &[b"MZ"])),
            ErrorCode::FileUnsupportedType
        );
        assert_eq!(
            code(check("noext", &[b"x"])),
            ErrorCode::FileUnsupportedType
        );
        assert_eq!(
            code(check("a.png", &[b"\x89PNG"])),
            ErrorCode::FileUnsupportedType
        );
        // Content that contradicts the name.
        assert_eq!(
            code(check("a.txt", &[b"\x89PNG\r\n\x1a\n\x00"])),
            ErrorCode::FileUnsupportedType
        );
        assert_eq!(
            code(check("a.pdf", &[b"just text"])),
            ErrorCode::FileUnsupportedType
        );
        assert_eq!(
            code(check("a.txt", &[b"%PDF-1.4"])),
            ErrorCode::FileUnsupportedType
        );
        assert_eq!(
            code(check("a.json", &[b"hello"])),
            ErrorCode::FileUnsupportedType
        );
        assert_eq!(
            code(check("a.txt", &[b"ok", b"\xff\xfe"])),
            ErrorCode::FileUnsupportedType
        );
        assert_eq!(
            code(check("a.txt", &[b"ends mid \xc3"])),
            ErrorCode::FileUnsupportedType
        );
    }
}
