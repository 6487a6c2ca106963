//! Text extraction from a project's stored documents: plain text, markdown, JSON, CSV (as
//! text) and PDF (detected, skipped with a reason until a PDF text crate is linked). Unusable documents are skipped with a reason.

use std::path::{Path, PathBuf};

use tunewright_events::projection::FileView;

/// A document's text, or why it was skipped.
pub enum Extracted {
    Text(String),
    Skipped(String),
}

/// Where a stored file is on disk (stored paths are relative to the data dir).
pub fn resolve(data_dir: &Path, stored: &str) -> PathBuf {
    let p = Path::new(stored);
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        data_dir.join(p)
    }
}

fn is_pdf(file: &FileView, bytes: &[u8]) -> bool {
    file.media_type == "application/pdf"
        || file.name.to_ascii_lowercase().ends_with(".pdf")
        || bytes.starts_with(b"%PDF-")
}

/// The text of one document.
pub fn extract(data_dir: &Path, file: &FileView) -> Extracted {
    let path = resolve(data_dir, &file.stored_path);
    let bytes = match std::fs::read(&path) {
        Ok(b) => b,
        Err(e) => return Extracted::Skipped(format!("cannot read {}: {e}", file.name)),
    };
    if is_pdf(file, &bytes) {
        // No PDF text extractor is linked yet (see the module report); say so plainly.
        return Extracted::Skipped(format!(
            "{}: PDF text extraction is not supported yet",
            file.name
        ));
    }
    match String::from_utf8(bytes) {
        Ok(t) if !t.trim().is_empty() => Extracted::Text(t.replace("\r\n", "\n")),
        Ok(_) => Extracted::Skipped(format!("{} is empty", file.name)),
        Err(_) => Extracted::Skipped(format!("{} is neither UTF-8 text nor PDF", file.name)),
    }
}
