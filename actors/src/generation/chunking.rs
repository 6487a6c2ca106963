//! Splitting document text into chunks of about N (estimated) tokens with overlap, cutting
//! at paragraph boundaries where it can and at word boundaries inside oversized paragraphs.

/// A tokenizer-free token estimate: the larger of chars/4 and words*4/3 (close to BPE counts
/// for English prose and code alike).
pub fn estimate_tokens(text: &str) -> usize {
    let chars = text.chars().count();
    let words = text.split_whitespace().count();
    (chars.div_ceil(4)).max((words * 4).div_ceil(3))
}

/// One chunk of one document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chunk {
    pub index: u32,
    pub document: String,
    pub text: String,
}

/// Chunks of `text`, each at most about `max_tokens`, each starting with about
/// `overlap_tokens` of the previous one's tail.
pub fn chunk_text(text: &str, max_tokens: usize, overlap_tokens: usize) -> Vec<String> {
    let max_tokens = max_tokens.max(8);
    let mut pieces: Vec<String> = Vec::new();
    for para in text.split("\n\n").map(str::trim).filter(|p| !p.is_empty()) {
        if estimate_tokens(para) <= max_tokens {
            pieces.push(para.to_string());
        } else {
            // Leave room for the overlap carried into each piece's chunk.
            pieces.extend(split_words(
                para,
                max_tokens.saturating_sub(overlap_tokens).max(4),
            ));
        }
    }
    let mut chunks: Vec<String> = Vec::new();
    let mut current = String::new();
    for piece in pieces {
        let candidate = if current.is_empty() {
            piece.clone()
        } else {
            format!("{current}\n\n{piece}")
        };
        if estimate_tokens(&candidate) <= max_tokens || current.is_empty() {
            current = candidate;
            continue;
        }
        let tail = tail_words(&current, overlap_tokens);
        chunks.push(std::mem::take(&mut current));
        current =
            if tail.is_empty() || estimate_tokens(&tail) + estimate_tokens(&piece) > max_tokens {
                piece
            } else {
                format!("{tail}\n\n{piece}")
            };
    }
    if !current.trim().is_empty() {
        chunks.push(current);
    }
    chunks
}

fn split_words(para: &str, max_tokens: usize) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    for w in para.split_whitespace() {
        let next = if cur.is_empty() {
            w.to_string()
        } else {
            format!("{cur} {w}")
        };
        if estimate_tokens(&next) > max_tokens && !cur.is_empty() {
            out.push(std::mem::take(&mut cur));
            cur = w.to_string();
        } else {
            cur = next;
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

fn tail_words(text: &str, tokens: usize) -> String {
    if tokens == 0 {
        return String::new();
    }
    let words: Vec<&str> = text.split_whitespace().collect();
    let mut start = words.len();
    while start > 0 && estimate_tokens(&words[start - 1..].join(" ")) <= tokens {
        start -= 1;
    }
    words[start..].join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn respects_paragraphs_and_size() {
        let para = "word ".repeat(30);
        let text = format!("{para}\n\n{para}\n\n{para}");
        let chunks = chunk_text(&text, 60, 0);
        assert_eq!(chunks.len(), 3);
        assert!(chunks.iter().all(|c| estimate_tokens(c) <= 60));
    }

    #[test]
    fn overlap_repeats_tail() {
        let text = (0..200)
            .map(|i| format!("w{i}"))
            .collect::<Vec<_>>()
            .join(" ");
        let chunks = chunk_text(&text, 50, 10);
        assert!(chunks.len() > 2);
        let last_of_first = chunks[0].split_whitespace().last().unwrap();
        assert!(chunks[1].contains(last_of_first));
        assert!(chunks.iter().all(|c| estimate_tokens(c) <= 50));
    }

    #[test]
    fn empty_text_has_no_chunks() {
        assert!(chunk_text("  \n\n ", 100, 10).is_empty());
    }
}
