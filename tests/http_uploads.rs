//! Document uploads seen from outside: limits, names, types, durability, and a SIGKILL in
//! the middle of uploads: no half file is ever referenced, no acknowledged upload is lost.

mod support;

use std::time::Duration;

use futures::StreamExt;
use support::{expect_error, Options, Server};

#[tokio::test]
async fn uploads_are_checked_and_stored() {
    let s = Server::start_with(Options::default().args(&[
        "--max-file-mb",
        "1",
        "--max-project-files-mb",
        "1.5",
    ]))
    .await;
    let p = s.create_project("uploads").await;

    let r = s.upload(&p, "notes.md", b"# Notes\n".to_vec()).await;
    assert_eq!(r.status(), 201);
    let f: serde_json::Value = r.json().await.unwrap();
    assert_eq!(f["name"], "notes.md");
    assert_eq!(f["media_type"], "text/markdown");
    assert_eq!(f["size_bytes"], 8);
    let id = f["id"].as_str().unwrap().to_string();
    let stored = s.data_dir.join("projects").join(&p).join("files").join(&id);
    assert_eq!(std::fs::read(&stored).unwrap(), b"# Notes\n");
    for (name, body, media) in [
        ("a.txt", b"plain".to_vec(), "text/plain"),
        (
            "a.pdf",
            b"%PDF-1.7\n%\xe2\xe3\n".to_vec(),
            "application/pdf",
        ),
        ("a.json", b"{\"a\": 1}".to_vec(), "application/json"),
        (
            "a.jsonl",
            b"{\"a\": 1}\n{\"a\": 2}\n".to_vec(),
            "application/jsonl",
        ),
        ("a.csv", b"a,b\n1,2\n".to_vec(), "text/csv"),
    ] {
        let r = s.upload(&p, name, body).await;
        assert_eq!(r.status(), 201, "{name}");
        let v: serde_json::Value = r.json().await.unwrap();
        assert_eq!(v["media_type"], media, "{name}");
    }

    expect_error(
        s.upload(&p, "empty.txt", Vec::new()).await,
        400,
        "FILE_EMPTY",
    )
    .await;
    for bad in [
        "../../etc/passwd",
        "a/b.txt",
        "/abs.txt",
        "C:\\x.txt",
        "con.txt",
        "..",
    ] {
        expect_error(
            s.upload(&p, bad, b"x".to_vec()).await,
            400,
            "FILE_INVALID_NAME",
        )
        .await;
    }
    expect_error(
        s.upload(&p, "tool.exe", b"MZ\x90\x00".to_vec()).await,
        400,
        "FILE_UNSUPPORTED_TYPE",
    )
    .await;
    expect_error(
        s.upload(&p, "image.txt", b"\x89PNG\r\n\x1a\n\x00\x00".to_vec())
            .await,
        400,
        "FILE_UNSUPPORTED_TYPE",
    )
    .await;
    expect_error(
        s.upload(&p, "fake.pdf", b"not a pdf".to_vec()).await,
        400,
        "FILE_UNSUPPORTED_TYPE",
    )
    .await;

    // Over the per-file limit, with the length declared (as most clients send it): refused
    // before the body is read, and the client, still writing, reads the answer.
    let v = expect_error(
        s.upload(&p, "big.txt", vec![b'a'; 3 * 512 * 1024]).await,
        413,
        "FILE_TOO_LARGE",
    )
    .await;
    assert_eq!(v["context"]["max_size_mb"], 1.0);
    assert!(
        v["context"]["declared_bytes"].as_u64().unwrap() > 3 * 512 * 1024,
        "{v}"
    );
    // Sent chunked (no declared length): refused while streaming, read to its end, so the
    // message gives the file's name and real size.
    let v = expect_error(
        s.upload_chunked(&p, "big.txt", vec![b'a'; 3 * 512 * 1024])
            .await,
        413,
        "FILE_TOO_LARGE",
    )
    .await;
    assert_eq!(v["context"]["actual_size_bytes"], 3 * 512 * 1024, "{v}");
    assert_eq!(
        v["detail"],
        "File 'big.txt' exceeds maximum size of 1.0 MB (actual: 1.5 MB)"
    );
    // Two files of 0.8 MB pass the per-file limit but not the project total.
    assert_eq!(
        s.upload(&p, "part1.txt", vec![b'b'; 800 * 1024])
            .await
            .status(),
        201
    );
    expect_error(
        s.upload(&p, "part2.txt", vec![b'c'; 800 * 1024]).await,
        413,
        "FILE_TOTAL_LIMIT",
    )
    .await;

    // Multipart without the `file` field, and not multipart at all.
    let form = reqwest::multipart::Form::new().text("other", "value");
    let r = s
        .client
        .post(s.url(&format!("/api/v1/projects/{p}/files")))
        .multipart(form)
        .send()
        .await
        .unwrap();
    expect_error(r, 400, "VALIDATION_ERROR").await;
    let r = s
        .client
        .post(s.url(&format!("/api/v1/projects/{p}/files")))
        .body("raw")
        .send()
        .await
        .unwrap();
    expect_error(r, 400, "VALIDATION_ERROR").await;
    // Unknown project.
    let r = s
        .upload(
            "prj_0190f6c4e8a87c3b9d0e5f1a2b3c4d5e",
            "a.txt",
            b"x".to_vec(),
        )
        .await;
    expect_error(r, 404, "PROJECT_NOT_FOUND").await;

    // Refused uploads leave nothing on disk; the stored ones are exactly the listed ones.
    let page: serde_json::Value = s
        .get(&format!("/api/v1/projects/{p}/files?limit=1000"))
        .await
        .json()
        .await
        .unwrap();
    let listed: std::collections::BTreeSet<String> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["id"].as_str().unwrap().to_string())
        .collect();
    let on_disk: std::collections::BTreeSet<String> = std::fs::read_dir(stored.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(listed, on_disk);

    // Delete one; a second delete is FILE_NOT_FOUND.
    let del = s.url(&format!("/api/v1/projects/{p}/files/{id}"));
    assert_eq!(s.client.delete(&del).send().await.unwrap().status(), 204);
    assert!(!stored.exists());
    expect_error(
        s.client.delete(&del).send().await.unwrap(),
        404,
        "FILE_NOT_FOUND",
    )
    .await;
    let r = s
        .client
        .delete(s.url(&format!("/api/v1/projects/{p}/files/file_nope")))
        .send()
        .await
        .unwrap();
    expect_error(r, 404, "FILE_NOT_FOUND").await;
}

