//! A real browser for the studio's tests: headless Chromium driven over WebDriver
//! (`chromedriver`, Debian's `chromium` and `chromium-driver`, installed by
//! `script/install-test-tools`). A machine without them fails these tests with that hint; it
//! never skips them.
//!
//! Every page a test visits can be checked the same way (`Browser::check_page`): no console
//! error, no request to another origin, no serious or critical accessibility violation
//! (axe-core, vendored under `src/studio/assets/vendor/`, injected here and never served), no
//! horizontal scrolling on a 390 px phone, and a 1280x800 screenshot saved under
//! `target/screenshots/`.

#![allow(dead_code)]

use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{json, Value};

pub const CHROMIUM: &str = "/usr/bin/chromium";
pub const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// A chromedriver process and one browser session on it.
pub struct Browser {
    pub client: Client,
    driver: Child,
    driver_url: String,
    pub origin: String,
    http: reqwest::Client,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

pub fn screenshots_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("target/screenshots")
}

impl Browser {
    /// Start chromedriver and a headless Chromium at 1280x800, for pages of `origin`.
    pub async fn start(origin: &str) -> Browser {
        for tool in [CHROMIUM, CHROMEDRIVER] {
            assert!(
                Path::new(tool).exists(),
                "{tool} is missing: run script/install-test-tools (apt: chromium chromium-driver)"
            );
        }
        let port = free_port();
        // Its own process group, which the Chromium it starts joins: a test that panics
        // still ends them all (`Drop`).
        let driver = Command::new(CHROMEDRIVER)
            .process_group(0)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromedriver");
        let driver_url = format!("http://127.0.0.1:{port}");
        let http = reqwest::Client::new();
        let started = Instant::now();
        while http
            .get(format!("{driver_url}/status"))
            .send()
            .await
            .is_err()
        {
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "chromedriver did not start"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let caps = json!({
            "goog:chromeOptions": {
                "binary": CHROMIUM,
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                         "--window-size=1280,800", "--lang=en-US"],
            },
            "goog:loggingPrefs": {"browser": "ALL"},
        });
        let Value::Object(caps) = caps else {
            unreachable!()
        };
        let client = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(caps)
            .connect(&driver_url)
            .await
            .expect("a WebDriver session");
        let mut b = Browser {
            client,
            driver,
            driver_url,
            origin: origin.trim_end_matches('/').to_string(),
            http,
        };
        b.set_size(1280, 800).await;
        b
    }

    pub async fn set_size(&mut self, width: u32, height: u32) {
        self.client
            .set_window_size(width, height)
            .await
            .expect("window size");
    }

    pub async fn goto(&self, path: &str) {
        self.client
            .goto(&format!("{}{path}", self.origin))
            .await
            .expect("navigate");
    }

    pub async fn path(&self) -> String {
        self.client
            .current_url()
            .await
            .expect("url")
            .path()
            .to_string()
    }

    /// Run `script` (a function body) and return its value.
    pub async fn js(&self, script: &str) -> Value {
        self.client
            .execute(script, vec![])
            .await
            .unwrap_or_else(|e| panic!("script failed: {e}\n{script}"))
    }

