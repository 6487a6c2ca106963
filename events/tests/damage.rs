//! A damaged log against the real open path: byte flips and truncations of a real redb file
//! made by appending real events. Opening never panics; the read-only check (what `serve` runs
//! first and `replay verify` reports) and the writing open agree; a refused open leaves the file
//! byte for byte as it was; salvage copies what is readable (docs/storage.md).

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use proptest::prelude::*;
use tunewright_events::event::{JobCreated, JobNote, ProjectCreated};
use tunewright_events::store::check::check;
use tunewright_events::store::salvage::salvage;
use tunewright_events::{Event, EventLog, LogError, LogReader};
use tunewright_schemas::{JobId, JobKind, Json, ProjectId};

/// A project, a job and notes with payloads of many sizes, in several batches, closed cleanly.
fn make_log(path: &Path) -> u64 {
    let log = EventLog::open(path).unwrap();
    let p = ProjectId::new();
    let j = JobId::new();
    log.append_blocking(vec![Event::ProjectCreated(ProjectCreated {
        project_id: p,
        name: "damaged".into(),
    })])
    .unwrap();
    log.append_blocking(vec![Event::JobCreated(JobCreated {
        job_id: j,
        project_id: p,
        kind: JobKind::Train,
        config: Json(serde_json::json!({"lora_r": 8})),
        max_retries: 0,
        queue_timeout_ms: 1000,
    })])
    .unwrap();
    for batch in 0..8 {
        let notes = (0..10)
            .map(|i| {
                Event::JobNote(JobNote {
                    job_id: j,
                    topic: "progress".into(),
                    data: Json(
                        serde_json::json!({"batch": batch, "i": i, "pad": "x".repeat(i * 40)}),
                    ),
                })
            })
            .collect();
        log.append_blocking(notes).unwrap();
    }
    let last = log.last_seq();
    log.close().unwrap();
    last
}

/// The pristine log's bytes, made once.
fn pristine() -> &'static (Vec<u8>, u64) {
    static LOG: OnceLock<(Vec<u8>, u64)> = OnceLock::new();
    LOG.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("events.redb");
        let last = make_log(&path);
        (std::fs::read(&path).unwrap(), last)
    })
}

fn write_damaged(dir: &Path, bytes: &[u8]) -> PathBuf {
    let path = dir.join("events.redb");
    std::fs::write(&path, bytes).unwrap();
    path
}

