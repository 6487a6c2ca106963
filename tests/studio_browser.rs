//! The studio in a real browser (headless Chromium over WebDriver, see `tests/studio/`)
//! against a real `tunewright serve`: one browser session walks through what a user does —
//! create a project, upload the sample dataset through the file input, get the catalog's toast
//! for bad split ratios and for a training refused at admission, start a training on the tiny
//! Llama and watch its curve gain points live, reload mid-run and find no gap and no repeated
//! point, see an injected out-of-memory failure become a resume card with suggestions, export
//! the adapter and download it. Every page passes the checks of `Browser::check_page`.

mod studio;
mod support;
mod training;

use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use studio::Browser;
use support::{Options, Server};
use training::*;

/// The injected OOM's step: beyond the first training's steps, within the second's.
const OOM_AT_STEP: u64 = 90;
const FIRST_STEPS: u64 = 80;

async fn api_job(s: &Server, id: &str) -> Value {
    job(s, id).await
}

/// The job id of a `/jobs/{id}` path.
fn job_of(path: &str) -> String {
    path.strip_prefix("/jobs/")
        .unwrap_or_else(|| panic!("not a job page: {path}"))
        .to_string()
}

/// Fill the training form's fields (by id) and submit it.
async fn submit_training(b: &Browser, fields: &[(&str, String)]) {
    b.type_into("#f-base_model", &fixture("tiny-llama").to_string_lossy())
        .await;
    for (name, value) in fields {
        b.set_value(&format!("f-{name}"), value).await;
    }
    b.click("#train-form button[type=submit]").await;
}

fn tiny_fields(max_steps: u64, split: &str) -> Vec<(&'static str, String)> {
    vec![
        ("split", split.to_string()),
        ("max_steps", max_steps.to_string()),
        ("per_device_train_batch_size", "2".into()),
        ("gradient_accumulation_steps", "2".into()),
        ("max_seq_length", "64".into()),
        ("learning_rate", "0.001".into()),
        ("device", "cpu".into()),
        ("checkpoint_every_steps", "8".into()),
        ("eval_steps", "8".into()),
        ("logging_steps", "1".into()),
        ("seed", "7".into()),
    ]
}

/// The first toast's `(code, detail)` once one shows.
async fn toast(b: &Browser) -> (String, String) {
    let v = b
        .wait_for(
            "(function(){var t = document.querySelector('#toasts .toast'); return t && [t.dataset.errorCode, t.querySelector('.toast-detail').textContent.trim()];})()",
            30,
        )
        .await;
    (
        v[0].as_str().unwrap_or_default().to_string(),
        v[1].as_str().unwrap_or_default().to_string(),
    )
}

