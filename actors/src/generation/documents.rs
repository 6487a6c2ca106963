//! Text extraction from a project's stored documents: plain text, markdown, JSON, CSV (as
//! text) and PDF (text layer through `pdf-extract`). Unusable documents (unreadable, empty,
//! binary, a PDF that cannot be parsed or has no text layer) are skipped with a reason; when
//! no document gives text the job fails with `DATASET_NO_CHUNKS` carrying those reasons.
//!
//! This is blocking work (file reads, PDF parsing): callers run it on the blocking pool
//! (`source::chunks_of_blocking`).

use std::panic::{catch_unwind, AssertUnwindSafe};
use tunewright_events::projection::FileView;
use tunewright_schemas::DataLayout;

/// A document's text, or why it was skipped.
pub enum Extracted {
    Text(String),
    Skipped(String),
}

fn is_pdf(file: &FileView, bytes: &[u8]) -> bool {
    file.media_type == "application/pdf"
        || file.name.to_ascii_lowercase().ends_with(".pdf")
        || bytes.starts_with(b"%PDF-")
}

/// The text of one document.
pub fn extract(layout: &DataLayout, file: &FileView) -> Extracted {
    let path = layout.resolve(&file.stored_path);
    let bytes = match std::fs::read(&path) {
        Ok(b) => b,
        Err(e) => return Extracted::Skipped(format!("cannot read {}: {e}", file.name)),
    };
    if is_pdf(file, &bytes) {
        return match pdf_text(&bytes) {
            Ok(t) => Extracted::Text(t),
            Err(why) => Extracted::Skipped(format!("{}: {why}", file.name)),
        };
    }
    match String::from_utf8(bytes) {
        Ok(t) if !t.trim().is_empty() => Extracted::Text(t.replace("\r\n", "\n")),
        Ok(_) => Extracted::Skipped(format!("{} is empty", file.name)),
        Err(_) => Extracted::Skipped(format!("{} is neither UTF-8 text nor PDF", file.name)),
    }
}

/// The text layer of a PDF, or why there is none. Never panics: PDF parsers can panic on
/// hostile or damaged input, so the parser runs under `catch_unwind`.
pub fn pdf_text(bytes: &[u8]) -> Result<String, String> {
    let parsed = catch_unwind(AssertUnwindSafe(|| {
        pdf_extract::extract_text_from_mem(bytes)
    }));
    let text = match parsed {
        Ok(Ok(t)) => t,
        Ok(Err(e)) => return Err(format!("cannot parse the PDF: {e}")),
        Err(panic) => {
            let msg = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown cause".into());
            return Err(format!("cannot parse the PDF (the parser failed: {msg})"));
        }
    };
    let text = normalize_pdf_text(&text);
    if text.is_empty() {
        return Err(
            "the PDF has no text layer (a scanned PDF needs OCR before upload)".to_string(),
        );
    }
    Ok(text)
}

/// PDF text as paragraphs: CRLF and form feeds become newlines, trailing spaces go, runs of
/// blank lines collapse to one (chunking cuts at blank lines).
fn normalize_pdf_text(raw: &str) -> String {
    let raw = raw.replace("\r\n", "\n").replace(['\r', '\u{c}'], "\n");
    let mut out = String::with_capacity(raw.len());
    let mut blank_run = 0;
    for line in raw.lines().map(str::trim_end) {
        if line.trim().is_empty() {
            blank_run += 1;
            continue;
        }
        if !out.is_empty() {
            out.push_str(if blank_run > 0 { "\n\n" } else { "\n" });
        }
        blank_run = 0;
        out.push_str(line);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn garbage_and_truncated_pdfs_are_errors_not_panics() {
        for bytes in [
            &b""[..],
            b"%PDF-1.4",
            b"%PDF-1.4\n1 0 obj << /Type /Catalog /Pages 2 0 R >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF",
            b"%PDF-1.7\n\xff\xfe\x00\x01 garbage garbage\nxref\n0 1\nstartxref\n9999999\n%%EOF",
            b"not a pdf at all",
        ] {
            assert!(pdf_text(bytes).is_err(), "{:?}", String::from_utf8_lossy(bytes));
        }
    }

    #[test]
    fn pdf_text_is_normalized_into_paragraphs() {
        assert_eq!(
            normalize_pdf_text("\n\nTitle  \r\nline two\n\n\n\u{c}Next para\n\n"),
            "Title\nline two\n\nNext para"
        );
    }
}