/// The outcome for one damaged file, holding the properties of the module comment.
fn judge(bytes: &[u8]) {
    let dir = tempfile::tempdir().unwrap();
    let path = write_damaged(dir.path(), bytes);
    let checked = check(&path);
    assert_eq!(
        std::fs::read(&path).unwrap(),
        bytes,
        "the check wrote to the file"
    );
    let opened = EventLog::open(&path);
    match (&checked, &opened) {
        (Ok(_), Ok(log)) => {
            // Every read answers, with events or an error, never a panic.
            let _ = log.read_after(0, usize::MAX);
            let _ = log.close();
        }
        (Err(c), Err(o)) => {
            assert_eq!(
                std::fs::read(&path).unwrap(),
                bytes,
                "a refused open wrote to the file ({o})"
            );
            assert!(
                !matches!(o, LogError::StorageFull { .. }) && !matches!(c, LogError::Closed),
                "{c} / {o}"
            );
            if o.is_damage() {
                let text = o.to_string();
                assert!(text.contains("replay salvage"), "{text}");
                assert!(text.contains(path.to_str().unwrap()), "{text}");
            }
        }
        (Ok(c), Err(o)) => panic!("the check passed ({c:?}) but the open refused: {o}"),
        (Err(c), Ok(_)) => panic!("the check refused ({c}) but the open succeeded"),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn flipped_bytes_never_panic_and_check_and_open_agree(
        flips in proptest::collection::vec((any::<prop::sample::Index>(), 1u8..=255), 1..4)
    ) {
        let (good, _) = pristine();
        let mut bytes = good.clone();
        // Flip where the data is: past the last non-zero byte the file is redb's free space.
        let used = good.iter().rposition(|b| *b != 0).map_or(good.len(), |i| i + 1);
        for (at, mask) in flips {
            let i = at.index(used);
            bytes[i] ^= mask;
        }
        judge(&bytes);
    }

    #[test]
    fn truncations_never_panic_and_check_and_open_agree(cut in any::<prop::sample::Index>()) {
        let (good, _) = pristine();
        let keep = cut.index(good.len());
        judge(&good[..keep]);
    }
}

#[test]
fn a_file_one_byte_short_is_refused_by_both_and_left_unchanged() {
    let (good, _) = pristine();
    let short = &good[..good.len() - 1];
    let dir = tempfile::tempdir().unwrap();
    let path = write_damaged(dir.path(), short);
    let c = check(&path).expect_err("the check refuses a short file");
    let o = EventLog::open(&path).err().expect("the open refuses it");
    assert!(c.is_damage() && o.is_damage(), "{c} / {o}");
    assert_eq!(std::fs::read(&path).unwrap(), short);
}

#[test]
fn every_page_header_flipped_in_turn_never_panics() {
    // One flip at the start of every 4 KiB page (where redb keeps each page's type and
    // counts, the allocator's state included), one file each.
    let (good, _) = pristine();
    for page in (0..good.len()).step_by(4096) {
        let mut bytes = good.clone();
        bytes[page] ^= 0xff;
        judge(&bytes);
    }
}

#[test]
fn salvage_copies_every_readable_event_and_skips_a_damaged_record() {
    let &(ref good, last) = pristine();
    let dir = tempfile::tempdir().unwrap();
    // Damage one record's payload: find the JobCreated's config text in the file.
    let needle = b"lora_r";
    let at = good
        .windows(needle.len())
        .position(|w| w == needle)
        .expect("the record is in the file");
    let mut bytes = good.clone();
    bytes[at] ^= 0x20;
    let path = write_damaged(dir.path(), &bytes);
    let err = EventLog::open(&path).err().expect("serve refuses");
    assert!(err.is_damage(), "{err}");
    assert!(err.to_string().contains("seq 2"), "{err}");

    let to = dir.path().join("new/events.redb");
    std::fs::create_dir_all(to.parent().unwrap()).unwrap();
    let report = salvage(&path, &to).unwrap();
    assert_eq!(report.copied, last - 1);
    assert_eq!(report.skipped.len(), 1, "{:?}", report.skipped);
    assert!(
        report.skipped[0].starts_with("seq 2:"),
        "{:?}",
        report.skipped
    );
    assert!(!report.raw_scan);
    assert_eq!(std::fs::read(&path).unwrap(), bytes, "salvage only reads");

    let fresh = EventLog::open(&to).unwrap();
    let events = fresh.read_after(0, usize::MAX).unwrap();
    assert_eq!(events.len() as u64, last - 1);
    assert_eq!(
        events.iter().map(|e| e.seq).collect::<Vec<_>>(),
        (1..last).collect::<Vec<_>>()
    );
    assert!(matches!(events[0].event, Event::ProjectCreated(_)));
    fresh.close().unwrap();
    let again = salvage(&path, &to).expect_err("an existing log is refused");
    assert!(again.to_string().contains("already exists"), "{again}");
}

#[test]
fn salvage_scans_the_bytes_when_redb_cannot_read_the_file() {
    let &(ref good, last) = pristine();
    let dir = tempfile::tempdir().unwrap();
    // Break the redb header's magic: redb refuses the file outright.
    let mut bytes = good.clone();
    bytes[0] ^= 0xff;
    let path = write_damaged(dir.path(), &bytes);
    assert!(LogReader::open(&path).is_err());
    let to = dir.path().join("new.redb");
    let report = salvage(&path, &to).unwrap();
    assert!(report.raw_scan);
    assert_eq!(report.copied, last, "every record is found in the bytes");
    let fresh = LogReader::open(&to).unwrap();
    let events = fresh.read_after(0, usize::MAX).unwrap();
    assert!(matches!(events[0].event, Event::ProjectCreated(_)));
    assert!(matches!(events[1].event, Event::JobCreated(_)));
}
