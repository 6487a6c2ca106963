//! The event feed seen from outside: pages of `GET /api/v1/events`, and the live
//! `GET /api/v1/events/stream` delivering every event once, in order, across a reconnect
//! with `Last-Event-ID`.

mod support;

use support::{expect_error, Server, SseReader};

async fn open_stream(s: &Server, last_id: Option<u64>, query: &str) -> SseReader {
    let mut req = s
        .client
        .get(s.url(&format!("/api/v1/events/stream{query}")));
    if let Some(id) = last_id {
        req = req.header("Last-Event-ID", id.to_string());
    }
    let r = req.send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/event-stream"));
    SseReader::new(r)
}

#[tokio::test]
async fn events_page_by_seq_and_stream() {
    let s = Server::start().await;
    let a = s.create_project("a").await;
    let b = s.create_project("b").await;
    assert_eq!(s.upload(&a, "x.txt", b"x".to_vec()).await.status(), 201);
    let all: serde_json::Value = s
        .get("/api/v1/events?limit=1000")
        .await
        .json()
        .await
        .unwrap();
    let items = all["items"].as_array().unwrap();
    let seqs: Vec<u64> = items.iter().map(|e| e["seq"].as_u64().unwrap()).collect();
    assert_eq!(seqs, (1..=seqs.len() as u64).collect::<Vec<_>>());
    assert_eq!(items[0]["type"], "service_started");
    assert_eq!(items[0]["stream"], "service");
    assert!(items[0]["ts"].as_str().unwrap().ends_with('Z'));
    assert!(all["next"].is_null());
    // Pages of one follow `next`.
    let first: serde_json::Value = s.get("/api/v1/events?limit=1").await.json().await.unwrap();
    assert_eq!(first["next"], 1);
    let second: serde_json::Value = s
        .get("/api/v1/events?limit=1&after=1")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(second["items"][0]["seq"], 2);
    // One stream only.
    let only_a: serde_json::Value = s
        .get(&format!("/api/v1/events?stream={a}"))
        .await
        .json()
        .await
        .unwrap();
    let types: Vec<&str> = only_a["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap())
        .collect();
    assert_eq!(types, ["project_created", "file_uploaded"]);
    assert!(only_a["items"]
        .as_array()
        .unwrap()
        .iter()
        .all(|e| e["stream"] == a.as_str()));
    let _ = b;
    expect_error(
        s.get("/api/v1/events?limit=5000").await,
        400,
        "VALIDATION_ERROR",
    )
    .await;
}

#[tokio::test]
async fn the_stream_resumes_without_gap_or_duplicate() {
    let s = Server::start().await;
    // From the start of the log.
    let mut sse = open_stream(&s, None, "?after=0").await;
    let mut received: Vec<u64> = Vec::new();
    let first = sse.next().await.unwrap();
    assert_eq!(first.id.as_deref(), Some("1"));
    received.push(1);
    // Events made while connected arrive live.
    for i in 0..10 {
        s.create_project(&format!("live {i}")).await;
    }
    while received.len() < 11 {
        let e = sse.next().await.expect("event");
        let v: serde_json::Value = serde_json::from_str(&e.data).unwrap();
        let seq = v["seq"].as_u64().unwrap();
        assert_eq!(e.id, Some(seq.to_string()));
        received.push(seq);
    }
    // Disconnect; events happen while away; reconnect with the last id seen.
    drop(sse);
    for i in 0..25 {
        s.create_project(&format!("away {i}")).await;
    }
    let last = *received.last().unwrap();
    let mut sse = open_stream(&s, Some(last), "").await;
    // More while reconnected, concurrently with the catch-up.
    let writer = {
        let (base, client) = (s.base.clone(), s.client.clone());
        tokio::spawn(async move {
            for i in 0..25 {
                let r = client
                    .post(format!("{base}/api/v1/projects"))
                    .json(&serde_json::json!({"name": format!("during {i}")}))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(r.status(), 201);
            }
        })
    };
    writer.await.unwrap();
    let total = 1 + 10 + 25 + 25;
    while received.len() < total {
        let e = sse.next().await.expect("event");
        received.push(e.id.unwrap().parse().unwrap());
    }
    assert_eq!(
        received,
        (1..=total as u64).collect::<Vec<_>>(),
        "gap, duplicate or disorder"
    );
}

#[tokio::test]
async fn the_stream_filters_by_stream_and_checks_its_inputs() {
    let s = Server::start().await;
    let a = s.create_project("a").await;
    let mut sse = open_stream(&s, Some(0), &format!("?stream={a}")).await;
    s.create_project("other").await;
    assert_eq!(s.upload(&a, "x.txt", b"x".to_vec()).await.status(), 201);
    let e1: serde_json::Value = serde_json::from_str(&sse.next().await.unwrap().data).unwrap();
    let e2: serde_json::Value = serde_json::from_str(&sse.next().await.unwrap().data).unwrap();
    assert_eq!(
        (e1["type"].as_str(), e2["type"].as_str()),
        (Some("project_created"), Some("file_uploaded"))
    );
    let r = s
        .client
        .get(s.url("/api/v1/events/stream"))
        .header("Last-Event-ID", "abc")
        .send()
        .await
        .unwrap();
    expect_error(r, 400, "VALIDATION_ERROR").await;
    expect_error(
        s.get("/api/v1/events/stream?stream=bogus").await,
        400,
        "VALIDATION_ERROR",
    )
    .await;
}
