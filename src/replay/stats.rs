//! `replay stats`: counts and bytes by event type, and the time span of the log.

use std::collections::BTreeMap;
use std::process::ExitCode;

use clap::Args;
use tunewright_events::LogReader;

use tunewright_events::timestamp::format_ts;

#[derive(Debug, Args)]
pub struct StatsArgs {
    /// Print the statistics as JSON.
    #[arg(long)]
    pub json: bool,
}

pub fn run(reader: &LogReader, a: &StatsArgs) -> Result<ExitCode, String> {
    let mut by_type: BTreeMap<&'static str, (u64, u64)> = BTreeMap::new();
    let (mut count, mut bytes) = (0u64, 0u64);
    let (mut first, mut last) = (None::<i64>, None::<i64>);
    let mut problem = None;
    reader
        .scan(|_seq, size, decoded| match decoded {
            Ok(e) => {
                count += 1;
                bytes += size as u64;
                let slot = by_type.entry(e.event.type_name()).or_default();
                slot.0 += 1;
                slot.1 += size as u64;
                first.get_or_insert(e.ts_ms);
                last = Some(e.ts_ms);
                true
            }
            Err(e) => {
                problem = Some(e.to_string());
                false
            }
        })
        .map_err(|e| e.to_string())?;
    if let Some(p) = problem {
        return Err(p);
    }
    if a.json {
        let types: serde_json::Map<String, serde_json::Value> = by_type
            .iter()
            .map(|(k, (n, b))| (k.to_string(), serde_json::json!({"count": n, "bytes": b})))
            .collect();
        println!(
            "{}",
            serde_json::json!({
                "events": count, "bytes": bytes,
                "first": first.map(format_ts), "last": last.map(format_ts),
                "span_ms": first.zip(last).map(|(f, l)| l - f),
                "by_type": types,
            })
        );
        return Ok(ExitCode::SUCCESS);
    }
    println!("{count} events, {bytes} bytes of records");
    if let (Some(f), Some(l)) = (first, last) {
        println!(
            "from {} to {} ({:.1} s)",
            format_ts(f),
            format_ts(l),
            (l - f) as f64 / 1000.0
        );
    }
    println!("{:<28} {:>10} {:>12}", "TYPE", "COUNT", "BYTES");
    for (t, (n, b)) in by_type {
        println!("{t:<28} {n:>10} {b:>12}");
    }
    Ok(ExitCode::SUCCESS)
}
