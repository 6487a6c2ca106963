//! The part of a failure text that says what happened: lower-cased, without traceback
//! frames and the source lines printed under them.
//!
//! A frame's source line names what was *running*, not what failed:
//! `trainer.train(resume_from_checkpoint=checkpoint)` under a frame would otherwise read as a
//! checkpoint failure, `from peft.tuners.lora import ...` as a LoRA one. The rules read the
//! signal; the phase is inferred from the whole text, where frame names are good evidence.

use std::sync::OnceLock;

use regex::Regex;

/// How a line that opens a frame looks: Python (`File "x.py", line 3, in f`, with or without
/// a `[rank0]:` prefix), IPython (`File ~/x.py:66, in f(...)`), Rich (`│ /x.py:56 in <module>`).
const FRAME: &str =
    r#"^\s*(\[rank\d+\]:\s*)?(file "[^"]*", line \d+|file [^\s,]+:\d+, in |[│|]\s*\S+:\d+ in )"#;
/// Lines that only decorate a frame: carets under the failing expression, IPython's numbered
/// source (`---> 66     return x`), Rich's box borders, numbered source (`│ ❱ 281 │ x`) and
/// locals panels (`│ │ name = value │ │`). Other boxed lines are kept: some tools print the
/// error itself in a box.
const DECORATION: &str = r"^(\[rank\d+\]:)?(\s*[~^\s]+$|\s+\d+\s|\s*-+>\s*\d+\s|\s*[╭╰❱]|\s*│\s*(❱\s*)?\d+\s|\s*│\s*│|\s*│\s*$)";
/// What a launcher does to the other workers once one has failed (torchrun sends them
/// SIGTERM): a consequence, not a cause, so it is not read as an interruption.
const TEARDOWN: &str = r"sending process \d+ closing signal \w+";

