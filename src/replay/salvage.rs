//! `replay salvage --to NEW_DIR`: copy every readable event of the log into a fresh log in
//! NEW_DIR, reporting what was skipped (docs/storage.md, "a damaged event log"). The damaged
//! log is only read; NEW_DIR must not hold a log yet.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Args;
use tunewright_events::store::salvage::salvage;
use tunewright_schemas::DataLayout;

#[derive(Debug, Args)]
pub struct SalvageArgs {
    /// The data directory to write the fresh log to (created if missing; must hold no log).
    #[arg(long)]
    pub to: PathBuf,
}

pub fn run(from: &Path, a: &SalvageArgs) -> Result<ExitCode, String> {
    let to = DataLayout::new(&a.to).event_log();
    if to.exists() {
        return Err(format!(
            "{} already holds an event log ({}): salvage writes to a fresh directory only",
            a.to.display(),
            to.display()
        ));
    }
    std::fs::create_dir_all(&a.to).map_err(|e| format!("cannot create {}: {e}", a.to.display()))?;
    let report = salvage(from, &to).map_err(|e| e.to_string())?;
    for line in &report.skipped {
        println!("skipped: {line}");
    }
    println!(
        "salvaged {} events from {} into {}{}; {} skipped",
        report.copied,
        from.display(),
        to.display(),
        if report.raw_scan {
            " (by scanning the file's bytes: seqs renumbered in commit-time order)"
        } else {
            ""
        },
        report.skipped.len()
    );
    println!(
        "next: check it with `tunewright replay verify --data-dir {}`, then point the service at that directory (copy the other files of the old data directory across)",
        a.to.display()
    );
    Ok(ExitCode::SUCCESS)
}
