//! The listener and the edge against clients that misbehave (docs/operations.md): idle and
//! slow sockets are closed, a flood of idle sockets beyond the cap leaves `/health` answering,
//! a declared body over the route's limit is refused at once, an event stream whose cursor is
//! beyond the log's end says so, invisible characters in a file name are refused, an upload that
//! races its project's deletion is `PROJECT_NOT_FOUND`, and `--listen localhost:PORT` works.

mod support;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use support::{expect_error, Options, Server, SseReader, BIN};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

fn addr(s: &Server) -> String {
    s.base.trim_start_matches("http://").to_string()
}

/// Reads until the peer closes (`Ok(bytes read)`) or `within` passes (`Err`).
async fn closed_within(sock: &mut TcpStream, within: Duration) -> Result<Vec<u8>, ()> {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    let deadline = tokio::time::Instant::now() + within;
    loop {
        match tokio::time::timeout_at(deadline, sock.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return Ok(got),
            Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
            Err(_) => return Err(()),
        }
    }
}

fn limits() -> Options {
    Options::default().args(&[
        "--max-connections",
        "200",
        "--header-read-timeout-secs",
        "2",
        "--idle-timeout-secs",
        "3",
    ])
}

#[tokio::test]
async fn an_idle_socket_and_a_slow_header_sender_are_closed() {
    let s = Server::start_with(limits()).await;
    let mut idle = TcpStream::connect(addr(&s)).await.unwrap();
    let t0 = Instant::now();
    closed_within(&mut idle, Duration::from_secs(20))
        .await
        .expect("an idle connection is closed");
    assert!(
        t0.elapsed() >= Duration::from_secs(2),
        "not before its timeout"
    );

    // One header byte every 500 ms: never idle, but its headers never end.
    let mut slow = TcpStream::connect(addr(&s)).await.unwrap();
    let head = b"GET /health HTTP/1.1\r\nHost: x\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    let t0 = Instant::now();
    let mut closed = false;
    for b in head.iter().cycle().take(200) {
        if slow.write_all(&[*b]).await.is_err() {
            closed = true;
            break;
        }
        let mut buf = [0u8; 512];
        match tokio::time::timeout(Duration::from_millis(500), slow.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => {
                closed = true;
                break;
            }
            Ok(Ok(_)) => {
                closed = true; // the server answered (408/400) and closes
                break;
            }
            Err(_) => {}
        }
    }
    assert!(closed, "a slowloris client is cut off");
    assert!(
        t0.elapsed() < Duration::from_secs(60),
        "cut off by the header-read timeout, not by running out of bytes"
    );
    // A normal client is still served.
    assert_eq!(s.get("/health").await.status(), 200);
}

#[tokio::test]
async fn a_flood_of_idle_sockets_beyond_the_cap_leaves_health_answering() {
    let s = Server::start_with(limits()).await;
    let mut flood = Vec::new();
    for _ in 0..1000 {
        match TcpStream::connect(addr(&s)).await {
            Ok(c) => flood.push(c),
            Err(e) => panic!("connect {}: {e}", flood.len()),
        }
    }
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let t0 = Instant::now();
    let r = client
        .get(s.url("/health"))
        .send()
        .await
        .expect("/health answers with 1,000 idle sockets open (cap 200)");
    eprintln!(
        "/health answered in {:?} with {} idle sockets open",
        t0.elapsed(),
        flood.len()
    );
    assert_eq!(r.status(), 200);
    // The quietest sockets were closed to make room: the first ones opened see EOF.
    let closed = closed_within(&mut flood[0], Duration::from_secs(1)).await;
    assert!(closed.is_ok(), "the oldest idle socket was closed");
}

#[tokio::test]
async fn a_declared_body_over_the_routes_limit_is_refused_at_once() {
    let s = Server::start().await;
    let p = s.create_project("big").await;
    for (path, ctype, code) in [
        (
            format!("/api/v1/projects/{p}/files"),
            "multipart/form-data; boundary=x",
            "FILE_TOO_LARGE",
        ),
        (
            format!("/api/v1/projects/{p}/dataset"),
            "application/x-ndjson",
            "FILE_TOO_LARGE",
        ),
        (
            "/api/v1/projects".to_string(),
            "application/json",
            "REQUEST_TOO_LARGE",
        ),
    ] {
        let mut sock = TcpStream::connect(addr(&s)).await.unwrap();
        let head = format!(
            "POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: {ctype}\r\nContent-Length: 999999999999\r\n\r\n"
        );
        sock.write_all(head.as_bytes()).await.unwrap();
        let mut got = Vec::new();
        let mut buf = [0u8; 4096];
        while !String::from_utf8_lossy(&got).contains("error_code") {
            match tokio::time::timeout(Duration::from_secs(5), sock.read(&mut buf)).await {
                Ok(Ok(n)) if n > 0 => got.extend_from_slice(&buf[..n]),
                other => panic!("{path}: no answer before a body was sent: {other:?}"),
            }
        }
        let text = String::from_utf8_lossy(&got);
        assert!(text.starts_with("HTTP/1.1 413"), "{path}: {text}");
        assert!(text.contains(code), "{path}: {text}");
        assert!(
            text.contains("999999999999"),
            "{path}: the declared size is named: {text}"
        );
    }
}

