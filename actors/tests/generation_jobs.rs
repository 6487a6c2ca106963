//! `dataset_preview` and `dataset_generate` through the real service (redb log, scheduler)
//! against the fake LLM on 127.0.0.1: repair steps counted, dataset imported, error codes,
//! resume after a restart without redoing finished chunks.

#[path = "support/fake_llm.rs"]
mod fake_llm;
mod support;

use std::time::Duration;

use fake_llm::{FakeLlm, Reply};
use support::*;
use tunewright_actors::generation::{DatasetGenerateExecutor, DatasetPreviewExecutor};
use tunewright_actors::project::FileRecord;
use tunewright_actors::{Executors, Service};
use tunewright_events::Event;
use tunewright_schemas::*;

fn executors() -> Executors {
    Executors::new()
        .with(JobKind::DatasetPreview, DatasetPreviewExecutor::default())
        .with(JobKind::DatasetGenerate, DatasetGenerateExecutor::default())
}

/// A project with one markdown document of `paragraphs` paragraphs (about one chunk each).
async fn project_with_doc(
    svc: &Service,
    dir: &std::path::Path,
    paragraphs: usize,
    body: Option<&[u8]>,
) -> ProjectId {
    let p = svc.create_project("docs").await.unwrap().id;
    let text: String = (0..paragraphs)
        .map(|i| format!("Paragraph {i} explains topic number {i} in some detail. ").repeat(6))
        .collect::<Vec<_>>()
        .join("\n\n");
    let bytes = body
        .map(|b| b.to_vec())
        .unwrap_or_else(|| text.into_bytes());
    let rel = format!("projects/{p}/files/doc.md");
    std::fs::create_dir_all(dir.join(format!("projects/{p}/files"))).unwrap();
    std::fs::write(dir.join(&rel), &bytes).unwrap();
    svc.record_file(
        p,
        FileRecord {
            file_id: FileId::new(),
            name: "doc.md".into(),
            media_type: "text/markdown".into(),
            size_bytes: bytes.len() as u64,
            sha256: "00".repeat(32),
            stored_path: rel,
        },
    )
    .await
    .unwrap();
    p
}

fn gen_config(fake: &FakeLlm) -> serde_json::Value {
    serde_json::json!({"llm_base_url": fake.base_url, "llm_model": "m", "chunk_tokens": 100, "chunk_overlap_tokens": 0})
}

fn steps(svc: &Service, job: JobId) -> Vec<String> {
    job_events(svc, job)
        .into_iter()
        .filter_map(|e| match e {
            Event::GenerationChunkDone(c) => Some(c.repair_step),
            _ => None,
        })
        .collect()
}

fn project(svc: &Service, p: ProjectId) -> tunewright_events::projection::ProjectView {
    svc.read(|s| s.projects.get(&p).cloned()).unwrap()
}

const GOOD: &str = r#"[{"instruction": "What is A?", "output": "A is the first."}, {"instruction": "What is B?", "output": "B is the second."}]"#;

