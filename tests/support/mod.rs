//! Shared helpers for end-to-end tests: a real `tunewright serve` child process on
//! 127.0.0.1 (port chosen by the OS) with a temporary data dir, a reqwest client, signals,
//! and a small server-sent-events reader.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::Duration;

pub const BIN: &str = env!("CARGO_BIN_EXE_tunewright");
/// The worker binary the service starts (beside `BIN`, where the service looks for it).
pub const WORKER_BIN: &str = env!("CARGO_BIN_EXE_tunewright-worker");

/// A running `tunewright serve`.
pub struct Server {
    pub child: Option<Child>,
    pub base: String,
    pub data_dir: PathBuf,
    _tmp: Option<tempfile::TempDir>,
    pub client: reqwest::Client,
}

pub struct Options {
    pub args: Vec<String>,
    pub envs: Vec<(String, String)>,
    pub data_dir: Option<PathBuf>,
    pub wait_ready: bool,
    /// Run the server as an unprivileged user (uid/gid 65534) when the tests run as root, so
    /// file permissions apply to it.
    pub unprivileged: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            args: Vec::new(),
            envs: Vec::new(),
            data_dir: None,
            wait_ready: true,
            unprivileged: false,
        }
    }
}

impl Options {
    pub fn arg(mut self, a: &str) -> Self {
        self.args.push(a.to_string());
        self
    }
    pub fn args(mut self, a: &[&str]) -> Self {
        self.args.extend(a.iter().map(|s| s.to_string()));
        self
    }
    pub fn env(mut self, k: &str, v: &str) -> Self {
        self.envs.push((k.into(), v.into()));
        self
    }
    pub fn data_dir(mut self, d: &Path) -> Self {
        self.data_dir = Some(d.to_path_buf());
        self
    }
    pub fn unprivileged(mut self) -> Self {
        self.unprivileged = true;
        self
    }
    pub fn no_wait(mut self) -> Self {
        self.wait_ready = false;
        self
    }
}

impl Server {
    pub async fn start() -> Server {
        Server::start_with(Options::default()).await
    }