#[tokio::test]
async fn an_event_stream_resumed_beyond_the_logs_end_is_told_so() {
    let s = Server::start().await;
    s.create_project("a").await;
    let r = s
        .client
        .get(s.url("/api/v1/events/stream"))
        .header("Last-Event-ID", "999999")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let mut sse = SseReader::new(r);
    let first = tokio::time::timeout(Duration::from_secs(10), sse.next())
        .await
        .expect("an event arrives at once")
        .expect("the stream is open");
    let v: serde_json::Value = serde_json::from_str(&first.data).unwrap();
    assert_eq!(v["last_event_id"], 999999);
    let last_seq = v["last_seq"].as_u64().unwrap();
    assert!(last_seq >= 1);
    assert_eq!(first.id.as_deref(), Some(last_seq.to_string().as_str()));
    // Live events follow from the log's end.
    s.create_project("b").await;
    let next = tokio::time::timeout(Duration::from_secs(10), sse.next())
        .await
        .expect("the next event is live")
        .expect("the stream is open");
    assert_eq!(next.id, Some((last_seq + 1).to_string()));
}

#[tokio::test]
async fn file_names_with_invisible_characters_are_refused() {
    let s = Server::start().await;
    let p = s.create_project("names").await;
    for name in [
        "report\u{200B}.txt",
        "\u{FEFF}notes.md",
        "invoice\u{202E}txt.exe.md",
        "a\u{200D}b.txt",
    ] {
        let r = s.upload(&p, name, b"hello".to_vec()).await;
        let body = expect_error(r, 400, "FILE_INVALID_NAME").await;
        assert!(
            body["detail"].as_str().unwrap().contains("invisible"),
            "{name:?}: {body}"
        );
    }
    let files: serde_json::Value = s
        .get(&format!("/api/v1/projects/{p}/files"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(files["items"].as_array().map(Vec::len), Some(0));
    let stored = s.data_dir.join(format!("projects/{p}/files"));
    let left = std::fs::read_dir(&stored).map(|d| d.count()).unwrap_or(0);
    assert_eq!(left, 0, "nothing written");
}

#[tokio::test]
async fn an_upload_racing_its_projects_deletion_is_project_not_found() {
    let s = Server::start().await;
    let p = s.create_project("doomed").await;
    let body_head = "--x\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.txt\"\r\nContent-Type: text/plain\r\n\r\nhello ";
    let body_tail = "world\r\n--x--\r\n";
    let mut sock = TcpStream::connect(addr(&s)).await.unwrap();
    let head = format!(
        "POST /api/v1/projects/{p}/files HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: multipart/form-data; boundary=x\r\nContent-Length: {}\r\n\r\n{body_head}",
        body_head.len() + body_tail.len()
    );
    sock.write_all(head.as_bytes()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let r = s
        .client
        .delete(s.url(&format!("/api/v1/projects/{p}")))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "deleted: {}", r.status());
    sock.write_all(body_tail.as_bytes()).await.unwrap();
    let got = closed_within(&mut sock, Duration::from_secs(10)).await;
    let text = match got {
        Ok(b) => String::from_utf8_lossy(&b).into_owned(),
        Err(()) => panic!("no answer"),
    };
    let text = if text.contains("error_code") {
        text
    } else {
        panic!("{text}")
    };
    assert!(text.starts_with("HTTP/1.1 404"), "{text}");
    assert!(text.contains("PROJECT_NOT_FOUND"), "{text}");
}

#[test]
fn listen_accepts_a_host_name() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(BIN)
        .args(["serve", "--listen", "localhost:0", "--data-dir"])
        .arg(dir.path())
        .env_remove("TUNEWRIGHT_TOKEN")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut line = String::new();
    let _ = BufReader::new(stdout).read_line(&mut line);
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        line.starts_with("tunewright listening on http://127.0.0.1:"),
        "{line}"
    );
}
