//! The studio's job page for a long run: a log holding one training of 100,000 logged steps
//! (plus an evaluation every 500), served by a real `tunewright serve` (release build when run
//! with `cargo bench`). Prints, measured in this one run: the first page asked for at once after
//! start with nothing saved (the run read on the request's path), at once after a restart (the
//! studio's saved reading of the finished run loaded), and 3 s after a start with no saved
//! reading (read by the warm-up); the page once its reading is cached (criterion), its size and
//! points per curve, and the service's CPU time per second with a live page's event stream open
//! and idle against none.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};
use tunewright_events::event::{
    Event, JobAttemptStarted, JobCreated, JobNote, JobProgress, JobSucceeded, ProjectCreated,
};
use tunewright_events::EventLog;
use tunewright_schemas::{DataLayout, JobId, JobKind, Json, ProjectId};

const STEPS: u64 = 100_000;

/// Write the log: a project, a training with `STEPS` progress events, its success.
fn write_log(dir: &std::path::Path) -> JobId {
    let log = EventLog::open(&DataLayout::new(dir).event_log()).expect("open log");
    let (project_id, job_id) = (ProjectId::new(), JobId::new());
    let config = serde_json::json!({"base_model": "/models/none", "max_steps": STEPS});
    log.append_blocking(vec![
        Event::ProjectCreated(ProjectCreated {
            project_id,
            name: "bench".into(),
        }),
        Event::JobCreated(JobCreated {
            job_id,
            project_id,
            kind: JobKind::Train,
            config: Json(config),
            max_retries: 0,
            queue_timeout_ms: 60_000,
        }),
        Event::JobAttemptStarted(JobAttemptStarted { job_id, attempt: 1 }),
    ])
    .expect("append");
    let mut batch = Vec::new();
    for step in 1..=STEPS {
        let loss = 2.0 + (step as f64 / 700.0).sin() / (1.0 + step as f64 / 10_000.0);
        batch.push(Event::JobProgress(JobProgress {
            job_id,
            phase: "training".into(),
            step,
            total_steps: STEPS,
            loss: Some(loss),
            learning_rate: Some(2e-4 * (1.0 - step as f64 / STEPS as f64)),
            grad_norm: Some(1.0 + (step % 97) as f64 / 97.0),
            tokens_per_sec: Some(12_000.0),
            memory_bytes: Some(8 << 30),
            extra: Json(serde_json::Value::Null),
        }));
        if step % 500 == 0 {
            batch.push(Event::JobNote(JobNote {
                job_id,
                topic: "evaluation".into(),
                data: Json(serde_json::json!({"step": step, "eval_loss": loss + 0.1})),
            }));
        }
        if batch.len() >= 5000 {
            log.append_blocking(std::mem::take(&mut batch))
                .expect("append");
        }
    }
    batch.push(Event::JobSucceeded(JobSucceeded {
        job_id,
        attempt: 1,
        result: Json(serde_json::json!({})),
    }));
    log.append_blocking(batch).expect("append");
    log.close().expect("close");
    // A training's directory (its specs, checkpoints, adapter) is where its reading is saved.
    std::fs::create_dir_all(DataLayout::new(dir).job_dir(job_id)).expect("job dir");
    job_id
}

struct Serve {
    child: std::process::Child,
    base: String,
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn serve(dir: &std::path::Path) -> Serve {
    let mut child = Command::new(env!("CARGO_BIN_EXE_tunewright"))
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start tunewright serve");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = BufReader::new(stdout).lines();
    let base = loop {
        let line = lines.next().expect("an address line").expect("stdout");
        if let Some(a) = line.strip_prefix("tunewright listening on ") {
            break a.trim().to_string();
        }
    };
    std::thread::spawn(move || for _ in lines {});
    Serve { child, base }
}

/// User + system CPU seconds of `pid` so far.
fn cpu_secs(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, r)| r.split_whitespace().collect())
        .unwrap_or_default();
    let ticks: f64 = [11, 12]
        .iter()
        .filter_map(|i| fields.get(*i).and_then(|t| t.parse::<f64>().ok()))
        .sum();
    // SAFETY: sysconf only reads a configuration value.
    let per_sec = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    ticks / per_sec
}

