//! SFT datasets as JSONL: the three accepted line forms, auto-detected, and validation with
//! line-numbered errors (`DATASET_UPLOAD_INVALID`, `DATASET_TOO_FEW_EXAMPLES`).
//!
//! - alpaca: `{"instruction", "input"?, "output"}`
//! - chat: `{"messages": [{"role": "system"|"user"|"assistant", "content"}]}` ending with an
//!   assistant turn
//! - prompt/completion: `{"prompt", "completion"}`
//!
//! Every example becomes a list of chat `Turn`s; the trainer renders them with the model's
//! chat template and trains on the assistant turns only.

use serde::{Deserialize, Serialize};

use crate::{ctx, ErrorCode, Failure};

/// Fewer valid examples than this cannot be trained on (docs/errors.md, DATASET_TOO_FEW_EXAMPLES).
pub const MIN_EXAMPLES: usize = 10;
/// Longest line accepted (bytes).
pub const MAX_LINE_BYTES: usize = 1 << 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DatasetFormat {
    Alpaca,
    Messages,
    PromptCompletion,
}

impl std::fmt::Display for DatasetFormat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            DatasetFormat::Alpaca => "alpaca",
            DatasetFormat::Messages => "messages",
            DatasetFormat::PromptCompletion => "prompt_completion",
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Turn {
    pub role: String,
    pub content: String,
}

/// One parsed example.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Example {
    /// 1-based line number in the file.
    pub line: usize,
    pub format: DatasetFormat,
    pub turns: Vec<Turn>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DatasetSummary {
    pub format: DatasetFormat,
    pub num_examples: usize,
    /// Blank lines skipped.
    pub blank_lines: usize,
}

fn invalid(line: usize, reason: impl Into<String>) -> Failure {
    Failure::new(
        ErrorCode::DatasetUploadInvalid,
        ctx! {"line" => line, "reason" => reason.into()},
    )
}

fn text_field(
    obj: &serde_json::Map<String, serde_json::Value>,
    key: &str,
    line: usize,
) -> Result<Option<String>, Failure> {
    match obj.get(key) {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(serde_json::Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(invalid(line, format!("field '{key}' must be a string"))),
    }
}

/// Parse one non-blank line.
pub fn parse_line(text: &str, line: usize) -> Result<Example, Failure> {
    if text.len() > MAX_LINE_BYTES {
        return Err(invalid(
            line,
            format!("line is longer than {MAX_LINE_BYTES} bytes"),
        ));
    }
    let value: serde_json::Value =
        serde_json::from_str(text).map_err(|e| invalid(line, format!("not valid JSON: {e}")))?;
    let obj = value
        .as_object()
        .ok_or_else(|| invalid(line, "each line must be a JSON object"))?;
    let nonempty = |s: Option<String>, key: &str| -> Result<String, Failure> {
        match s {
            Some(s) if !s.trim().is_empty() => Ok(s),
            Some(_) => Err(invalid(line, format!("field '{key}' is empty"))),
            None => Err(invalid(line, format!("missing field '{key}'"))),
        }
    };
    if let Some(messages) = obj.get("messages") {
        let arr = messages
            .as_array()
            .ok_or_else(|| invalid(line, "field 'messages' must be an array"))?;
        let mut turns = Vec::with_capacity(arr.len());
        for (i, m) in arr.iter().enumerate() {
            let m = m
                .as_object()
                .ok_or_else(|| invalid(line, format!("messages[{i}] must be an object")))?;
            let role = nonempty(text_field(m, "role", line)?, "role")?;
            if !matches!(role.as_str(), "system" | "user" | "assistant") {
                return Err(invalid(
                    line,
                    format!("messages[{i}].role '{role}' is not system, user or assistant"),
                ));
            }
            let content = nonempty(text_field(m, "content", line)?, "content")?;
            turns.push(Turn { role, content });
        }
        if turns.last().map(|t| t.role.as_str()) != Some("assistant") {
            return Err(invalid(
                line,
                "the last message must be the assistant's answer",
            ));
        }
        if !turns.iter().any(|t| t.role == "user") {
            return Err(invalid(line, "messages need at least one user turn"));
        }
        return Ok(Example {
            line,
            format: DatasetFormat::Messages,
            turns,
        });
    }
    if obj.contains_key("instruction") || obj.contains_key("output") {
        let instruction = nonempty(text_field(obj, "instruction", line)?, "instruction")?;
        let output = nonempty(text_field(obj, "output", line)?, "output")?;
        let input = text_field(obj, "input", line)?.filter(|s| !s.trim().is_empty());
        let user = match input {
            Some(i) => format!("{instruction}\n\n{i}"),
            None => instruction,
        };
        return Ok(Example {
            line,
            format: DatasetFormat::Alpaca,
            turns: vec![
                Turn {
                    role: "user".into(),
                    content: user,
                },
                Turn {
                    role: "assistant".into(),
                    content: output,
                },
            ],
        });
    }
    if obj.contains_key("prompt") || obj.contains_key("completion") {
        let prompt = nonempty(text_field(obj, "prompt", line)?, "prompt")?;
        let completion = nonempty(text_field(obj, "completion", line)?, "completion")?;
        return Ok(Example {
            line,
            format: DatasetFormat::PromptCompletion,
            turns: vec![
                Turn {
                    role: "user".into(),
                    content: prompt,
                },
                Turn {
                    role: "assistant".into(),
                    content: completion,
                },
            ],
        });
    }
    Err(invalid(
        line,
        "expected instruction/output (alpaca), messages (chat) or prompt/completion fields",
    ))
}

/// Parse a whole JSONL file; all lines must share one format.
pub fn parse_jsonl(bytes: &[u8]) -> Result<(Vec<Example>, DatasetSummary), Failure> {
    let text = std::str::from_utf8(bytes).map_err(|e| {
        let line = bytes[..e.valid_up_to()]
            .iter()
            .filter(|b| **b == b'\n')
            .count()
            + 1;
        invalid(line, "not valid UTF-8")
    })?;
    let mut examples = Vec::new();
    let mut blank = 0;
    let mut format = None;
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        let raw = raw.trim_end_matches('\r');
        if raw.trim().is_empty() {
            blank += 1;
            continue;
        }
        let ex = parse_line(raw, line)?;
        match format {
            None => format = Some(ex.format),
            Some(f) if f != ex.format => {
                return Err(invalid(
                    line,
                    format!(
                        "line is in {} form but the file started in {f} form",
                        ex.format
                    ),
                ));
            }
            _ => {}
        }
        examples.push(ex);
    }
    let summary = DatasetSummary {
        format: format.unwrap_or(DatasetFormat::Alpaca),
        num_examples: examples.len(),
        blank_lines: blank,
    };
    Ok((examples, summary))
}