#[tokio::test(start_paused = true)]
async fn generate_repairs_answers_imports_the_dataset_and_counts_steps() {
    let dir = tempfile::tempdir().unwrap();
    let svc = start(dir.path(), executors()).await;
    let fake = FakeLlm::start().await;
    let p = project_with_doc(&svc, dir.path(), 6, None).await;
    fake.push([
        Reply::Content(GOOD.into()),
        Reply::Content(format!(
            "```json\n{}\n```",
            GOOD.replace('A', "C").replace('B', "D")
        )),
        Reply::Content(format!(
            "Here you go:\n{}\nEnjoy!",
            GOOD.replace('A', "E").replace('B', "F")
        )),
        Reply::Content(
            "[{'instruction': 'What is G?', 'output': 'G is seventh.'}, {“instruction”: “What is J?”, “output”: “J is tenth.”},]".into(),
        ),
        Reply::Content("I cannot produce JSON today.".into()),
        Reply::Content(GOOD.replace('A', "H").replace('B', "I")),
        Reply::Content("still nothing".into()),
        Reply::Content("no json in the repair either".into()),
    ]);
    let j = svc
        .submit_job(p, JobKind::DatasetGenerate, gen_config(&fake))
        .await
        .unwrap();
    let done = wait_job(&svc, j.id, "finished", |j| j.status.is_terminal()).await;
    assert_eq!(done.status, JobStatus::Success, "{:?}", done.error);
    let st = steps(&svc, j.id);
    assert_eq!(st.len(), 6, "{st:?}");
    for s in [
        "strict",
        "strip_fences",
        "extract",
        "fix_common",
        "llm_repair",
        "rejected",
    ] {
        assert!(st.contains(&s.to_string()), "{s} missing from {st:?}");
    }
    let note = job_events(&svc, j.id)
        .into_iter()
        .find_map(|e| match e {
            Event::JobNote(n) if n.topic == "json_repair" => Some(n.data.0),
            _ => None,
        })
        .unwrap();
    assert_eq!(note["repair_steps"]["rejected"], 1);
    assert_eq!(note["repair_steps"]["llm_repair"], 1);
    // 6 chunk answers + 2 repair calls.
    assert_eq!(fake.count(), 8);
    let proj = project(&svc, p);
    assert_eq!(proj.status, ProjectStatus::ReadyToTrain);
    let ds = proj.dataset.unwrap();
    assert_eq!(ds.source, j.id.to_string());
    assert_eq!(ds.num_examples, 10);
    let bytes = std::fs::read(dir.path().join(&ds.stored_path)).unwrap();
    assert_eq!(
        tunewright_schemas::dataset::validate_jsonl(&bytes)
            .unwrap()
            .num_examples,
        10
    );
    let first: serde_json::Value =
        serde_json::from_slice(bytes.split(|b| *b == b'\n').next().unwrap()).unwrap();
    assert!(first["source_chunk"].is_u64());
    assert_replay_matches(&svc);
}

#[tokio::test(start_paused = true)]
async fn too_few_examples_fails_and_the_project_stays_generating() {
    let dir = tempfile::tempdir().unwrap();
    let svc = start(dir.path(), executors()).await;
    let fake = FakeLlm::start().await;
    let p = project_with_doc(&svc, dir.path(), 1, None).await;
    let j = svc
        .submit_job(p, JobKind::DatasetGenerate, gen_config(&fake))
        .await
        .unwrap();
    let done = wait_job(&svc, j.id, "finished", |j| j.status.is_terminal()).await;
    assert_eq!(done.status, JobStatus::Failed);
    assert_eq!(
        done.error.unwrap().error_code,
        ErrorCode::DatasetTooFewExamples
    );
    assert_eq!(project(&svc, p).status, ProjectStatus::Generating);
    assert!(project(&svc, p).dataset.is_none());
}

#[tokio::test(start_paused = true)]
async fn a_document_without_text_is_no_chunks() {
    let dir = tempfile::tempdir().unwrap();
    let svc = start(dir.path(), executors()).await;
    let fake = FakeLlm::start().await;
    let p = project_with_doc(&svc, dir.path(), 0, Some(b"\xff\xfe\x00binary")).await;
    let j = svc
        .submit_job(p, JobKind::DatasetGenerate, gen_config(&fake))
        .await
        .unwrap();
    let done = wait_job(&svc, j.id, "finished", |j| j.status.is_terminal()).await;
    assert_eq!(done.error.unwrap().error_code, ErrorCode::DatasetNoChunks);
    assert_eq!(fake.count(), 0);
}

#[tokio::test(start_paused = true)]
async fn a_project_without_documents_is_no_docs() {
    let dir = tempfile::tempdir().unwrap();
    let svc = start(dir.path(), executors()).await;
    let p = svc.create_project("empty").await.unwrap().id;
    let e = svc
        .submit_job(p, JobKind::DatasetGenerate, serde_json::json!({}))
        .await
        .unwrap_err();
    assert_eq!(e.error_code, ErrorCode::DatasetNoDocs);
}

