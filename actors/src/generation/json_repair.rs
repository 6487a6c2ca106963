//! The LLM answer repair pipeline of docs/jobs.md ("Repairing an LLM's JSON answer"), steps 1-4 (pure): strict parse, strip
//! markdown fences, extract the JSON from surrounding prose, fix common faults. Step 5 (one
//! LLM repair call) and 6 (reject) are driven by the generator, which re-runs these steps on
//! the repair answer. A parse is accepted only when it is a non-empty array of objects with
//! non-empty string `instruction` and `output`.

use serde_json::Value;

/// Which step produced the accepted parse.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RepairStep {
    Strict,
    StripFences,
    Extract,
    FixCommon,
    LlmRepair,
    Rejected,
}

impl RepairStep {
    pub const ALL: [RepairStep; 6] = [
        RepairStep::Strict,
        RepairStep::StripFences,
        RepairStep::Extract,
        RepairStep::FixCommon,
        RepairStep::LlmRepair,
        RepairStep::Rejected,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            RepairStep::Strict => "strict",
            RepairStep::StripFences => "strip_fences",
            RepairStep::Extract => "extract",
            RepairStep::FixCommon => "fix_common",
            RepairStep::LlmRepair => "llm_repair",
            RepairStep::Rejected => "rejected",
        }
    }
}

/// An example as the LLM wrote it (validated for shape, not yet for length).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawExample {
    pub instruction: String,
    pub output: String,
}

/// Steps 1-4 in order; `None` when none of them gives a valid example list.
pub fn repair(answer: &str) -> Option<(Vec<RawExample>, RepairStep)> {
    if let Some(x) = parse_examples(answer) {
        return Some((x, RepairStep::Strict));
    }
    let unfenced = strip_fences(answer);
    if let Some(x) = parse_examples(&unfenced) {
        return Some((x, RepairStep::StripFences));
    }
    let extracted = extract_json(&unfenced);
    if let Some(x) = extracted.as_deref().and_then(parse_examples) {
        return Some((x, RepairStep::Extract));
    }
    let base = extracted.unwrap_or(unfenced);
    fix_common(&base).map(|x| (x, RepairStep::FixCommon))
}

/// Step 1 (and the check after every step): the text is an example list.
pub fn parse_examples(text: &str) -> Option<Vec<RawExample>> {
    let v: Value = serde_json::from_str(text.trim()).ok()?;
    to_examples(&v)
}

fn to_examples(v: &Value) -> Option<Vec<RawExample>> {
    let items = match v {
        Value::Array(a) => a,
        Value::Object(o) => match o.get("examples") {
            Some(Value::Array(a)) => a,
            _ => return None,
        },
        _ => return None,
    };
    if items.is_empty() {
        return None;
    }
    items
        .iter()
        .map(|it| {
            let o = it.as_object()?;
            let instruction = o.get("instruction")?.as_str()?.trim().to_string();
            let output = o.get("output")?.as_str()?.trim().to_string();
            (!instruction.is_empty() && !output.is_empty()).then_some(RawExample {
                instruction,
                output,
            })
        })
        .collect()
}

/// Step 2: the body of the first markdown code fence (```json ... ```), or the text unchanged.
pub fn strip_fences(text: &str) -> String {
    let Some(start) = text.find("```") else {
        return text.to_string();
    };
    let after = &text[start + 3..];
    // Skip the info string (e.g. `json`) up to the end of the line.
    let body_start = after.find('\n').map(|i| i + 1).unwrap_or(after.len());
    let body = &after[body_start..];
    match body.find("```") {
        Some(end) => body[..end].to_string(),
        None => body.to_string(),
    }
}

