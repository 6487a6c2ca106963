//! Every call into redb on a file the service did not just write runs here: redb panics on some
//! damage (e.g. "Malformed allocator state"), and a damaged log must give `EVENT_LOG_ERROR` with
//! the place and the next step, never a panic or a backtrace (docs/storage.md, "a damaged
//! event log").
//!
//! `guarded` runs a closure under `catch_unwind` and turns a panic into `LogError::Damaged`. The
//! process's panic hook is wrapped once so that a panic inside a guarded call prints nothing
//! (the error carries the message); panics elsewhere still reach the previous hook.

use std::cell::Cell;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;
use std::sync::Once;

use super::LogError;

thread_local! {
    /// Set while this thread runs a guarded call.
    static GUARDED: Cell<u32> = const { Cell::new(0) };
}

static HOOK: Once = Once::new();

fn install_quiet_hook() {
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if GUARDED.with(|g| g.get()) == 0 {
                previous(info);
            }
        }));
    });
}

/// Leaves the guarded state when dropped, also while unwinding.
struct Depth;

impl Depth {
    fn enter() -> Depth {
        GUARDED.with(|g| g.set(g.get() + 1));
        Depth
    }
}

impl Drop for Depth {
    fn drop(&mut self) {
        GUARDED.with(|g| g.set(g.get().saturating_sub(1)));
    }
}

/// The text of a panic's payload.
pub fn panic_text(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "unknown fault".into())
}

/// Run `f` (an `operation` on the log at `path`); a panic inside becomes `LogError::Damaged`.
pub fn guarded<T>(
    path: &Path,
    operation: &'static str,
    f: impl FnOnce() -> Result<T, LogError>,
) -> Result<T, LogError> {
    install_quiet_hook();
    let depth = Depth::enter();
    let outcome = catch_unwind(AssertUnwindSafe(f));
    drop(depth);
    match outcome {
        Ok(r) => r,
        Err(payload) => Err(LogError::Damaged {
            path: path.to_path_buf(),
            operation: operation.to_string(),
            reason: format!("the storage engine failed: {}", panic_text(&*payload)),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_becomes_a_damaged_error_naming_the_place() {
        let r: Result<(), LogError> = guarded(Path::new("/x/events.redb"), "open", || {
            panic!("Malformed allocator state")
        });
        let e = r.unwrap_err().to_string();
        assert!(e.contains("/x/events.redb"), "{e}");
        assert!(e.contains("open"), "{e}");
        assert!(e.contains("Malformed allocator state"), "{e}");
        assert!(e.contains("replay salvage"), "{e}");
        // The thread left the guarded state.
        assert_eq!(GUARDED.with(|g| g.get()), 0);
    }
}
