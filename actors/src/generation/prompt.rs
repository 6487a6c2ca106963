//! The prompts: generating grounded examples from a chunk, and the one repair request.

use super::llm_client::ChatMessage;

pub fn generation(chunk: &str, n: usize) -> Vec<ChatMessage> {
    vec![
        ChatMessage::system(
            "You write supervised fine-tuning data. Answer with a JSON array only, no prose, \
             no markdown: [{\"instruction\": \"...\", \"output\": \"...\"}]. Every instruction \
             must be answerable from the given text alone and every output must be grounded in it.",
        ),
        ChatMessage::user(format!(
            "Write {n} diverse instruction/output pairs about this text.\n\nTEXT:\n{chunk}"
        )),
    ]
}

pub fn repair(broken: &str) -> Vec<ChatMessage> {
    vec![
        ChatMessage::system(
            "You fix malformed JSON. Answer with the corrected JSON array only, no prose.",
        ),
        ChatMessage::user(format!(
            "This should be a JSON array of objects with string fields \"instruction\" and \
             \"output\" but does not parse. Return it corrected:\n\n{broken}"
        )),
    ]
}