/// Step 3: the first JSON array (or object) in the text, balanced with strings respected;
/// an unbalanced (truncated) one runs to the end of the text.
pub fn extract_json(text: &str) -> Option<String> {
    let start = text.find(['[', '{'])?;
    let bytes = text.as_bytes();
    let mut depth = 0i64;
    let mut in_str = false;
    let mut escaped = false;
    for (i, &b) in bytes.iter().enumerate().skip(start) {
        if in_str {
            match b {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_str = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_str = true,
            b'[' | b'{' => depth += 1,
            b']' | b'}' => {
                depth -= 1;
                if depth == 0 {
                    return Some(text[start..=i].to_string());
                }
            }
            _ => {}
        }
    }
    Some(text[start..].to_string())
}

/// Step 4: fix smart quotes, single-quoted strings, unescaped control characters in strings,
/// trailing commas and a truncated array (closing it after its last complete element).
pub fn fix_common(text: &str) -> Option<Vec<RawExample>> {
    let (fixed, last_complete) = normalise(text);
    if let Some(x) = parse_examples(&fixed) {
        return Some(x);
    }
    // Truncated: keep the elements that were complete, close the array.
    let cut = last_complete?;
    let mut truncated = fixed[..cut].to_string();
    truncated.push(']');
    parse_examples(&truncated)
}

/// Rewrites the text; returns it with open strings and containers closed, plus the byte
/// position just after the last element completed at array depth 1 (for truncation).
fn normalise(text: &str) -> (String, Option<usize>) {
    let text: String = text
        .chars()
        .map(|c| match c {
            '\u{201C}' | '\u{201D}' | '\u{201E}' | '\u{201F}' => '"',
            '\u{2018}' | '\u{2019}' | '\u{201A}' | '\u{201B}' => '\'',
            c => c,
        })
        .collect();
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len() + 8);
    let mut stack: Vec<char> = Vec::new();
    let mut quote: Option<char> = None;
    let mut escaped = false;
    let mut last_complete = None;
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if let Some(q) = quote {
            if escaped {
                escaped = false;
                // `\'` is not a JSON escape.
                if c == '\'' {
                    out.pop();
                }
                out.push(c);
            } else if c == '\\' {
                escaped = true;
                out.push(c);
            } else if c == q {
                quote = None;
                out.push('"');
            } else {
                match c {
                    '"' => out.push_str("\\\""),
                    '\n' => out.push_str("\\n"),
                    '\r' => out.push_str("\\r"),
                    '\t' => out.push_str("\\t"),
                    c if (c as u32) < 0x20 => out.push(' '),
                    c => out.push(c),
                }
            }
            i += 1;
            continue;
        }
        match c {
            '"' | '\'' => {
                quote = Some(c);
                out.push('"');
            }
            '[' => {
                stack.push(']');
                out.push(c);
            }
            '{' => {
                stack.push('}');
                out.push(c);
            }
            ']' | '}' => {
                // Drop a trailing comma before the closer.
                let trimmed = out.trim_end().len();
                if out[..trimmed].ends_with(',') {
                    out.truncate(trimmed - 1);
                }
                if stack.last() == Some(&c) {
                    stack.pop();
                }
                out.push(c);
                if stack.len() == 1 && stack[0] == ']' {
                    last_complete = Some(out.len());
                }
            }
            c => out.push(c),
        }
        i += 1;
    }
    if quote.is_some() {
        if escaped {
            out.pop();
        }
        out.push('"');
    }
    let trimmed = out.trim_end().len();
    if out[..trimmed].ends_with(',') {
        out.truncate(trimmed - 1);
    }
    while let Some(closer) = stack.pop() {
        out.push(closer);
    }
    (out, last_complete)
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"[{"instruction": "What is X?", "output": "X is Y."}]"#;

    fn step(s: &str) -> Option<RepairStep> {
        repair(s).map(|(_, st)| st)
    }

    #[test]
    fn strict() {
        assert_eq!(step(GOOD), Some(RepairStep::Strict));
        assert_eq!(
            step(r#"{"examples": [{"instruction": "a", "output": "b"}]}"#),
            Some(RepairStep::Strict)
        );
    }

    #[test]
    fn fences() {
        assert_eq!(
            step(&format!("```json\n{GOOD}\n```")),
            Some(RepairStep::StripFences)
        );
    }

    #[test]
    fn prose() {
        let s = format!("Sure! Here are the examples:\n{GOOD}\nHope this helps.");
        assert_eq!(step(&s), Some(RepairStep::Extract));
    }

    #[test]
    fn trailing_commas_and_smart_quotes() {
        let s = "[{“instruction”: “a”, “output”: “b”,},]";
        let (x, st) = repair(s).unwrap();
        assert_eq!(st, RepairStep::FixCommon);
        assert_eq!(x[0].instruction, "a");
    }

    #[test]
    fn single_quotes_and_newlines() {
        let s = "[{'instruction': 'say \"hi\"', 'output': 'line1\nline2'}]";
        let (x, st) = repair(s).unwrap();
        assert_eq!(st, RepairStep::FixCommon);
        assert_eq!(x[0].instruction, "say \"hi\"");
        assert_eq!(x[0].output, "line1\nline2");
    }

    #[test]
    fn truncated_array_keeps_complete_elements() {
        let s = r#"[{"instruction": "a", "output": "b"}, {"instruction": "c", "outp"#;
        let (x, st) = repair(s).unwrap();
        assert_eq!(st, RepairStep::FixCommon);
        assert_eq!(x.len(), 1);
        let s = r#"[{"instruction": "a", "output": "b"}, {"instruction": "c", "output": "d"#;
        assert_eq!(repair(s).unwrap().0.len(), 2);
    }

    #[test]
    fn rejects_what_is_not_an_example_list() {
        for s in [
            "",
            "no json here",
            "[]",
            r#"[{"instruction": "", "output": "b"}]"#,
            r#"[{"question": "a", "answer": "b"}]"#,
            r#"[1, 2]"#,
            r#"{"a": 1}"#,
            "[{",
        ] {
            assert_eq!(repair(s), None, "{s}");
        }
    }
}