#[tokio::test]
async fn a_disk_that_cannot_be_written_is_file_upload_failed() {
    let s = Server::start().await;
    let p = s.create_project("disk").await;
    // The files directory's place is taken by a plain file: the store cannot create it.
    let pdir = s.data_dir.join("projects").join(&p);
    std::fs::create_dir_all(&pdir).unwrap();
    std::fs::write(pdir.join("files"), b"in the way").unwrap();
    expect_error(
        s.upload(&p, "a.txt", b"hello".to_vec()).await,
        500,
        "FILE_UPLOAD_FAILED",
    )
    .await;
}

#[tokio::test]
async fn a_stalled_upload_times_out() {
    let s = Server::start_with(Options::default().args(&["--upload-timeout-secs", "1"])).await;
    let p = s.create_project("slow").await;
    let boundary = "XBOUNDARYX";
    let head = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"slow.txt\"\r\nContent-Type: text/plain\r\n\r\nfirst bytes"
    );
    // The body sends its head, then nothing for far longer than the limit.
    let stream = futures::stream::once(async move { Ok::<_, std::io::Error>(head.into_bytes()) })
        .chain(futures::stream::once(async {
            tokio::time::sleep(Duration::from_secs(30)).await;
            Ok::<_, std::io::Error>(b"never".to_vec())
        }));
    let r = s
        .client
        .post(s.url(&format!("/api/v1/projects/{p}/files")))
        .header(
            "content-type",
            format!("multipart/form-data; boundary={boundary}"),
        )
        .body(reqwest::Body::wrap_stream(stream))
        .send()
        .await
        .unwrap();
    expect_error(r, 408, "REQUEST_TIMEOUT").await;
    // Nothing half-written remains.
    let files = s.data_dir.join("projects").join(&p).join("files");
    let left: Vec<_> = std::fs::read_dir(&files)
        .map(|d| d.flatten().collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "{left:?}");
}

