//! What an operator reads in the daily log files (docs/logging.md, "Job lifecycle lines"): a
//! real `tunewright serve` runs a training that succeeds, one that runs out of memory, and a
//! dataset preview whose LLM keeps rate-limiting; the JSON lines of `DATA_DIR/logs/` then hold
//! each job's life with its job and project ids.

mod support;
mod training;

use std::io::{Read, Write};
use std::net::TcpListener;

use serde_json::{json, Value};
use support::{Options, Server};
use training::*;

/// An OpenAI-compatible endpoint on loopback that answers every request `429` with
/// `Retry-After: 0`, as a rate-limiting service does.
fn rate_limiting_llm() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/v1", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut buf = [0u8; 65536];
            let _ = stream.read(&mut buf);
            let _ = stream.write_all(
                b"HTTP/1.1 429 Too Many Requests\r\nRetry-After: 0\r\nContent-Type: application/json\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}",
            );
        }
    });
    url
}

/// The log file's lines with `message`.
fn lines_of<'a>(lines: &'a [Value], message: &str) -> Vec<&'a Value> {
    lines
        .iter()
        .filter(|l| l["fields"]["message"] == message)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn job_lifecycles_are_in_the_daily_log_files() {
    let llm = rate_limiting_llm();
    let mut s = Server::start_with(
        single_threaded(Options::default())
            .env("TUNEWRIGHT_FAULT_OOM_AT_STEP", "3")
            .env("TUNEWRIGHT_LLM_BASE_URL", &llm),
    )
    .await;
    let p = project_with_dataset(&s, "logs").await;
    let ok = submit_train(&s, &p, train_config(2, 4)).await;
    assert_eq!(finished(&s, &ok).await["status"], "success");
    let oom = submit_train(&s, &p, train_config(6, 4)).await;
    assert_eq!(finished(&s, &oom).await["status"], "failed");
    let r = s
        .upload(
            &p,
            "notes.md",
            b"# Notes\n\nA paragraph to turn into questions.\n".to_vec(),
        )
        .await;
    assert_eq!(r.status(), 201);
    let r = s
        .post_json(
            &format!("/api/v1/projects/{p}/jobs"),
            json!({"kind": "dataset_preview", "config": {}}),
        )
        .await;
    assert_eq!(r.status(), 201);
    let preview: Value = r.json().await.unwrap();
    let preview = preview["id"].as_str().unwrap().to_string();
    let done = finished(&s, &preview).await;
    assert_eq!(
        done["error"]["error_code"], "OLLAMA_API_RATE_LIMIT",
        "{done}"
    );
    s.signal("TERM");
    assert!(s.wait_exit().success());

    let mut lines = Vec::new();
    for f in std::fs::read_dir(s.data_dir.join("logs"))
        .unwrap()
        .flatten()
    {
        for l in std::fs::read_to_string(f.path()).unwrap().lines() {
            lines.push(serde_json::from_str::<Value>(l).expect("a JSON log line"));
        }
    }
    let of_job = |message: &str, job: &str| -> Vec<Value> {
        lines_of(&lines, message)
            .into_iter()
            .filter(|l| l["fields"]["job_id"] == job)
            .cloned()
            .collect()
    };
    for job in [&ok, &oom, &preview] {
        for message in ["job.queued", "job.started"] {
            let found = of_job(message, job);
            assert!(!found.is_empty(), "no {message} for {job}");
            assert_eq!(found[0]["fields"]["project_id"], p.as_str(), "{}", found[0]);
        }
    }
    let succeeded = of_job("job.succeeded", &ok);
    assert_eq!(succeeded.len(), 1);
    assert_eq!(succeeded[0]["level"], "INFO");

    let oom_line = of_job("training.oom", &oom);
    assert_eq!(oom_line.len(), 1, "{oom_line:?}");
    assert_eq!(
        oom_line[0]["fields"]["phase"], "training",
        "{}",
        oom_line[0]
    );
    let failed = of_job("job.failed", &oom);
    assert_eq!(failed.len(), 1);
    let f = &failed[0]["fields"];
    assert_eq!(failed[0]["level"], "ERROR");
    assert_eq!(f["code"], "TRAINING_OOM", "{f}");
    assert!(
        f["detail"]
            .as_str()
            .unwrap()
            .starts_with("Out of memory during"),
        "{f}"
    );
    assert!(
        !f["suggestion"].as_str().unwrap_or_default().is_empty(),
        "{f}"
    );

    // The preview's LLM rate-limited every call: each retry is a line with its wait and code.
    let retries = of_job("job.retry", &preview);
    assert_eq!(retries.len(), 3, "{retries:?}");
    for (i, r) in retries.iter().enumerate() {
        let f = &r["fields"];
        assert_eq!(r["level"], "WARN");
        assert_eq!(f["attempt"], i as u64 + 1, "{f}");
        assert_eq!(f["code"], "OLLAMA_API_RATE_LIMIT", "{f}");
        assert!(f["wait_ms"].is_u64(), "{f}");
    }
    assert_eq!(of_job("job.failed", &preview).len(), 1);
}