fn regex(cell: &'static OnceLock<Option<Regex>>, pattern: &str) -> Option<&'static Regex> {
    cell.get_or_init(|| Regex::new(pattern).ok()).as_ref()
}

/// The lower-cased text without frames and their source lines.
pub fn signal(text: &str) -> String {
    static FRAME_RE: OnceLock<Option<Regex>> = OnceLock::new();
    static DECORATION_RE: OnceLock<Option<Regex>> = OnceLock::new();
    static TEARDOWN_RE: OnceLock<Option<Regex>> = OnceLock::new();
    let (Some(frame), Some(decoration), Some(teardown)) = (
        regex(&FRAME_RE, FRAME),
        regex(&DECORATION_RE, DECORATION),
        regex(&TEARDOWN_RE, TEARDOWN),
    ) else {
        return text.to_lowercase();
    };
    let mut out = String::with_capacity(text.len());
    // After a frame line, the next plain indented line is its source line.
    let mut source_line_due = false;
    for line in text.lines() {
        let lower = line.to_lowercase();
        if frame.is_match(&lower) {
            // A traceback pasted without its line breaks carries the exception on the frame's
            // own line: keep it from the exception's name on.
            if let Some(at) = exception_in(&lower) {
                out.push_str(&lower[at..]);
                out.push('\n');
            }
            source_line_due = true;
            continue;
        }
        if decoration.is_match(&lower) {
            continue;
        }
        if source_line_due && is_source_line(&lower) {
            source_line_due = false;
            continue;
        }
        source_line_due = false;
        out.push_str(&teardown.replace_all(&lower, ""));
        out.push('\n');
    }
    out
}

/// Where an exception (`requests.exceptions.ConnectionError: ...`) starts inside a frame's
/// line, if one does.
fn exception_in(line: &str) -> Option<usize> {
    static EXCEPTION_RE: OnceLock<Option<Regex>> = OnceLock::new();
    let re = regex(
        &EXCEPTION_RE,
        r"\b([a-z_][\w.]*\.)?[a-z_]\w*(error|exception|interrupt):\s",
    )?;
    re.find(line).map(|m| m.start())
}

/// An indented line that is not itself an exception (`    x = f(y)`, not `ValueError: ...`).
fn is_source_line(line: &str) -> bool {
    let body = without_rank_prefix(line);
    let indented = body.starts_with(' ') || body.starts_with('\t');
    indented && !looks_like_exception(body.trim())
}

/// `[rank0]:     x = f()` -> `     x = f()` (torchrun prefixes every line of a rank).
fn without_rank_prefix(line: &str) -> &str {
    match line.strip_prefix("[rank") {
        Some(rest) => rest.split_once("]:").map(|(_, r)| r).unwrap_or(line),
        None => line,
    }
}

fn looks_like_exception(line: &str) -> bool {
    let head = line.split(':').next().unwrap_or("");
    !head.is_empty()
        && !head.contains(' ')
        && (head.ends_with("error") || head.ends_with("exception") || head.ends_with("interrupt"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_and_their_source_lines_are_dropped() {
        let t = "Traceback (most recent call last):\n  File \"run.py\", line 610, in main\n    train_result = trainer.train(resume_from_checkpoint=checkpoint)\n                   ^^^^^^^^^^^^^\nRuntimeError: element 0 of tensors does not require grad";
        let s = signal(t);
        assert!(!s.contains("resume_from_checkpoint"), "{s}");
        assert!(s.contains("element 0 of tensors"), "{s}");
        assert!(s.contains("traceback"), "{s}");
    }

    #[test]
    fn rank_prefixed_frames_and_ipython_listings_are_dropped() {
        let t = "[rank0]:   File \"/x/sft_trainer.py\", line 513, in tokenize\n[rank0]:     element[dataset_text_field]\n[rank0]: KeyError: 'text'\nFile ~/x/json.py:66, in JsonOutputParser.parse_result(self)\n     65 try:\n---> 66     return parse_json_markdown(text)\nJSONDecodeError: Expecting value";
        let s = signal(t);
        assert!(!s.contains("dataset_text_field"), "{s}");
        assert!(!s.contains("parse_json_markdown"), "{s}");
        assert!(s.contains("keyerror: 'text'"), "{s}");
        assert!(s.contains("jsondecodeerror: expecting value"), "{s}");
    }

    #[test]
    fn a_launcher_stopping_the_other_workers_is_not_the_failure() {
        let t = "WARNING:torch.distributed.elastic.multiprocessing.api:Sending process 992 closing signal SIGTERM\nERROR: failed (exitcode: 1) local_rank: 0";
        let s = signal(t);
        assert!(!s.contains("sigterm"), "{s}");
        assert!(s.contains("failed (exitcode: 1)"), "{s}");
        let t = "Received 2 death signal, shutting down workers Sending process 4797 closing signal SIGINT";
        assert!(signal(t).contains("received 2 death signal"));
    }

    #[test]
    fn a_boxed_message_is_kept_and_a_boxed_listing_is_not() {
        let t = "│ ❱ 281 │   │   trainer.fit(model)   │\n│ │ resume_from_checkpoint = True │ │\n│   \"reason\": \"rateLimitExceeded\"   │";
        let s = signal(t);
        assert!(!s.contains("trainer.fit"), "{s}");
        assert!(!s.contains("resume_from_checkpoint"), "{s}");
        assert!(s.contains("ratelimitexceeded"), "{s}");
    }

    #[test]
    fn a_message_that_starts_with_a_number_is_kept() {
        assert!(signal("401 Incorrect API key provided").contains("401 incorrect api key"));
    }

    #[test]
    fn an_exception_on_a_frame_line_is_kept() {
        let t = "File \"/x/adapters.py\", line 519, in send raise ConnectionError(e) requests.exceptions.ConnectionError: Failed to resolve 'huggingface.co'";
        let s = signal(t);
        assert!(s.contains("connectionerror: failed to resolve"), "{s}");
        assert!(!s.contains("in send"), "{s}");
        assert_eq!(signal("  File \"x.py\", line 1, in f"), "");
    }

    #[test]
    fn an_exception_right_under_a_frame_is_kept() {
        let t = "  File \"x.py\", line 1, in f\nValueError: Loss is NaN";
        assert!(signal(t).contains("loss is nan"));
        let t = "  File \"x.py\", line 1, in f\n    ValueError: Loss is NaN";
        assert!(signal(t).contains("loss is nan"));
    }
}