/// Upload continuously from several tasks, SIGKILL the server in the middle, restart it:
/// every acknowledged upload is listed with its exact bytes, every listed file is complete,
/// and no partial file is left.
#[tokio::test]
async fn sigkill_during_uploads_loses_nothing_acknowledged() {
    let mut s = Server::start().await;
    let p = s.create_project("crash").await;
    let base = s.base.clone();
    let acked = std::sync::Arc::new(std::sync::Mutex::new(Vec::<(String, Vec<u8>)>::new()));
    let mut tasks = Vec::new();
    for t in 0..4u8 {
        let (base, p, acked) = (base.clone(), p.clone(), acked.clone());
        tasks.push(tokio::spawn(async move {
            let client = reqwest::Client::new();
            for i in 0..10_000u32 {
                let body: Vec<u8> = format!("task {t} upload {i}\n").repeat(2000).into_bytes();
                let part = reqwest::multipart::Part::bytes(body.clone())
                    .file_name(format!("t{t}-{i}.txt"));
                let form = reqwest::multipart::Form::new().part("file", part);
                let Ok(r) = client
                    .post(format!("{base}/api/v1/projects/{p}/files"))
                    .multipart(form)
                    .send()
                    .await
                else {
                    return;
                };
                if r.status() != 201 {
                    return;
                }
                let Ok(v) = r.json::<serde_json::Value>().await else {
                    return;
                };
                acked
                    .lock()
                    .unwrap()
                    .push((v["id"].as_str().unwrap().to_string(), body));
            }
        }));
    }
    // Let some uploads be acknowledged, then kill without warning.
    for _ in 0..400 {
        if acked.lock().unwrap().len() >= 20 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    s.kill_hard();
    for t in tasks {
        let _ = t.await;
    }
    let acked = acked.lock().unwrap().clone();
    assert!(
        acked.len() >= 20,
        "only {} uploads acknowledged before the kill",
        acked.len()
    );

    let dir = s.data_dir.clone();
    let s2 = Server::start_with(Options::default().data_dir(&dir)).await;
    let page: serde_json::Value = s2
        .get(&format!("/api/v1/projects/{p}/files?limit=1000"))
        .await
        .json()
        .await
        .unwrap();
    let listed: std::collections::BTreeMap<String, (u64, String)> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["id"].as_str().unwrap().to_string(),
                (
                    f["size_bytes"].as_u64().unwrap(),
                    f["sha256"].as_str().unwrap().to_string(),
                ),
            )
        })
        .collect();
    let files = dir.join("projects").join(&p).join("files");
    for (id, body) in &acked {
        assert!(
            listed.contains_key(id),
            "acknowledged upload {id} is missing after the crash"
        );
        assert_eq!(
            &std::fs::read(files.join(id)).unwrap(),
            body,
            "{id} differs on disk"
        );
    }
    for (id, (size, sha)) in &listed {
        let bytes =
            std::fs::read(files.join(id)).unwrap_or_else(|_| panic!("listed file {id} missing"));
        assert_eq!(bytes.len() as u64, *size, "{id} is a half file");
        use sha2::Digest;
        assert_eq!(
            &hex::encode(sha2::Sha256::digest(&bytes)),
            sha,
            "{id} damaged"
        );
    }
    // The start-up sweep removed partial and unreferenced files.
    let on_disk: Vec<String> = std::fs::read_dir(&files)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    for name in &on_disk {
        assert!(
            listed.contains_key(name),
            "unreferenced or partial file {name} left"
        );
    }
    let (ok, text) = s2.replay_verify();
    assert!(ok, "{text}");
}
