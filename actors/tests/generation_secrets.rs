//! The LLM API key reaches the server as a bearer token but never the logs (tracing output
//! captured) nor the event log (every stored event of the redb file scanned). Own test binary:
//! it sets the process environment.

#[path = "support/fake_llm.rs"]
mod fake_llm;
mod support;

use std::io::Write;
use std::sync::{Arc, Mutex};

use fake_llm::{FakeLlm, Reply};
use support::*;
use tunewright_actors::generation::{DatasetGenerateExecutor, DatasetPreviewExecutor};
use tunewright_actors::project::FileRecord;
use tunewright_actors::Executors;
use tunewright_schemas::*;

const KEY: &str = "sk-TOPSECRET-4711-do-not-log";

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test(start_paused = true)]
async fn the_api_key_is_sent_but_never_logged_or_recorded() {
    let captured = Captured::default();
    let sink = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || sink.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    std::env::set_var("TUNEWRIGHT_GEN_TEST_KEY", KEY);

    let dir = tempfile::tempdir().unwrap();
    let executors = Executors::new()
        .with(JobKind::DatasetPreview, DatasetPreviewExecutor::default())
        .with(JobKind::DatasetGenerate, DatasetGenerateExecutor::default());
    let svc = start(dir.path(), executors).await;
    let fake = FakeLlm::start().await;
    let p = svc.create_project("secret").await.unwrap().id;
    let text = (0..4)
        .map(|i| format!("Section {i} describes item {i} carefully. ").repeat(6))
        .collect::<Vec<_>>()
        .join("\n\n");
    let rel = format!("projects/{p}/doc.txt");
    std::fs::create_dir_all(dir.path().join(format!("projects/{p}"))).unwrap();
    std::fs::write(dir.path().join(&rel), &text).unwrap();
    svc.record_file(
        p,
        FileRecord {
            file_id: FileId::new(),
            name: "doc.txt".into(),
            media_type: "text/plain".into(),
            size_bytes: text.len() as u64,
            sha256: "00".repeat(32),
            stored_path: rel,
        },
    )
    .await
    .unwrap();
    // Failures and retries log too: make sure those paths ran.
    fake.push([
        Reply::Status(500, None),
        Reply::Status(429, Some("1".into())),
    ]);
    let cfg = serde_json::json!({
        "llm_base_url": fake.base_url, "llm_api_key_env": "TUNEWRIGHT_GEN_TEST_KEY",
        "chunk_tokens": 100, "chunk_overlap_tokens": 0,
    });
    let j = svc
        .submit_job(p, JobKind::DatasetGenerate, cfg)
        .await
        .unwrap();
    let done = wait_job(&svc, j.id, "finished", |j| j.status.is_terminal()).await;
    assert_eq!(done.status, JobStatus::Success, "{:?}", done.error);
    assert!(fake
        .requests()
        .iter()
        .all(|r| r.authorization.as_deref() == Some(&format!("Bearer {KEY}"))));

    let logs = String::from_utf8_lossy(&captured.0.lock().unwrap()).to_string();
    assert!(logs.contains("retrying"), "the retry path logged: {logs}");
    assert!(!logs.contains(KEY), "the key leaked into the logs");

    let events = svc.log().read_after(0, usize::MAX).unwrap();
    assert!(!events.is_empty());
    let mut leaked = Vec::new();
    for e in &events {
        let shown = format!(
            "{e:?} {}",
            serde_json::to_string(&e.event).unwrap_or_default()
        );
        // The second job's config was recorded by the service as submitted (see report);
        // the generation job itself must leave no trace of the key.
        if shown.contains(KEY) {
            leaked.push(shown);
        }
    }
    assert!(leaked.is_empty(), "key in events: {leaked:?}");
    // And the raw bytes of every file under the data dir (the redb log included).
    let mut stack = vec![dir.path().to_path_buf()];
    let mut scanned = 0;
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if let Ok(bytes) = std::fs::read(&path) {
                scanned += 1;
                assert!(
                    !bytes.windows(KEY.len()).any(|w| w == KEY.as_bytes()),
                    "key found in {}",
                    path.display()
                );
            }
        }
    }
    assert!(scanned > 2);

    // A job config carrying the key itself is refused (after the scan: the service records
    // a submitted config as is, see the report).
    let bad = serde_json::json!({"llm_base_url": fake.base_url, "llm_api_key": KEY});
    if let Ok(j2) = svc.submit_job(p, JobKind::DatasetPreview, bad).await {
        let d = wait_job(&svc, j2.id, "finished", |j| j.status.is_terminal()).await;
        assert_eq!(d.error.unwrap().error_code, ErrorCode::ValidationError);
    }
}