    /// Poll `expr` (a JS expression) until it is truthy; its value. Panics after `secs`.
    pub async fn wait_for(&self, expr: &str, secs: u64) -> Value {
        let started = Instant::now();
        loop {
            let v = self
                .client
                .execute(
                    &format!("try {{ return ({expr}); }} catch (e) {{ return null; }}"),
                    vec![],
                )
                .await
                .unwrap_or(Value::Null);
            let truthy = match &v {
                Value::Null => false,
                Value::Bool(b) => *b,
                Value::Number(n) => n.as_f64().is_some_and(|x| x != 0.0),
                Value::String(s) => !s.is_empty(),
                _ => true,
            };
            if truthy {
                return v;
            }
            if started.elapsed() > Duration::from_secs(secs) {
                let body = self
                    .js("return document.body ? document.body.innerText.slice(0, 3000) : ''")
                    .await;
                panic!(
                    "waited {secs} s for `{expr}` on {}; page text:\n{body}",
                    self.path().await
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Click the element `css`. A live panel may be swapped by htmx between finding the element
    /// and clicking it (a stale element): it is found again, as a person would click again.
    pub async fn click(&self, css: &str) {
        for _ in 0..20 {
            let el = self
                .client
                .find(Locator::Css(css))
                .await
                .unwrap_or_else(|e| panic!("no {css}: {e}"));
            match el.click().await {
                Ok(_) => return,
                Err(e) if e.to_string().contains("stale element") => {
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                }
                Err(e) => panic!("click {css}: {e}"),
            }
        }
        panic!("click {css}: the element kept being replaced");
    }

    /// Type `text` into the input `css` (cleared first).
    pub async fn type_into(&self, css: &str, text: &str) {
        let el = self
            .client
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("no {css}: {e}"));
        el.clear().await.expect("clear");
        el.send_keys(text).await.expect("type");
    }

    /// Set a form field's value by script (for fields inside a closed `<details>`).
    pub async fn set_value(&self, id: &str, value: &str) {
        let script = format!(
            "var e = document.getElementById({}); e.value = {}; return e.value;",
            json!(id),
            json!(value)
        );
        assert_eq!(self.js(&script).await, json!(value), "field {id}");
    }

    /// The browser's console messages of level SEVERE since the last call.
    pub async fn console_errors(&self) -> Vec<String> {
        let id = self
            .client
            .session_id()
            .await
            .ok()
            .flatten()
            .expect("session id");
        let r = self
            .http
            .post(format!("{}/session/{id}/se/log", self.driver_url))
            .json(&json!({"type": "browser"}))
            .send()
            .await
            .expect("read the browser log");
        let v: Value = r.json().await.expect("log JSON");
        v["value"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .filter(|e| e["level"] == "SEVERE")
            .map(|e| e["message"].as_str().unwrap_or_default().to_string())
            .collect()
    }

    /// Resources the page loaded from another origin than the service's.
    pub async fn foreign_requests(&self) -> Vec<String> {
        let v = self
            .js("return performance.getEntriesByType('resource').map(e => e.name).concat(performance.getEntriesByType('navigation').map(e => e.name)).filter(n => !n.startsWith(location.origin + '/') && !n.startsWith('data:'));")
            .await;
        serde_json::from_value(v).unwrap_or_default()
    }

    /// axe-core's serious and critical violations on the page.
    pub async fn accessibility_violations(&self) -> Vec<Value> {
        let axe = std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("src/studio/assets/vendor/axe.min.js"),
        )
        .expect("the vendored axe-core");
        self.client
            .execute(&format!("{axe}\nreturn true;"), vec![])
            .await
            .expect("inject axe-core");
        let found = self
            .client
            .execute_async(
                "var done = arguments[arguments.length - 1]; axe.run(document, {resultTypes: ['violations']}).then(r => done(r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.map(n => n.target.join(' ')).slice(0, 5)})))).catch(e => done([{id: 'axe-error', impact: 'critical', help: String(e)}]));",
                vec![],
            )
            .await
            .expect("run axe-core");
        found
            .as_array()
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .filter(|v| matches!(v["impact"].as_str(), Some("serious" | "critical")))
            .collect()
    }

    pub async fn screenshot(&self, name: &str) {
        let png = self.client.screenshot().await.expect("screenshot");
        let dir = screenshots_dir();
        std::fs::create_dir_all(&dir).expect("screenshots dir");
        std::fs::write(dir.join(format!("{name}.png")), png).expect("write screenshot");
    }

    /// Whether the page scrolls sideways at the current window width.
    pub async fn overflows_horizontally(&self) -> Option<String> {
        let v = self
            .js("var w = document.documentElement.clientWidth; var wide = Array.from(document.querySelectorAll('body *')).filter(e => e.getBoundingClientRect().right > w + 1 && !e.closest('.scroll') && getComputedStyle(e).position !== 'absolute').map(e => e.tagName + (e.id ? '#' + e.id : '') + (e.className && typeof e.className === 'string' ? '.' + e.className.split(' ')[0] : '')); return document.documentElement.scrollWidth > w ? ('scrollWidth ' + document.documentElement.scrollWidth + ' > ' + w + ': ' + wide.slice(0, 8).join(', ')) : null;")
            .await;
        v.as_str().map(str::to_owned)
    }

    /// The checks every page passes (see the module's header); screenshots as `name`.
    pub async fn check_page(&mut self, name: &str) {
        let errors = self.console_errors().await;
        assert!(errors.is_empty(), "{name}: console errors: {errors:#?}");
        let foreign = self.foreign_requests().await;
        assert!(
            foreign.is_empty(),
            "{name}: requests to another origin: {foreign:#?}"
        );
        let violations = self.accessibility_violations().await;
        assert!(
            violations.is_empty(),
            "{name}: serious or critical accessibility violations: {}",
            serde_json::to_string_pretty(&violations).unwrap_or_default()
        );
        self.screenshot(name).await;
        self.set_size(390, 844).await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        let overflow = self.overflows_horizontally().await;
        self.screenshot(&format!("{name}-phone")).await;
        self.set_size(1280, 800).await;
        assert!(
            overflow.is_none(),
            "{name}: scrolls sideways on a 390 px phone: {overflow:?}"
        );
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // SAFETY: signals the process group this test started (chromedriver's, see `start`).
        unsafe { libc::kill(-(self.driver.id() as i32), libc::SIGKILL) };
        let _ = self.driver.wait();
    }
}

impl Browser {
    /// End the browser session (Chromium exits) and chromedriver.
    pub async fn quit(self) {
        let _ = self.client.clone().close().await;
    }
}

impl Browser {
    /// Drain the console after an action the server was meant to refuse: Chromium logs each
    /// 4xx answer as an error, and htmx logs its `htmx:responseError`; anything else logged is
    /// a real error.
    pub async fn expect_refusals_logged(&self, statuses: &[u16]) {
        for e in self.console_errors().await {
            let expected = statuses.iter().any(|s| {
                e.contains(&format!("the server responded with a status of {s}"))
                    || e.contains(&format!("Response Status Error Code {s} from"))
            });
            assert!(expected, "unexpected console error: {e:?}");
        }
    }
}
