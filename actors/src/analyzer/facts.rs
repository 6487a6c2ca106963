//! Numbers a failure message states that descriptions and suggestions can use.

use std::sync::OnceLock;

use regex::Regex;

#[derive(Debug, Default, Clone)]
pub struct Facts {
    /// "Tried to allocate 2.00 GiB" in bytes.
    pub tried_bytes: Option<f64>,
    /// The sequence length seen and the maximum: "(1234 > 512)", "maximum context length is
    /// 4097 tokens. However, you requested 4203 tokens", "Input length of input_ids is 9000,
    /// but `max_length` is set to 8192".
    pub seq_len: Option<(u64, u64)>,
    /// "at step 17".
    pub step: Option<u64>,
}

fn re(cell: &'static OnceLock<Option<Regex>>, pattern: &str) -> Option<&'static Regex> {
    cell.get_or_init(|| Regex::new(pattern).ok()).as_ref()
}

pub fn facts(text: &str) -> Facts {
    Facts {
        tried_bytes: tried_bytes(text),
        seq_len: seq_len(text),
        step: step(text),
    }
}

fn tried_bytes(text: &str) -> Option<f64> {
    static ALLOC: OnceLock<Option<Regex>> = OnceLock::new();
    let c = re(
        &ALLOC,
        r"(?i)tried to allocate ([0-9]+(?:\.[0-9]+)?) ?(gib|mib|kib|gb|mb|b)",
    )?
    .captures(text)?;
    let n: f64 = c[1].parse().ok()?;
    let unit = match c[2].to_lowercase().as_str() {
        "gib" | "gb" => 1024f64.powi(3),
        "mib" | "mb" => 1024f64.powi(2),
        "kib" => 1024.0,
        _ => 1.0,
    };
    Some(n * unit)
}

fn seq_len(text: &str) -> Option<(u64, u64)> {
    static PAREN: OnceLock<Option<Regex>> = OnceLock::new();
    static CONTEXT: OnceLock<Option<Regex>> = OnceLock::new();
    static INPUT_IDS: OnceLock<Option<Regex>> = OnceLock::new();
    let pair = |c: regex::Captures, seen: usize, max: usize| {
        Some((c[seen].parse().ok()?, c[max].parse().ok()?))
    };
    if let Some(c) = re(&PAREN, r"\((\d+) > (\d+)\)").and_then(|r| r.captures(text)) {
        return pair(c, 1, 2);
    }
    if let Some(c) = re(
        &CONTEXT,
        r"(?is)maximum context length is (\d+) tokens.{0,40}?requested (\d+) tokens",
    )
    .and_then(|r| r.captures(text))
    {
        return pair(c, 2, 1);
    }
    let c = re(
        &INPUT_IDS,
        r"(?i)input length of input_ids is (\d+), but `?max_length`? is set to (\d+)",
    )?
    .captures(text)?;
    pair(c, 1, 2)
}

fn step(text: &str) -> Option<u64> {
    static STEP: OnceLock<Option<Regex>> = OnceLock::new();
    re(&STEP, r"(?i)\bstep[ =:]+(\d+)")?.captures(text)?[1]
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lengths_in_three_wordings() {
        assert_eq!(facts("sequence (5000 > 4096)").seq_len, Some((5000, 4096)));
        assert_eq!(
            facts("This model's maximum context length is 4097 tokens. However, you requested 4203 tokens (3703 in the messages").seq_len,
            Some((4203, 4097))
        );
        assert_eq!(
            facts("Input length of input_ids is 9000, but `max_length` is set to 8192.").seq_len,
            Some((9000, 8192))
        );
        assert_eq!(facts("(99999999999999999999999 > 1)").seq_len, None);
    }

    #[test]
    fn allocation_and_step() {
        let f = facts("Tried to allocate 2.00 GiB at step 17");
        assert_eq!(f.tried_bytes, Some(2.0 * 1024f64.powi(3)));
        assert_eq!(f.step, Some(17));
    }
}