    pub async fn start_with(opts: Options) -> Server {
        let (tmp, data_dir) = match opts.data_dir {
            Some(d) => (None, d),
            None => {
                let t = tempfile::tempdir().expect("temp dir");
                let d = t.path().to_path_buf();
                (Some(t), d)
            }
        };
        let as_nobody = opts.unprivileged && is_root();
        let mut cmd = if as_nobody {
            use std::os::unix::fs::PermissionsExt;
            let open = std::fs::Permissions::from_mode(0o777);
            std::fs::set_permissions(&data_dir, open).expect("chmod the data dir");
            let mut c = Command::new("setpriv");
            c.args(["--reuid=65534", "--regid=65534", "--clear-groups", BIN]);
            c
        } else {
            Command::new(BIN)
        };
        cmd.arg("serve")
            .arg("--data-dir")
            .arg(&data_dir)
            .arg("--listen")
            .arg("127.0.0.1:0")
            .args(&opts.args)
            .env_remove("TUNEWRIGHT_TOKEN")
            .env_remove("NOTIFY_SOCKET")
            .env_remove("WATCHDOG_USEC")
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        for (k, v) in &opts.envs {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("spawn tunewright serve");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some(addr) = line.strip_prefix("tunewright listening on ") {
                    let _ = tx.send(addr.trim().to_string());
                }
                eprintln!("[serve] {line}");
            }
        });
        let base = rx
            .recv_timeout(Duration::from_secs(60))
            .expect("the server printed its address");
        let server = Server {
            child: Some(child),
            base,
            data_dir,
            _tmp: tmp,
            client: reqwest::Client::new(),
        };
        if opts.wait_ready {
            server.wait_ready().await;
        }
        server
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(|c| c.id()).unwrap_or(0)
    }

    /// Poll `/ready` until it answers 200 (bounded).
    pub async fn wait_ready(&self) {
        for _ in 0..600 {
            if let Ok(r) = self.client.get(self.url("/ready")).send().await {
                if r.status() == 200 {
                    return;
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("the server did not become ready");
    }

    pub fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .args([&format!("-{sig}"), &self.pid().to_string()])
            .status()
            .expect("kill")
            .success();
        assert!(ok, "kill -{sig} failed");
    }

    /// SIGKILL: the process dies without any clean-up.
    pub fn kill_hard(&mut self) {
        if let Some(c) = self.child.as_mut() {
            let _ = c.kill();
            let _ = c.wait();
        }
        self.child = None;
    }

    /// Wait for the process to exit (bounded); its status.
    pub fn wait_exit(&mut self) -> ExitStatus {
        let mut child = self.child.take().expect("running");
        for _ in 0..1200 {
            if let Some(s) = child.try_wait().expect("try_wait") {
                return s;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = child.kill();
        panic!("the server did not exit");
    }

    pub async fn post_json(&self, path: &str, body: serde_json::Value) -> reqwest::Response {
        self.client
            .post(self.url(path))
            .json(&body)
            .send()
            .await
            .expect("request")
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client
            .get(self.url(path))
            .send()
            .await
            .expect("request")
    }

    pub async fn create_project(&self, name: &str) -> String {
        let r = self
            .post_json("/api/v1/projects", serde_json::json!({"name": name}))
            .await;
        assert_eq!(r.status(), 201);
        let v: serde_json::Value = r.json().await.expect("json");
        v["id"].as_str().expect("id").to_string()
    }

    pub async fn upload(&self, project: &str, name: &str, bytes: Vec<u8>) -> reqwest::Response {
        let part = reqwest::multipart::Part::bytes(bytes).file_name(name.to_string());
        let form = reqwest::multipart::Form::new().part("file", part);
        self.client
            .post(self.url(&format!("/api/v1/projects/{project}/files")))
            .multipart(form)
            .send()
            .await
            .expect("request")
    }

    /// An upload sent with chunked transfer encoding: no length is declared up front.
    pub async fn upload_chunked(
        &self,
        project: &str,
        name: &str,
        bytes: Vec<u8>,
    ) -> reqwest::Response {
        let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
            bytes.chunks(64 * 1024).map(|c| Ok(c.to_vec())).collect();
        let body = reqwest::Body::wrap_stream(futures::stream::iter(chunks));
        let part = reqwest::multipart::Part::stream(body).file_name(name.to_string());
        let form = reqwest::multipart::Form::new().part("file", part);
        self.client
            .post(self.url(&format!("/api/v1/projects/{project}/files")))
            .multipart(form)
            .send()
            .await
            .expect("request")
    }

    /// Replay's verdict on the data dir (read-only).
    pub fn replay_verify(&self) -> (bool, String) {
        replay_verify(&self.data_dir)
    }
}

/// Whether the tests run as root (who reads any file whatever its mode).
pub fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

pub fn replay_verify(dir: &Path) -> (bool, String) {
    replay(dir, &["verify"])
}

/// `tunewright replay --data-dir DIR ARGS...`: (success, stdout + stderr).
pub fn replay(dir: &Path, args: &[&str]) -> (bool, String) {
    let out = Command::new(BIN)
        .args(["replay", "--data-dir"])
        .arg(dir)
        .args(args)
        .output()
        .expect("replay");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(c) = self.child.as_mut() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// An error answer: its status and `(error_code, body)`; asserts the error shape.
pub async fn error_of(r: reqwest::Response) -> (u16, String, serde_json::Value) {
    let status = r.status().as_u16();
    let v: serde_json::Value = r.json().await.expect("error body is JSON");
    assert!(v["detail"].is_string(), "detail missing: {v}");
    assert!(v["context"].is_object(), "context missing: {v}");
    let code = v["error_code"].as_str().expect("error_code").to_string();
    (status, code, v)
}

/// Assert an error answer with `status` and `code`; the body.
pub async fn expect_error(r: reqwest::Response, status: u16, code: &str) -> serde_json::Value {
    let (s, c, v) = error_of(r).await;
    assert_eq!(
        (s, c.as_str()),
        (status, code),
        "unexpected error answer: {v}"
    );
    v
}

/// One parsed server-sent event.
#[derive(Debug, Clone)]
pub struct Sse {
    pub id: Option<String>,
    pub data: String,
}

/// Reads server-sent events off a streaming response.
pub struct SseReader {
    resp: reqwest::Response,
    buf: String,
}

impl SseReader {
    pub fn new(resp: reqwest::Response) -> Self {
        SseReader {
            resp,
            buf: String::new(),
        }
    }

    /// The next event with data (comments and keep-alives skipped); `None` at the end.
    pub async fn next(&mut self) -> Option<Sse> {
        loop {
            if let Some(end) = self.buf.find("\n\n") {
                let block: String = self.buf.drain(..end + 2).collect();
                let mut ev = Sse {
                    id: None,
                    data: String::new(),
                };
                for line in block.lines() {
                    if let Some(v) = line.strip_prefix("id:") {
                        ev.id = Some(v.trim().to_string());
                    } else if let Some(v) = line.strip_prefix("data:") {
                        if !ev.data.is_empty() {
                            ev.data.push('\n');
                        }
                        ev.data.push_str(v.strip_prefix(' ').unwrap_or(v));
                    }
                }
                if !ev.data.is_empty() {
                    return Some(ev);
                }
                continue;
            }
            let chunk = tokio::time::timeout(Duration::from_secs(60), self.resp.chunk())
                .await
                .ok()?
                .ok()??;
            self.buf.push_str(&String::from_utf8_lossy(&chunk));
        }
    }
}
