//! Checks by the outside tools operators use: `promtool check metrics` on `/metrics`,
//! `systemd-analyze verify` on the unit file, and a bounded schemathesis run of the OpenAPI
//! document against the live server (no 5xx, no answer that breaks the document). Each
//! skips with a printed notice when its tool is not installed (script/install-test-tools
//! installs them).

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;

use support::Server;

fn tool(name: &str) -> Option<PathBuf> {
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {name}"))
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()))
}

#[tokio::test]
async fn metrics_pass_promtool() {
    let Some(promtool) = tool("promtool") else {
        eprintln!(
            "NOTICE: promtool not installed (Debian package prometheus); skipping the metrics lint"
        );
        return;
    };
    let s = Server::start().await;
    // Make every kind of series appear: appends (histograms), errors, job gauges.
    let p = s.create_project("metrics").await;
    assert_eq!(s.upload(&p, "a.txt", b"text".to_vec()).await.status(), 201);
    assert_eq!(s.get("/api/v1/projects/prj_nope").await.status(), 404);
    let r = s.get("/metrics").await;
    assert_eq!(r.status(), 200);
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain"));
    let text = r.text().await.unwrap();
    for name in [
        "tunewright_event_append_seconds_bucket",
        "tunewright_group_commit_batch_size_bucket",
        "tunewright_events_appended_total",
        "tunewright_http_errors_total{code=\"PROJECT_NOT_FOUND\"}",
        "tunewright_jobs{kind=\"train\",status=\"queued\"}",
        "tunewright_training_tokens_per_second",
        "tunewright_gpu_memory_bytes",
        "tunewright_ready 1",
    ] {
        assert!(text.contains(name), "{name} missing from /metrics:\n{text}");
    }
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("metrics.txt");
    std::fs::write(&file, &text).unwrap();
    let out = Command::new(promtool)
        .args(["check", "metrics"])
        .stdin(std::fs::File::open(&file).unwrap())
        .output()
        .unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success() && said.trim().is_empty(),
        "promtool: {said}\n{text}"
    );
}

#[test]
fn the_unit_file_passes_systemd_analyze() {
    let Some(analyze) = tool("systemd-analyze") else {
        eprintln!("NOTICE: systemd-analyze not installed (Debian package systemd); skipping the unit check");
        return;
    };
    let unit = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/tunewright.service"),
    )
    .unwrap();
    for key in [
        "Type=notify",
        "WatchdogSec=",
        "Restart=on-failure",
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
    ] {
        assert!(unit.contains(key), "{key} missing");
    }
    // Verify against the binary this build made (systemd checks that ExecStart exists).
    let unit = unit.replace("/usr/local/bin/tunewright", support::BIN);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tunewright.service");
    std::fs::write(&path, unit).unwrap();
    let out = Command::new(analyze)
        .arg("verify")
        .arg(&path)
        .output()
        .unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let about_unit: Vec<&str> = said
        .lines()
        .filter(|l| l.contains("tunewright.service"))
        .collect();
    assert!(
        out.status.success() && about_unit.is_empty(),
        "systemd-analyze verify: {said}"
    );
}

#[tokio::test]
async fn the_openapi_document_holds_under_schemathesis() {
    let st = Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/schemathesis");
    if !st.exists() {
        eprintln!("NOTICE: schemathesis not installed in .venv (script/install-test-tools); skipping the OpenAPI conformance run");
        return;
    }
    let s = Server::start().await;
    let report = tempfile::tempdir().unwrap();
    let out = tokio::process::Command::new(&st)
        .arg("run")
        .arg(s.url("/api/v1/openapi.json"))
        .args([
            "--checks",
            "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance",
            "--max-examples",
            "10",
            "--seed",
            "7",
            "--no-shrink",
            "--workers",
            "2",
            "--max-time",
            "90",
            "--request-timeout",
            "20",
            // An infinite response by design; covered by tests/http_events.rs.
            "--exclude-path",
            "/api/v1/events/stream",
        ])
        .env("SCHEMATHESIS_REPORTS", report.path())
        .current_dir(report.path())
        .output()
        .await
        .unwrap();
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "schemathesis found problems:\n{said}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
