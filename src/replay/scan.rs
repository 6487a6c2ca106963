//! Reading a whole log in pages, for the replay sub-commands.

use tunewright_events::{LogError, LogReader, StoredEvent};

/// Events read per batch while scanning.
pub const PAGE: usize = 16_384;

/// Call `f` with every event after `after`, in pages; stops early when `f` returns false.
pub fn for_each_event(
    reader: &LogReader,
    after: u64,
    mut f: impl FnMut(&StoredEvent) -> bool,
) -> Result<(), LogError> {
    let mut cursor = after;
    loop {
        let page = reader.read_after(cursor, PAGE)?;
        let Some(last) = page.last() else {
            return Ok(());
        };
        cursor = last.seq;
        for e in &page {
            if !f(e) {
                return Ok(());
            }
        }
    }
}