#[tokio::test(start_paused = true)]
async fn preview_returns_examples_and_stores_no_dataset() {
    let dir = tempfile::tempdir().unwrap();
    let svc = start(dir.path(), executors()).await;
    let fake = FakeLlm::start().await;
    let p = project_with_doc(&svc, dir.path(), 5, None).await;
    let mut cfg = gen_config(&fake);
    cfg["preview_chunks"] = 2.into();
    let j = svc
        .submit_job(p, JobKind::DatasetPreview, cfg)
        .await
        .unwrap();
    let done = wait_job(&svc, j.id, "finished", |j| j.status.is_terminal()).await;
    assert_eq!(done.status, JobStatus::Success, "{:?}", done.error);
    let result = done.result.unwrap().0;
    assert_eq!(result["examples"].as_array().unwrap().len(), 10);
    assert_eq!(result["chunks_used"], 2);
    assert_eq!(fake.count(), 2);
    assert!(project(&svc, p).dataset.is_none());
}

#[tokio::test(start_paused = true)]
async fn a_401_fails_the_job_without_retries() {
    let dir = tempfile::tempdir().unwrap();
    let svc = start(dir.path(), executors()).await;
    let fake = FakeLlm::start().await;
    let p = project_with_doc(&svc, dir.path(), 3, None).await;
    fake.push([Reply::Status(401, None)]);
    let j = svc
        .submit_job(p, JobKind::DatasetGenerate, gen_config(&fake))
        .await
        .unwrap();
    let done = wait_job(&svc, j.id, "finished", |j| j.status.is_terminal()).await;
    assert_eq!(
        done.error.unwrap().error_code,
        ErrorCode::OllamaApiKeyInvalid
    );
    assert_eq!(done.attempts, 1);
    assert_eq!(fake.count(), 1);
}

#[tokio::test(start_paused = true)]
async fn persistent_server_errors_end_in_generation_failed_after_task_retries() {
    let dir = tempfile::tempdir().unwrap();
    let svc = start(dir.path(), executors()).await;
    let fake = FakeLlm::start().await;
    let p = project_with_doc(&svc, dir.path(), 3, None).await;
    fake.push((0..100).map(|_| Reply::Status(500, None)));
    let j = svc
        .submit_job(p, JobKind::DatasetGenerate, gen_config(&fake))
        .await
        .unwrap();
    let done = wait_job(&svc, j.id, "finished", |j| j.status.is_terminal()).await;
    assert_eq!(done.status, JobStatus::Failed);
    let err = done.error.unwrap();
    assert_eq!(
        err.error_code,
        ErrorCode::DatasetGenerationFailed,
        "{err:?}"
    );
    assert_eq!(done.attempts, done.max_retries + 1);
    assert_eq!(fake.count() as u32, 3 * (done.max_retries + 1));
    assert_eq!(project(&svc, p).status, ProjectStatus::Generating);
}

#[tokio::test(start_paused = true)]
async fn a_restart_mid_generation_resumes_without_redoing_finished_chunks() {
    let dir = tempfile::tempdir().unwrap();
    let fake = FakeLlm::start().await;
    let (p, job) = {
        let svc = start(dir.path(), executors()).await;
        let p = project_with_doc(&svc, dir.path(), 6, None).await;
        // Chunks 0 and 1 answer, chunk 2 hangs until the service stops.
        fake.push([
            Reply::Examples,
            Reply::Examples,
            Reply::Slow(Duration::from_secs(100)),
        ]);
        let mut cfg = gen_config(&fake);
        cfg["request_timeout_secs"] = 3000.into();
        let j = svc
            .submit_job(p, JobKind::DatasetGenerate, cfg)
            .await
            .unwrap();
        while steps(&svc, j.id).len() < 2 || fake.count() < 3 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        svc.shutdown("test restart").await.unwrap();
        (p, j.id)
    };
    let before = fake.count();
    assert_eq!(before, 3);
    let svc = start(dir.path(), executors()).await;
    let done = wait_job(&svc, job, "finished", |j| j.status.is_terminal()).await;
    assert_eq!(done.status, JobStatus::Success, "{:?}", done.error);
    // 6 chunks, each asked for; the 2 recorded before the stop were never asked again (the
    // hung one is asked again unless it finished while the service drained).
    let asked: Vec<String> = fake.requests().into_iter().map(|r| r.user).collect();
    let mut distinct = asked.clone();
    distinct.sort();
    distinct.dedup();
    assert_eq!(distinct.len(), 6);
    for first in &asked[..2] {
        assert_eq!(
            asked.iter().filter(|u| *u == first).count(),
            1,
            "a finished chunk was redone"
        );
    }
    assert!(asked.len() <= 7, "{} requests", asked.len());
    let st = steps(&svc, job);
    assert_eq!(st.len(), 6, "{st:?}");
    assert_eq!(project(&svc, p).dataset.as_ref().unwrap().num_examples, 30);
    assert_replay_matches(&svc);
}

