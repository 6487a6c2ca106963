//! Documents to chunks for dataset generation, PDFs in particular: a real PDF (written here
//! with lopdf, text in a standard Type1 font) has its text in the chunks and in the prompts
//! sent to the (fake) LLM; a corrupt PDF or one without a text layer is skipped with a reason,
//! and a project with nothing else is `DATASET_NO_CHUNKS`, never a panic.

#[path = "support/fake_llm.rs"]
mod fake_llm;
mod support;

use fake_llm::FakeLlm;
use lopdf::content::{Content, Operation};
use lopdf::{dictionary, Document, Object, Stream};
use support::*;
use tunewright_actors::generation::documents::pdf_text;
use tunewright_actors::generation::source::chunks_of;
use tunewright_actors::generation::{DatasetGenerateExecutor, DatasetPreviewExecutor};
use tunewright_actors::project::FileRecord;
use tunewright_actors::{Executors, Service};
use tunewright_events::projection::JobView;
use tunewright_schemas::config::GenerationConfig;
use tunewright_schemas::*;

const PAGES: [&[&str]; 2] = [
    &[
        "Quokkas live on Rottnest Island near Perth.",
        "They are small marsupials about the size of a cat.",
    ],
    &[
        "The island ferry leaves Fremantle every morning.",
        "Visitors must not feed the quokkas bread.",
    ],
];

/// A PDF with one page per entry of `pages`, each line of text drawn with Helvetica.
fn pdf(pages: &[&[&str]]) -> Vec<u8> {
    let mut doc = Document::with_version("1.5");
    let pages_id = doc.new_object_id();
    let font_id = doc.add_object(dictionary! {
        "Type" => "Font",
        "Subtype" => "Type1",
        "BaseFont" => "Helvetica",
    });
    let resources_id = doc.add_object(dictionary! {
        "Font" => dictionary! { "F1" => font_id },
    });
    let mut kids = Vec::new();
    for lines in pages {
        let mut ops = vec![
            Operation::new("BT", vec![]),
            Operation::new("Tf", vec!["F1".into(), 12.into()]),
            Operation::new("TL", vec![16.into()]),
            Operation::new("Td", vec![72.into(), 760.into()]),
        ];
        for line in lines.iter() {
            ops.push(Operation::new("Tj", vec![Object::string_literal(*line)]));
            ops.push(Operation::new("T*", vec![]));
        }
        ops.push(Operation::new("ET", vec![]));
        let content = Content { operations: ops };
        let content_id = doc.add_object(Stream::new(dictionary! {}, content.encode().unwrap()));
        let page_id = doc.add_object(dictionary! {
            "Type" => "Page",
            "Parent" => pages_id,
            "Contents" => content_id,
        });
        kids.push(Object::from(page_id));
    }
    let count = kids.len() as i64;
    doc.objects.insert(
        pages_id,
        Object::Dictionary(dictionary! {
            "Type" => "Pages",
            "Kids" => kids,
            "Count" => count,
            "Resources" => resources_id,
            "MediaBox" => vec![0.into(), 0.into(), 595.into(), 842.into()],
        }),
    );
    let catalog_id = doc.add_object(dictionary! {
        "Type" => "Catalog",
        "Pages" => pages_id,
    });
    doc.trailer.set("Root", catalog_id);
    let mut out = Vec::new();
    doc.save_to(&mut out).unwrap();
    out
}

fn executors() -> Executors {
    Executors::new()
        .with(JobKind::DatasetPreview, DatasetPreviewExecutor::default())
        .with(JobKind::DatasetGenerate, DatasetGenerateExecutor::default())
}

/// Store `bytes` as a project document called `name`.
/// Submit a `kind` job against the fake LLM and wait for its end.
async fn run_job(svc: &Service, p: ProjectId, kind: JobKind, fake: &FakeLlm) -> JobView {
    let j = svc
        .submit_job(
            p,
            kind,
            serde_json::json!({"llm_base_url": fake.base_url, "llm_model": "m"}),
        )
        .await
        .unwrap();
    wait_job(svc, j.id, "finished", |j| j.status.is_terminal()).await
}

async fn add_doc(
    svc: &Service,
    dir: &std::path::Path,
    p: ProjectId,
    name: &str,
    media: &str,
    bytes: &[u8],
) {
    let rel = format!("projects/{p}/files/{name}");
    std::fs::create_dir_all(dir.join(format!("projects/{p}/files"))).unwrap();
    std::fs::write(dir.join(&rel), bytes).unwrap();
    svc.record_file(
        p,
        FileRecord {
            file_id: FileId::new(),
            name: name.into(),
            media_type: media.into(),
            size_bytes: bytes.len() as u64,
            sha256: "00".repeat(32),
            stored_path: rel,
        },
    )
    .await
    .unwrap();
}