/// Validate an uploaded dataset: every line, one format, at least `MIN_EXAMPLES` examples.
pub fn validate_jsonl(bytes: &[u8]) -> Result<DatasetSummary, Failure> {
    let (_, summary) = parse_jsonl(bytes)?;
    if summary.num_examples < MIN_EXAMPLES {
        return Err(Failure::new(
            ErrorCode::DatasetTooFewExamples,
            ctx! {"num_examples" => summary.num_examples, "min_examples" => MIN_EXAMPLES},
        ));
    }
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(n: usize, line: &str) -> String {
        (0..n)
            .map(|i| line.replace("N", &i.to_string()))
            .collect::<Vec<_>>()
            .join("\n")
    }

    #[test]
    fn the_three_forms_are_detected() {
        let a = lines(
            12,
            r#"{"instruction": "q N", "input": "", "output": "a N"}"#,
        );
        assert_eq!(
            validate_jsonl(a.as_bytes()).unwrap().format,
            DatasetFormat::Alpaca
        );
        let m = lines(
            12,
            r#"{"messages": [{"role": "system", "content": "s"}, {"role": "user", "content": "q N"}, {"role": "assistant", "content": "a"}]}"#,
        );
        assert_eq!(
            validate_jsonl(m.as_bytes()).unwrap().format,
            DatasetFormat::Messages
        );
        let p = lines(12, r#"{"prompt": "q N", "completion": "a"}"#);
        let s = validate_jsonl(format!("{p}\n\n").as_bytes()).unwrap();
        assert_eq!(
            (s.format, s.num_examples, s.blank_lines),
            (DatasetFormat::PromptCompletion, 12, 1)
        );
        let (ex, _) =
            parse_jsonl(br#"{"instruction": "do", "input": "this", "output": "done"}"#).unwrap();
        assert_eq!(ex[0].turns[0].content, "do\n\nthis");
    }

    #[test]
    fn each_bad_line_is_named() {
        let good = r#"{"prompt": "q", "completion": "a"}"#;
        let cases = [
            ("{not json", "not valid JSON"),
            ("[1, 2]", "must be a JSON object"),
            (r#"{"prompt": "q"}"#, "missing field 'completion'"),
            (
                r#"{"prompt": "q", "completion": "  "}"#,
                "field 'completion' is empty",
            ),
            (r#"{"prompt": 3, "completion": "a"}"#, "must be a string"),
            (r#"{"text": "free text"}"#, "expected instruction/output"),
            (
                r#"{"instruction": "q", "output": "a"}"#,
                "file started in prompt_completion form",
            ),
            (
                r#"{"messages": [{"role": "user", "content": "q"}]}"#,
                "last message must be the assistant",
            ),
            (
                r#"{"messages": [{"role": "robot", "content": "q"}, {"role": "assistant", "content": "a"}]}"#,
                "is not system, user or assistant",
            ),
        ];
        for (bad, needle) in cases {
            let text = format!("{good}\n{good}\n{bad}\n{good}");
            let f = validate_jsonl(text.as_bytes()).unwrap_err();
            assert_eq!(f.error_code, ErrorCode::DatasetUploadInvalid, "{bad}");
            assert!(f.detail.starts_with("Dataset line 3: "), "{}", f.detail);
            assert!(f.detail.contains(needle), "{bad}: {}", f.detail);
        }
        let f =
            validate_jsonl(b"{\"prompt\": \"q\", \"completion\": \"a\"}\n\xff\xfe").unwrap_err();
        assert!(
            f.detail.contains("line 2") && f.detail.contains("UTF-8"),
            "{}",
            f.detail
        );
    }

    #[test]
    fn too_few_examples() {
        let f = validate_jsonl(lines(9, r#"{"prompt": "q", "completion": "a"}"#).as_bytes())
            .unwrap_err();
        assert_eq!(f.error_code, ErrorCode::DatasetTooFewExamples);
        assert!(f.detail.contains("9 valid example"));
        assert_eq!(
            validate_jsonl(b"").unwrap_err().error_code,
            ErrorCode::DatasetTooFewExamples
        );
    }
}