/// The real generator, except that its first attempt never reports its outcome after it
/// returns: a crash after the dataset import and before the job's completion is recorded.
struct CrashAfterImport {
    crash: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

#[async_trait::async_trait]
impl tunewright_actors::JobExecutor for CrashAfterImport {
    async fn execute(
        &self,
        ctx: tunewright_actors::JobContext,
    ) -> Result<serde_json::Value, Failure> {
        let out = DatasetGenerateExecutor::default().execute(ctx).await;
        if self.crash.swap(false, std::sync::atomic::Ordering::SeqCst) {
            std::future::pending::<()>().await;
        }
        out
    }
}

fn project_events(svc: &Service, p: ProjectId) -> Vec<Event> {
    svc.log()
        .read_stream(tunewright_events::StreamId::Project(p), 0, usize::MAX)
        .unwrap()
        .into_iter()
        .map(|e| e.event)
        .collect()
}

#[tokio::test(start_paused = true)]
async fn a_restart_after_the_import_does_not_import_the_dataset_twice() {
    let dir = tempfile::tempdir().unwrap();
    let fake = FakeLlm::start().await;
    let (p, job, first) = {
        let crash = CrashAfterImport {
            crash: std::sync::Arc::new(true.into()),
        };
        let svc = start(
            dir.path(),
            Executors::new().with(JobKind::DatasetGenerate, crash),
        )
        .await;
        let p = project_with_doc(&svc, dir.path(), 4, None).await;
        let j = svc
            .submit_job(p, JobKind::DatasetGenerate, gen_config(&fake))
            .await
            .unwrap();
        while project(&svc, p).dataset.is_none() {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let first = project(&svc, p).dataset.unwrap();
        svc.shutdown("test crash after the import").await.unwrap();
        assert_eq!(job(&svc, j.id).status, JobStatus::Running);
        (p, j.id, first)
    };
    let asked = fake.count();
    assert_eq!(asked, 4);
    let svc = start(dir.path(), executors()).await;
    let done = wait_job(&svc, job, "finished", |j| j.status.is_terminal()).await;
    assert_eq!(done.status, JobStatus::Success, "{:?}", done.error);
    assert_eq!(fake.count(), asked, "finished chunks were asked again");
    let imports: Vec<_> = project_events(&svc, p)
        .into_iter()
        .filter_map(|e| match e {
            Event::DatasetImported(d) => Some(d),
            _ => None,
        })
        .collect();
    assert_eq!(
        imports.len(),
        1,
        "the dataset was imported twice: {imports:?}"
    );
    let proj = project(&svc, p);
    assert_eq!(proj.status, ProjectStatus::ReadyToTrain);
    assert_eq!(proj.dataset.as_ref().unwrap(), &first);
    let result = done.result.unwrap().0;
    assert_eq!(result["dataset_id"], first.id.to_string());
    assert_eq!(result["sha256"], first.sha256);
    let artifacts = job_events(&svc, job)
        .into_iter()
        .filter(|e| matches!(e, Event::ArtifactRecorded(_)))
        .count();
    assert_eq!(artifacts, 1);
    let bytes = std::fs::read(dir.path().join(&first.stored_path)).unwrap();
    assert_eq!(
        format!("{:x}", <sha2::Sha256 as sha2::Digest>::digest(&bytes)),
        first.sha256
    );
    assert_replay_matches(&svc);
}