/// Wait until `base` answers `/ready`.
async fn ready(client: &reqwest::Client, base: &str) {
    for _ in 0..300 {
        if client
            .get(format!("{base}/ready"))
            .send()
            .await
            .is_ok_and(|r| r.status() == 200)
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The job page's first view on `s`, `after` its readiness: (milliseconds, HTML).
async fn first_view(
    client: &reqwest::Client,
    s: &Serve,
    url: &str,
    after: Duration,
) -> (f64, String) {
    ready(client, &s.base).await;
    tokio::time::sleep(after).await;
    let started = Instant::now();
    let page = client
        .get(url)
        .send()
        .await
        .expect("page")
        .text()
        .await
        .expect("body");
    (started.elapsed().as_secs_f64() * 1000.0, page)
}

fn bench(c: &mut Criterion) {
    let tmp = tempfile::tempdir().expect("temp dir");
    let job = write_log(tmp.path());
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let client = reqwest::Client::new();
    let saved = DataLayout::new(tmp.path()).studio_reading(job);
    // A service just started: the page is asked for at once, while the studio's warm-up is
    // still reading the run (what a first view costs when nothing has read it yet).
    let s = serve(tmp.path());
    let url = format!("{}/jobs/{job}", s.base);
    let (at_once, _) = rt.block_on(first_view(&client, &s, &url, Duration::ZERO));
    for _ in 0..100 {
        if saved.exists() {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let saved_kib = std::fs::metadata(&saved)
        .expect("the reading was saved")
        .len()
        / 1024;
    drop(s);
    // Restarted: the page is asked for at once; the finished run's saved reading is loaded.
    let s = serve(tmp.path());
    let url = format!("{}/jobs/{job}", s.base);
    let (restarted, _) = rt.block_on(first_view(&client, &s, &url, Duration::ZERO));
    drop(s);
    // Restarted with no saved reading: the page is asked for once the warm-up has had its time.
    std::fs::remove_file(&saved).expect("remove the saved reading");
    let s = serve(tmp.path());
    let url = format!("{}/jobs/{job}", s.base);
    let (warmed, page) = rt.block_on(first_view(&client, &s, &url, Duration::from_secs(3)));
    rt.block_on(async {
        let curves: serde_json::Value = client
            .get(format!("{url}/curves"))
            .send()
            .await
            .expect("curves")
            .json()
            .await
            .expect("json");
        println!(
            "job page, {STEPS} logged steps: first view at once after start {at_once:.1} ms (nothing saved: the run read on the request's path), at once after a restart {restarted:.1} ms (its saved reading of {saved_kib} KiB loaded), 3 s after a start with nothing saved {warmed:.1} ms (read by the warm-up), {} KiB of HTML; points per curve: loss {}, eval loss {}, learning rate {}, gradient norm {} (of {} recorded steps)",
            page.len() / 1024,
            curves["curves"]["loss"][0].as_array().map_or(0, Vec::len),
            curves["curves"]["eval_loss"][0].as_array().map_or(0, Vec::len),
            curves["curves"]["learning_rate"][0].as_array().map_or(0, Vec::len),
            curves["curves"]["grad_norm"][0].as_array().map_or(0, Vec::len),
            curves["curves"]["recorded_steps"],
        );
        // Idle cost: the service's CPU time per second, with no page open, then with a live
        // page's event stream open (the job page's `EventSource`) and nothing happening.
        let pid = s.child.id();
        let window = Duration::from_secs(10);
        let before = cpu_secs(pid);
        tokio::time::sleep(window).await;
        let idle = (cpu_secs(pid) - before) / window.as_secs_f64();
        let stream = client
            .get(format!("{}/api/v1/events/stream?stream={job}", s.base))
            .send()
            .await
            .expect("stream");
        let before = cpu_secs(pid);
        tokio::time::sleep(window).await;
        let live = (cpu_secs(pid) - before) / window.as_secs_f64();
        drop(stream);
        println!(
            "service CPU per idle second: {:.2} ms with no page open, {:.2} ms with a live job page's stream open",
            idle * 1000.0,
            live * 1000.0
        );
    });
    let mut g = c.benchmark_group("studio");
    g.sample_size(30);
    g.bench_function("job page of 100k logged steps (reading cached)", |b| {
        b.iter(|| {
            rt.block_on(async {
                client
                    .get(&url)
                    .send()
                    .await
                    .expect("page")
                    .bytes()
                    .await
                    .expect("body")
            })
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