async fn dismiss_toasts(b: &Browser) {
    while b
        .js("return document.querySelectorAll('#toasts .toast').length")
        .await
        != json!(0)
    {
        b.click("#toasts .toast .toast-close").await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_trains_watches_fails_and_downloads_in_the_studio() {
    let s = Server::start_with(
        single_threaded(Options::default())
            .env("TUNEWRIGHT_FAULT_OOM_AT_STEP", &OOM_AT_STEP.to_string()),
    )
    .await;
    let mut b = Browser::start(&s.base).await;

    // The dashboard, then a new project through its form.
    b.goto("/").await;
    b.wait_for(
        "document.querySelector('#hardware dl, #hardware .toast')",
        120,
    )
    .await;
    b.check_page("dashboard").await;
    b.type_into("#new-project", "support-bot").await;
    b.click("form[action='/projects'] button").await;
    b.wait_for("location.pathname.startsWith('/projects/prj_')", 30)
        .await;
    let project = b.path().await.trim_start_matches("/projects/").to_string();

    // The sample dataset through the file input.
    b.type_into(
        "#dataset-file",
        &fixture("sft-sample.jsonl").to_string_lossy(),
    )
    .await;
    b.click("#dataset form.dropzone button").await;
    let n = b
        .wait_for("document.querySelector('[data-testid=num-examples]') && document.querySelector('[data-testid=num-examples]').textContent", 30)
        .await;
    assert_eq!(n, json!("273"));

    // Ratios that do not sum to 1: the catalog's message in a toast, dismissible.
    b.type_into("#split-val", "0.3").await;
    b.click("#split-form button").await;
    let (code, detail) = toast(&b).await;
    assert_eq!(code, "VALIDATION_ERROR");
    assert!(
        detail.contains("Ratios must sum to 1.0, got 1.2"),
        "{detail}"
    );
    dismiss_toasts(&b).await;
    b.expect_refusals_logged(&[400]).await;
    b.type_into("#split-val", "0.1").await;
    b.click("#split-form button").await;
    b.wait_for("document.querySelector('#dataset table') && document.querySelector('#dataset table').textContent.includes('train 0.8')", 30)
        .await;
    b.check_page("project").await;

    // A training the admission refuses (a split the project does not have): a toast with
    // its code, repeated next to the form.
    submit_training(&b, &tiny_fields(FIRST_STEPS, "nope")).await;
    let (code, detail) = toast(&b).await;
    assert_eq!(code, "SPLIT_NOT_FOUND", "{detail}");
    assert!(detail.contains("'nope'"), "{detail}");
    let inline = b.wait_for("!document.getElementById('train-error').hidden && document.getElementById('train-error').textContent", 10).await;
    assert!(
        inline
            .as_str()
            .unwrap_or_default()
            .starts_with("SPLIT_NOT_FOUND"),
        "{inline}"
    );
    dismiss_toasts(&b).await;
    b.expect_refusals_logged(&[400, 404]).await;

    // A training that fits: its page draws points as they come, without a reload.
    submit_training(&b, &tiny_fields(FIRST_STEPS, "main")).await;
    b.wait_for("location.pathname.startsWith('/jobs/job_')", 30)
        .await;
    let first = job_of(&b.path().await);
    b.wait_for(
        "document.getElementById('live-state').textContent === 'live'",
        30,
    )
    .await;
    let seen = b
        .wait_for("Number(document.getElementById('charts').dataset.points) >= 2 && Number(document.getElementById('charts').dataset.points)", 120)
        .await
        .as_u64()
        .unwrap_or(0);
    b.wait_for(
        &format!("Number(document.getElementById('charts').dataset.points) > {seen}"),
        60,
    )
    .await;
    let running = api_job(&s, &first).await;
    assert_eq!(
        running["status"], "running",
        "the reload below must come mid-run: {running}"
    );
    b.screenshot("job-running").await;

    // Reload mid-run: the page starts from what the log holds and continues live.
    b.client.refresh().await.expect("reload");
    let at_reload = b
        .wait_for("document.getElementById('charts') && Number(document.getElementById('charts').dataset.points)", 30)
        .await;
    assert!(
        at_reload.as_u64().unwrap_or(0) < FIRST_STEPS,
        "the reload came before the end: {at_reload}"
    );
    b.wait_for(
        "document.getElementById('live-state').textContent === 'finished'",
        180,
    )
    .await;
    b.wait_for(
        "document.querySelector('#job-summary').dataset.status === 'success'",
        30,
    )
    .await;
    let steps = b
        .js("return Array.from(window.tunewrightCurves.loss.keys()).sort((a, b) => a - b);")
        .await;
    let expected: Vec<u64> = (1..=FIRST_STEPS).collect();
    assert_eq!(steps, json!(expected), "every step once, no gap");
    assert_eq!(
        b.js("return window.tunewrightCurves.repeated").await,
        json!(0),
        "no point arrived twice"
    );
    b.check_page("job").await;

    // Export the adapter and download it: the bytes hash to the sha256 the page shows.
    b.click("#export-button").await;
    b.wait_for(
        &format!("location.pathname.startsWith('/jobs/') && location.pathname !== '/jobs/{first}'"),
        30,
    )
    .await;
    let export = job_of(&b.path().await);
    b.wait_for(
        "document.querySelector('#job-summary').dataset.status === 'success'",
        180,
    )
    .await;
    let link = b
        .wait_for("(function(){var a = Array.from(document.querySelectorAll('#artifacts a')).find(a => a.textContent.trim() === 'adapter_model.safetensors'); return a && [a.getAttribute('href'), a.dataset.sha256];})()", 60)
        .await;
    let (href, sha) = (link[0].as_str().unwrap(), link[1].as_str().unwrap());
    let bytes = s.get(href).await.bytes().await.expect("download");
    assert!(bytes.len() > 1000, "an adapter: {} bytes", bytes.len());
    assert_eq!(hex::encode(Sha256::digest(&bytes)), sha);
    assert_eq!(api_job(&s, &export).await["status"], "success");
    b.check_page("export").await;

    // An out-of-memory failure: the job page turns into a resume card with the analysis,
    // its suggestions and the verified checkpoints.
    b.goto(&format!("/projects/{project}")).await;
    let mut fields = tiny_fields(OOM_AT_STEP + 10, "main");
    fields.retain(|(k, _)| *k != "eval_steps");
    // A rank the analysis offers to halve: a change no checkpoint can carry.
    fields.push(("lora_r", "16".into()));
    fields.push(("lora_alpha", "32".into()));
    submit_training(&b, &fields).await;
    b.wait_for("location.pathname.startsWith('/jobs/job_')", 30)
        .await;
    let oom = job_of(&b.path().await);
    b.wait_for("document.getElementById('resume-card')", 180)
        .await;
    let card = b
        .js("return document.getElementById('resume-card').innerText")
        .await;
    let card = card.as_str().unwrap_or_default();
    assert!(card.contains("TRAINING_OOM"), "{card}");
    assert!(card.contains("Confidence"), "{card}");
    assert!(card.contains("per_device_train_batch_size"), "{card}");
    let last_ckpt = (OOM_AT_STEP - 1) / 8 * 8;
    assert!(card.contains("sha256 ok"), "{card}");
    assert_eq!(
        b.js("return document.getElementById('resume-button').textContent")
            .await,
        json!(format!("Resume from step {last_ckpt}"))
    );
    // A suggestion a checkpoint cannot carry: the card says so before the click.
    let restart = b
        .js("var box = Array.from(document.querySelectorAll('input[name=suggestion]')).find(b => b.dataset.keys.split(',').includes('lora_r')); return box ? box.id : null;")
        .await;
    if let Some(id) = restart.as_str() {
        b.click(&format!("#{id}")).await;
        let note = b.wait_for("!document.getElementById('restart-note').hidden && document.getElementById('restart-note').textContent", 5).await;
        assert!(
            note.as_str()
                .unwrap_or_default()
                .contains("Starts from step 0"),
            "{note}"
        );
        assert_eq!(
            b.js("return document.getElementById('resume-button').textContent")
                .await,
            json!("Start again from step 0")
        );
        b.click(&format!("#{id}")).await;
    } else {
        panic!("the OOM analysis suggests a smaller rank: {card}");
    }
    assert_eq!(
        api_job(&s, &oom).await["error"]["error_code"],
        "TRAINING_OOM"
    );
    b.check_page("resume-card").await;

    // Resume from the checkpoint with the smaller micro-batch ticked: a new, linked job that
    // starts from that step and succeeds.
    let batch = b
        .js("var box = Array.from(document.querySelectorAll('input[name=suggestion]')).find(b => b.dataset.keys.split(',').includes('per_device_train_batch_size')); return box ? box.id : null;")
        .await;
    let batch = batch
        .as_str()
        .unwrap_or_else(|| panic!("the OOM analysis suggests a smaller micro-batch: {card}"))
        .to_string();
    b.click(&format!("#{batch}")).await;
    assert_eq!(
        b.js("return document.getElementById('resume-button').textContent")
            .await,
        json!(format!("Resume from step {last_ckpt}"))
    );
    b.click("#resume-button").await;
    b.wait_for(
        &format!(
            "location.pathname.startsWith('/jobs/job_') && !location.pathname.includes('{oom}')"
        ),
        30,
    )
    .await;
    let resumed = job_of(&b.path().await);
    let done = finished(&s, &resumed).await;
    assert_eq!(done["status"], "success", "{done}");
    assert_eq!(done["resumed_from_job"], oom.as_str(), "{done}");
    assert_eq!(done["resume_from_step"], last_ckpt, "{done}");
    assert_eq!(done["resumed_from_step"], last_ckpt, "{done}");
    assert_eq!(
        api_job(&s, &oom).await["resumed_by_jobs"],
        json!([resumed]),
        "the failed job shows its continuation"
    );
    b.check_page("resumed").await;

    // Compare the project's runs.
    b.goto(&format!("/projects/{project}/compare")).await;
    let rows = b
        .wait_for("document.querySelectorAll('#runs tbody tr').length", 10)
        .await;
    assert_eq!(
        rows,
        json!(3),
        "the first run, the failed one and its continuation"
    );
    b.wait_for("document.querySelector('#compare-chart canvas')", 10)
        .await;
    b.check_page("compare").await;

    b.quit().await;
}
