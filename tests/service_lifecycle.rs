//! The service as a supervisor sees it: systemd notifications (READY after recovery,
//! WATCHDOG pings, STOPPING), SIGTERM handled by draining (503) and a clean exit 0 with a
//! consistent log, restart with the state intact, and daily log files.

mod support;

use std::os::unix::net::UnixDatagram;
use std::time::Duration;

use support::{expect_error, Options, Server, SseReader};

#[tokio::test]
async fn sigterm_drains_then_exits_cleanly_with_a_consistent_log() {
    let mut s = Server::start_with(Options::default().args(&["--drain-secs", "3"])).await;
    let p = s.create_project("kept").await;
    assert_eq!(
        s.upload(&p, "doc.txt", b"content".to_vec()).await.status(),
        201
    );
    // A live stream is open while the service stops: it must not hold the stop.
    let r = s
        .client
        .get(s.url("/api/v1/events/stream?after=0"))
        .send()
        .await
        .unwrap();
    let mut sse = SseReader::new(r);
    assert!(sse.next().await.is_some());

    s.signal("TERM");
    // While draining: not ready, and no new work.
    let mut saw_unready = false;
    for _ in 0..200 {
        match s.client.get(s.url("/ready")).send().await {
            Ok(r) if r.status() == 503 => {
                expect_error(r, 503, "SERVICE_UNAVAILABLE").await;
                saw_unready = true;
                break;
            }
            Ok(_) => tokio::time::sleep(Duration::from_millis(10)).await,
            Err(_) => break,
        }
    }
    assert!(saw_unready, "/ready never answered 503 while draining");
    let r = s
        .post_json("/api/v1/projects", serde_json::json!({"name": "late"}))
        .await;
    expect_error(r, 503, "SERVICE_UNAVAILABLE").await;
    // The open stream ends.
    while sse.next().await.is_some() {}

    let status = s.wait_exit();
    assert!(status.success(), "exit status {status:?}");
    let (ok, text) = s.replay_verify();
    assert!(ok, "{text}");

    // The log ends with the stop, and a restart has the same state.
    let dir = s.data_dir.clone();
    let s2 = Server::start_with(Options::default().data_dir(&dir)).await;
    let events: serde_json::Value = s2
        .get("/api/v1/events?limit=1000")
        .await
        .json()
        .await
        .unwrap();
    let types: Vec<&str> = events["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap())
        .collect();
    let stop = types
        .iter()
        .position(|t| *t == "service_stopped")
        .expect("service_stopped recorded");
    assert_eq!(types[stop + 1], "service_started");
    let proj: serde_json::Value = s2
        .get(&format!("/api/v1/projects/{p}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(proj["num_files"], 1);
    let late: serde_json::Value = s2.get("/api/v1/projects").await.json().await.unwrap();
    assert_eq!(
        late["items"].as_array().unwrap().len(),
        1,
        "the refused project must not exist"
    );

    // Daily log files, JSON lines.
    let logs: Vec<_> = std::fs::read_dir(dir.join("logs"))
        .unwrap()
        .flatten()
        .collect();
    assert!(!logs.is_empty());
    let name = logs[0].file_name().to_string_lossy().into_owned();
    assert!(
        name.starts_with("tunewright.") && name.ends_with(".log"),
        "{name}"
    );
    let text = std::fs::read_to_string(logs[0].path()).unwrap();
    let first = text.lines().next().expect("a log line");
    assert!(
        serde_json::from_str::<serde_json::Value>(first).is_ok(),
        "{first}"
    );
}

#[tokio::test]
async fn systemd_hears_ready_watchdog_and_stopping() {
    let dir = tempfile::tempdir().unwrap();
    let sock_path = dir.path().join("notify.sock");
    let sock = UnixDatagram::bind(&sock_path).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut s = Server::start_with(
        Options::default()
            .env("NOTIFY_SOCKET", sock_path.to_str().unwrap())
            .env("WATCHDOG_USEC", "200000"),
    )
    .await;
    let mut buf = [0u8; 4096];
    let mut recv = || {
        let n = sock.recv(&mut buf).expect("a notification");
        String::from_utf8_lossy(&buf[..n]).into_owned()
    };
    // Status while recovering, then READY=1; never READY before.
    let mut msgs = Vec::new();
    loop {
        let m = recv();
        let ready = m.lines().any(|l| l == "READY=1");
        msgs.push(m);
        if ready {
            break;
        }
    }
    assert!(msgs[0].contains("STATUS="), "{msgs:?}");
    // READY means /ready answers 200.
    assert_eq!(s.get("/ready").await.status(), 200);
    // Watchdog pings keep coming.
    let mut pings = 0;
    while pings < 3 {
        if recv().lines().any(|l| l == "WATCHDOG=1") {
            pings += 1;
        }
    }
    s.signal("TERM");
    loop {
        if recv().lines().any(|l| l == "STOPPING=1") {
            break;
        }
    }
    assert!(s.wait_exit().success());
}