fn squash(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn corrupt_pdf() -> Vec<u8> {
    let mut bytes = pdf(&PAGES);
    // Keep the header, wreck the body and cut the cross-reference table off.
    let n = bytes.len();
    for b in bytes[20..n / 2].iter_mut() {
        *b = b'#';
    }
    bytes.truncate(n * 3 / 4);
    bytes
}

#[test]
fn pdf_text_extracts_every_line() {
    let text = squash(&pdf_text(&pdf(&PAGES)).unwrap());
    for line in PAGES.iter().flat_map(|p| p.iter()) {
        assert!(text.contains(line), "{line:?} not in {text:?}");
    }
}

#[test]
fn damaged_pdfs_are_errors_never_panics() {
    let good = pdf(&PAGES);
    assert!(pdf_text(&corrupt_pdf()).unwrap_err().contains("PDF"));
    // Truncations and byte flips all over a real PDF: each is text or an error.
    for cut in (8..good.len()).step_by(good.len() / 40 + 1) {
        let _ = pdf_text(&good[..cut]);
    }
    for at in (0..good.len()).step_by(good.len() / 60 + 1) {
        let mut b = good.clone();
        b[at] ^= 0x5a;
        let _ = pdf_text(&b);
    }
    let blank = pdf(&[&[]]);
    assert!(pdf_text(&blank).unwrap_err().contains("no text"));
}

#[tokio::test]
async fn a_pdf_document_is_chunked_with_its_text() {
    let dir = tempfile::tempdir().unwrap();
    let svc = start(dir.path(), executors()).await;
    let p = svc.create_project("pdf").await.unwrap().id;
    add_doc(
        &svc,
        dir.path(),
        p,
        "quokka.pdf",
        "application/pdf",
        &pdf(&PAGES),
    )
    .await;
    let project = svc.read(|s| s.projects.get(&p).cloned()).unwrap();
    let cfg = GenerationConfig {
        chunk_tokens: 24,
        chunk_overlap_tokens: 0,
        ..GenerationConfig::default()
    };
    let (chunks, skipped) = chunks_of(
        &tunewright_schemas::DataLayout::new(dir.path()),
        &project,
        &cfg,
    )
    .unwrap();
    assert!(skipped.is_empty(), "{skipped:?}");
    assert!(chunks.len() >= 2, "{chunks:?}");
    assert!(chunks.iter().all(|c| c.document == "quokka.pdf"));
    let all = squash(
        &chunks
            .iter()
            .map(|c| c.text.as_str())
            .collect::<Vec<_>>()
            .join(" "),
    );
    for line in PAGES.iter().flat_map(|p| p.iter()) {
        assert!(all.contains(line), "{line:?} not in the chunks {chunks:?}");
    }
}

#[tokio::test]
async fn a_pdf_reaches_the_llm_through_a_preview() {
    let dir = tempfile::tempdir().unwrap();
    let svc = start(dir.path(), executors()).await;
    let fake = FakeLlm::start().await;
    let p = svc.create_project("pdf").await.unwrap().id;
    add_doc(
        &svc,
        dir.path(),
        p,
        "quokka.pdf",
        "application/pdf",
        &pdf(&PAGES),
    )
    .await;
    let done = run_job(&svc, p, JobKind::DatasetPreview, &fake).await;
    assert_eq!(done.status, JobStatus::Success, "{:?}", done.error);
    let prompt = squash(&fake.requests()[0].user);
    assert!(
        prompt.contains("Quokkas live on Rottnest Island near Perth."),
        "{prompt}"
    );
    assert!(
        prompt.contains("Visitors must not feed the quokkas bread."),
        "{prompt}"
    );
}

#[tokio::test]
async fn a_corrupt_pdf_is_no_chunks_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let svc = start(dir.path(), executors()).await;
    let fake = FakeLlm::start().await;
    let p = svc.create_project("pdf").await.unwrap().id;
    add_doc(
        &svc,
        dir.path(),
        p,
        "broken.pdf",
        "application/pdf",
        &corrupt_pdf(),
    )
    .await;
    add_doc(
        &svc,
        dir.path(),
        p,
        "scan.pdf",
        "application/pdf",
        &pdf(&[&[]]),
    )
    .await;
    let done = run_job(&svc, p, JobKind::DatasetGenerate, &fake).await;
    assert_eq!(done.status, JobStatus::Failed);
    let err = done.error.unwrap();
    assert_eq!(err.error_code, ErrorCode::DatasetNoChunks, "{err:?}");
    let causes = err.cause_chain.join("\n");
    assert!(
        causes.contains("broken.pdf: cannot parse the PDF"),
        "{causes}"
    );
    assert!(
        causes.contains("scan.pdf: the PDF has no text layer"),
        "{causes}"
    );
    assert_eq!(fake.count(), 0);
    assert_replay_matches(&svc);
}
