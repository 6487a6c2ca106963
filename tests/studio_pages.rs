//! The studio over plain HTTP against a real `tunewright serve`: every page and fragment
//! renders (each template, the resume card of a real failure included), the sign-in door and
//! its cookie, the same-origin rule, artifact downloads limited to recorded artifacts, error
//! toasts aimed at the toast area, every logged training step in the log, and the per-job
//! Prometheus gauges and step-time histogram; a training that ends with no page open has its
//! reading saved for the first view after a restart.

mod support;
mod training;

use serde_json::{json, Value};
use support::{Options, Server};
use training::*;

async fn html(s: &Server, path: &str) -> (u16, String) {
    let r = s
        .client
        .get(s.url(path))
        .header("accept", "text/html")
        .send()
        .await
        .expect("request");
    let status = r.status().as_u16();
    let ct = r
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let body = r.text().await.expect("body");
    if status == 200 {
        assert!(ct.starts_with("text/html"), "{path}: {ct}");
    }
    (status, body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_page_and_fragment_renders() {
    let s = Server::start_with(
        single_threaded(Options::default()).env("TUNEWRIGHT_FAULT_OOM_AT_STEP", "8"),
    )
    .await;
    let p = project_with_dataset(&s, "pages <b>&</b>").await;
    // A training that runs out of memory at step 8: a failed job with an analysis and
    // checkpoints to resume from.
    let failed = submit_train(&s, &p, train_config(10, 3)).await;
    let done = finished(&s, &failed).await;
    assert_eq!(done["status"], "failed", "{done}");
    let mut config = train_config(6, 3);
    config["learning_rate"] = json!(0.0005);
    let ok = submit_train(&s, &p, config).await;
    assert_eq!(finished(&s, &ok).await["status"], "success");

    let (st, body) = html(&s, "/").await;
    assert_eq!(st, 200);
    assert!(
        body.contains("pages &lt;b&gt;&amp;&lt;&#x2f;b&gt;"),
        "names are escaped"
    );
    assert!(!body.contains("<b>&</b>"));
    let (st, body) = html(&s, "/hardware").await;
    assert_eq!(st, 200);
    assert!(
        body.contains("CPU threads") || body.contains("GPU_PROBE_FAILED"),
        "{body}"
    );
    let (st, body) = html(&s, &format!("/projects/{p}")).await;
    assert_eq!(st, 200);
    for field in [
        "base_model",
        "lora_r",
        "remediate_divergence",
        "logging_steps",
    ] {
        assert!(body.contains(&format!("id=\"f-{field}\"")), "{field}");
    }
    assert!(body.contains("273"), "the dataset's examples");
    let (st, body) = html(&s, &format!("/projects/{p}/compare")).await;
    assert_eq!(st, 200);
    assert!(
        body.contains("<code>learning_rate</code>"),
        "the differing field: {body}"
    );
    assert!(
        !body.contains("<code>seed</code>"),
        "fields that agree are not listed"
    );

    // The failed training's page carries the resume card with the analysis.
    let (st, body) = html(&s, &format!("/jobs/{failed}")).await;
    assert_eq!(st, 200);
    assert!(body.contains("id=\"resume-card\""), "{body}");
    assert!(body.contains("TRAINING_OOM"), "{body}");
    assert!(body.contains("Confidence"));
    assert!(body.contains("sha256 ok"), "verified checkpoints: {body}");
    assert!(body.contains("Resume from step 6"), "{body}");
    let (st, body) = html(&s, &format!("/jobs/{failed}/summary")).await;
    assert_eq!(st, 200);
    assert!(body.starts_with("\n<section") || body.contains("id=\"job-summary\""));

    // The successful one: curves from every step, its story, no card.
    let (st, body) = html(&s, &format!("/jobs/{ok}")).await;
    assert_eq!(st, 200);
    assert!(!body.contains("id=\"resume-card\""));
    assert!(body.contains("job_succeeded"), "the story");
    let (st, body) = html(&s, &format!("/jobs/{ok}/story")).await;
    assert_eq!(st, 200);
    assert!(body.contains("attempt 1 started"), "{body}");
    let curves: Value = s
        .get(&format!("/jobs/{ok}/curves"))
        .await
        .json()
        .await
        .expect("curves JSON");
    assert_eq!(
        curves["curves"]["loss"][0],
        json!([1, 2, 3, 4, 5, 6]),
        "{curves}"
    );
    assert_eq!(curves["curves"]["recorded_steps"], 6);
    assert!(curves["through_seq"].as_u64().unwrap() > 0);
    let progress = of_type(&events(&s, &ok).await, "job_progress").len();
    assert_eq!(progress, 6, "every logged step is in the log");

    // Static files, and errors as pages for a browser without htmx.
    for (name, ct) in [
        ("htmx.min.js", "text/javascript"),
        ("uPlot.iife.min.js", "text/javascript"),
        ("uPlot.min.css", "text/css"),
        ("studio.css", "text/css"),
        ("studio.js", "text/javascript"),
        ("charts.js", "text/javascript"),
    ] {
        let r = s.get(&format!("/static/{name}")).await;
        assert_eq!(r.status(), 200, "{name}");
        let got = r.headers()["content-type"].to_str().unwrap().to_string();
        assert!(got.starts_with(ct), "{name}: {got}");
    }
    assert_eq!(
        s.get("/static/axe.min.js").await.status(),
        404,
        "axe-core is for tests only"
    );
    let (st, body) = html(&s, "/jobs/job_00000000000000000000000000000000").await;
    assert_eq!(st, 404);
    assert!(
        body.contains("JOB_NOT_FOUND") && body.contains("<html"),
        "{body}"
    );
}

#[tokio::test]
async fn errors_of_htmx_requests_are_toasts_for_the_toast_area() {
    let s = Server::start().await;
    let p = project_with_dataset(&s, "toasts").await;
    let r = s
        .client
        .post(s.url(&format!("/projects/{p}/splits")))
        .header("hx-request", "true")
        .form(&[
            ("name", "main"),
            ("train", "0.8"),
            ("val", "0.3"),
            ("test", ""),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(r.headers()["hx-retarget"], "#toasts");
    assert_eq!(r.headers()["hx-reswap"], "afterbegin");
    let body = r.text().await.unwrap();
    assert!(
        body.contains("data-error-code=\"VALIDATION_ERROR\""),
        "{body}"
    );
    assert!(body.contains("Ratios must sum to 1.0, got 1.1"), "{body}");
    // A dataset with a bad line: the toast names the line.
    let bad = "{\"instruction\": \"a\", \"output\": \"b\"}\nnot json\n";
    let form = reqwest::multipart::Form::new().part(
        "file",
        reqwest::multipart::Part::bytes(bad.as_bytes().to_vec()).file_name("bad.jsonl"),
    );
    let r = s
        .client
        .post(s.url(&format!("/projects/{p}/dataset")))
        .header("hx-request", "true")
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let body = r.text().await.unwrap();
    assert!(body.contains("DATASET_UPLOAD_INVALID"), "{body}");
    assert!(body.contains("Dataset line 2:"), "{body}");
    // A good split answers the refreshed dataset section.
    let r = s
        .client
        .post(s.url(&format!("/projects/{p}/splits")))
        .header("hx-request", "true")
        .form(&[("name", "main"), ("train", "0.8"), ("val", "0.2")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.text().await.unwrap().contains("id=\"dataset\""));
}

#[tokio::test]
async fn state_changes_from_another_origin_are_refused() {
    let s = Server::start().await;
    let r = s
        .client
        .post(s.url("/projects"))
        .header("origin", "http://evil.example")
        .form(&[("name", "csrf")])
        .send()
        .await
        .unwrap();
    support::expect_error(r, 403, "CROSS_ORIGIN_REFUSED").await;
    let r = s
        .client
        .post(s.url("/projects"))
        .header("sec-fetch-site", "cross-site")
        .form(&[("name", "csrf")])
        .send()
        .await
        .unwrap();
    support::expect_error(r, 403, "CROSS_ORIGIN_REFUSED").await;
    let projects: Value = s.get("/api/v1/projects").await.json().await.unwrap();
    assert_eq!(projects["items"], json!([]), "nothing was created");
    let no_redirects = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let r = no_redirects
        .post(s.url("/projects"))
        .header("origin", s.base.as_str())
        .header("sec-fetch-site", "same-origin")
        .form(&[("name", "mine")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    assert!(r.headers()["location"]
        .to_str()
        .unwrap()
        .starts_with("/projects/prj_"));
}

#[tokio::test]
async fn with_a_token_the_studio_signs_in_with_an_http_only_strict_cookie() {
    let s = Server::start_with(Options::default().env("TUNEWRIGHT_TOKEN", "s3cret")).await;
    let no_redirects = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let r = no_redirects.get(s.url("/")).send().await.unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(r.headers()["location"], "/login?next=/");
    let (st, body) = html(&s, "/login?next=/").await;
    assert_eq!(st, 200);
    assert!(body.contains("type=\"password\""));

    let r = no_redirects
        .post(s.url("/login"))
        .form(&[("token", "wrong"), ("next", "/")])
        .send()
        .await
        .unwrap();
    support::expect_error(r, 401, "UNAUTHORIZED").await;
    let r = no_redirects
        .post(s.url("/login"))
        .form(&[("token", "s3cret"), ("next", "//evil.example")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(r.headers()["location"], "/", "never an open redirect");
    let cookie = r.headers()["set-cookie"].to_str().unwrap().to_string();
    assert!(cookie.contains("HttpOnly"), "{cookie}");
    assert!(cookie.contains("SameSite=Strict"), "{cookie}");
    let session = cookie.split(';').next().unwrap().to_string();

    let signed = |req: reqwest::RequestBuilder| req.header("cookie", session.clone());
    let r = signed(no_redirects.get(s.url("/"))).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.text().await.unwrap().contains("Sign out"));
    // The cookie admits the browser to the API too (the live event stream needs it) ...
    let r = signed(no_redirects.get(s.url("/api/v1/projects")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // ... but a state change on its strength must come from the service's own pages.
    let r = signed(no_redirects.post(s.url("/api/v1/projects")))
        .header("origin", "http://evil.example")
        .json(&json!({"name": "x"}))
        .send()
        .await
        .unwrap();
    support::expect_error(r, 403, "CROSS_ORIGIN_REFUSED").await;
    let r = signed(no_redirects.post(s.url("/api/v1/projects")))
        .header("origin", s.base.as_str())
        .json(&json!({"name": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    // Without the cookie: the API wants its token, htmx gets a toast.
    let r = no_redirects
        .get(s.url("/api/v1/projects"))
        .send()
        .await
        .unwrap();
    support::expect_error(r, 401, "UNAUTHORIZED").await;
    let r = no_redirects
        .get(s.url("/hardware"))
        .header("hx-request", "true")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    // Signing out ends the session.
    let r = signed(no_redirects.post(s.url("/logout")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let r = signed(no_redirects.get(s.url("/"))).send().await.unwrap();
    assert_eq!(r.status(), 303);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn downloads_serve_only_recorded_artifacts_and_metrics_follow_a_running_training() {
    let s = Server::start_with(single_threaded(Options::default())).await;
    let p = project_with_dataset(&s, "artifacts").await;
    let id = submit_train(&s, &p, train_config(40, 20)).await;
    // While it runs: its gauges, labelled with its id, and the step-time histogram.
    let mut seen = false;
    for _ in 0..600 {
        let text = s.get("/metrics").await.text().await.unwrap();
        if text.contains(&format!("tunewright_job_step{{job_id=\"{id}\"}}"))
            && text.contains(&format!("tunewright_job_loss{{job_id=\"{id}\"}}"))
            && text.contains("tunewright_training_step_seconds_bucket")
        {
            seen = true;
            break;
        }
        if is_terminal(&job(&s, &id).await) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(seen, "per-job gauges while running");
    assert_eq!(finished(&s, &id).await["status"], "success");

    let r = s
        .post_json(
            &format!("/api/v1/projects/{p}/jobs"),
            json!({"kind": "export", "config": {"format": "peft", "train_job_id": id}}),
        )
        .await;
    let export: Value = r.json().await.unwrap();
    let export = export["id"].as_str().unwrap().to_string();
    let done = finished(&s, &export).await;
    assert_eq!(done["status"], "success", "{done}");
    let arts: Value = s
        .get(&format!("/api/v1/jobs/{export}/artifacts"))
        .await
        .json()
        .await
        .unwrap();
    let first = &arts["items"][0];
    let name = first["name"].as_str().unwrap();
    let r = s.get(&format!("/jobs/{export}/artifacts/{name}")).await;
    assert_eq!(r.status(), 200);
    assert!(r.headers()["content-disposition"]
        .to_str()
        .unwrap()
        .starts_with("attachment"));
    let bytes = r.bytes().await.unwrap();
    use sha2::Digest;
    assert_eq!(hex::encode(sha2::Sha256::digest(&bytes)), first["sha256"]);
    for bad in ["..%2F..%2Fevents.redb", "events.redb", "nope"] {
        let r = s.get(&format!("/jobs/{export}/artifacts/{bad}")).await;
        support::expect_error(r, 404, "NOT_FOUND").await;
    }
    let r = s.get(&format!("/jobs/{id}/artifacts/{name}")).await;
    support::expect_error(r, 404, "NOT_FOUND").await;
}

/// The studio follows the log: a training that ends while no page is open is read, and its
/// reading saved beside it (docs/studio.md), so a restart serves its first view from that.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_training_that_ends_unviewed_has_its_reading_saved() {
    let s = Server::start_with(single_threaded(Options::default())).await;
    let p = project_with_dataset(&s, "unviewed").await;
    let id = submit_train(&s, &p, train_config(6, 1000)).await;
    let done = finished(&s, &id).await;
    assert_eq!(done["status"], "success", "{done}");
    let saved = s.data_dir.join(format!("jobs/{id}/studio-reading.bin"));
    for _ in 0..200 {
        if saved.is_file() {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("{} was not written", saved.display());
}
