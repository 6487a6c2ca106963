//! Wall-clock timestamps as the API, the replay tool and the logs show them: milliseconds since
//! the Unix epoch <-> RFC 3339 UTC (`2026-11-22T16:07:47.123Z`), with no time-zone database.

/// Milliseconds since the epoch as RFC 3339 UTC (e.g. `2026-11-22T16:07:47.123Z`).
pub fn format_ts(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let millis = ms.rem_euclid(1000);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{millis:03}Z",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}

/// Parse a time bound: milliseconds since the epoch, or RFC 3339 `YYYY-MM-DDTHH:MM:SS[.fff]Z`.
pub fn parse_ts(text: &str) -> Result<i64, String> {
    if let Ok(ms) = text.parse::<i64>() {
        return Ok(ms);
    }
    let bad = || format!("'{text}' is not a time (use ms since the epoch or YYYY-MM-DDTHH:MM:SSZ)");
    let t = text.strip_suffix('Z').ok_or_else(bad)?;
    let (date, time) = t.split_once('T').ok_or_else(bad)?;
    let dp: Vec<&str> = date.split('-').collect();
    if dp.len() != 3 {
        return Err(bad());
    }
    let (y, mo, d): (i64, i64, i64) = (
        dp[0].parse().map_err(|_| bad())?,
        dp[1].parse().map_err(|_| bad())?,
        dp[2].parse().map_err(|_| bad())?,
    );
    let (hms, frac) = time.split_once('.').unwrap_or((time, "0"));
    let tp: Vec<&str> = hms.split(':').collect();
    if tp.len() != 3 || !(1..=12).contains(&mo) || !(1..=31).contains(&d) {
        return Err(bad());
    }
    let (h, mi, s): (i64, i64, i64) = (
        tp[0].parse().map_err(|_| bad())?,
        tp[1].parse().map_err(|_| bad())?,
        tp[2].parse().map_err(|_| bad())?,
    );
    let frac_ms: i64 = format!("{:0<3}", frac.chars().take(3).collect::<String>())
        .parse()
        .map_err(|_| bad())?;
    let days = days_from_civil(y, mo, d);
    Ok(((days * 86_400 + h * 3600 + mi * 60 + s) * 1000) + frac_ms)
}

// Howard Hinnant's civil-date algorithms.
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_round_trip() {
        for ms in [0i64, 1_700_000_000_123, 1_795_363_667_000, 951_782_400_000] {
            assert_eq!(parse_ts(&format_ts(ms)).unwrap(), ms);
        }
        assert_eq!(format_ts(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(parse_ts("2026-11-22T16:07:47Z").unwrap(), 1_795_363_667_000);
        assert!(parse_ts("yesterday").is_err());
        assert!(parse_ts("2026-13-01T00:00:00Z").is_err());
    }
}
