//! The studio's HTML templates (minijinja; `templates/*.html`, embedded at build time) and the
//! filters that put units on numbers. `.html` templates auto-escape everything a user or the
//! log supplies. Undefined values are errors (strict mode), so a template that names a field a
//! view model lacks fails its test (`tests` below renders every template) instead of showing
//! an empty cell.

use std::sync::OnceLock;

use axum::response::Html;
use minijinja::{Environment, UndefinedBehavior, Value};
use serde::Serialize;

use crate::http::error::ApiError;

/// Every template, by name.
pub const TEMPLATES: &[(&str, &str)] = &[
    ("layout.html", include_str!("templates/layout.html")),
    ("macros.html", include_str!("templates/macros.html")),
    ("login.html", include_str!("templates/login.html")),
    ("error_page.html", include_str!("templates/error_page.html")),
    ("dashboard.html", include_str!("templates/dashboard.html")),
    ("hardware.html", include_str!("templates/hardware.html")),
    ("project.html", include_str!("templates/project.html")),
    ("field.html", include_str!("templates/field.html")),
    (
        "project_documents.html",
        include_str!("templates/project_documents.html"),
    ),
    (
        "project_dataset.html",
        include_str!("templates/project_dataset.html"),
    ),
    (
        "project_evaluations.html",
        include_str!("templates/project_evaluations.html"),
    ),
    (
        "project_jobs.html",
        include_str!("templates/project_jobs.html"),
    ),
    ("job.html", include_str!("templates/job.html")),
    (
        "job_summary.html",
        include_str!("templates/job_summary.html"),
    ),
    ("job_story.html", include_str!("templates/job_story.html")),
    (
        "resume_card.html",
        include_str!("templates/resume_card.html"),
    ),
    ("compare.html", include_str!("templates/compare.html")),
];

fn env() -> &'static Environment<'static> {
    static ENV: OnceLock<Environment<'static>> = OnceLock::new();
    ENV.get_or_init(|| {
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        for (name, source) in TEMPLATES {
            if let Err(e) = env.add_template(name, source) {
                tracing::error!(template = name, error = %e, "a studio template does not compile");
            }
        }
        env.add_filter("bytes", bytes);
        env.add_filter("seconds", seconds);
        env.add_filter("number", number);
        env.add_filter("sci", sci);
        env
    })
}

/// Render `name` with `context`.
pub fn render(name: &str, context: impl Serialize) -> Result<Html<String>, ApiError> {
    env()
        .get_template(name)
        .and_then(|t| t.render(Value::from_serialize(&context)))
        .map(Html)
        .map_err(|e| ApiError::internal(format!("rendering {name}: {e:#}")))
}

/// `1536` -> `1.5 KiB`.
pub fn bytes(v: Value) -> String {
    let Some(n) = v
        .as_i64()
        .map(|n| n as f64)
        .or_else(|| f64::try_from(v).ok())
    else {
        return "—".into();
    };
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut x = n;
    let mut unit = 0;
    while x >= 1024.0 && unit + 1 < UNITS.len() {
        x /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n:.0} B")
    } else {
        format!("{x:.1} {}", UNITS[unit])
    }
}

/// Seconds as `42 s`, `3 min 05 s`, `2 h 07 min`.
pub fn seconds(v: Value) -> String {
    let Ok(s) = f64::try_from(v) else {
        return "—".into();
    };
    if !s.is_finite() || s < 0.0 {
        return "—".into();
    }
    let s = s.round() as u64;
    match s {
        0..60 => format!("{s} s"),
        60..3600 => format!("{} min {:02} s", s / 60, s % 60),
        _ => format!("{} h {:02} min", s / 3600, (s % 3600) / 60),
    }
}

/// A number with `digits` decimals and thousands separators.
pub fn number(v: Value, digits: Option<u32>) -> String {
    let Ok(x) = f64::try_from(v) else {
        return "—".into();
    };
    if !x.is_finite() {
        return "—".into();
    }
    let text = format!("{:.*}", digits.unwrap_or(0) as usize, x.abs());
    let (int, frac) = text.split_once('.').unwrap_or((&text, ""));
    let mut grouped = String::new();
    for (i, c) in int.chars().enumerate() {
        if i > 0 && (int.len() - i) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(c);
    }
    let sign = if x < 0.0 { "-" } else { "" };
    if frac.is_empty() {
        format!("{sign}{grouped}")
    } else {
        format!("{sign}{grouped}.{frac}")
    }
}

/// A small number in scientific notation: `0.0002` -> `2.0e-4`.
pub fn sci(v: Value) -> String {
    match f64::try_from(v) {
        Ok(x) if x.is_finite() => format!("{x:.1e}"),
        _ => "—".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units() {
        assert_eq!(bytes(Value::from(512)), "512 B");
        assert_eq!(bytes(Value::from(1536)), "1.5 KiB");
        assert_eq!(bytes(Value::from(50 * 1024 * 1024)), "50.0 MiB");
        assert_eq!(bytes(Value::from(())), "—");
        assert_eq!(seconds(Value::from(42.4)), "42 s");
        assert_eq!(seconds(Value::from(185)), "3 min 05 s");
        assert_eq!(seconds(Value::from(7620)), "2 h 07 min");
        assert_eq!(number(Value::from(1234567.891), Some(2)), "1,234,567.89");
        assert_eq!(number(Value::from(-999), None), "-999");
        assert_eq!(sci(Value::from(0.0002)), "2.0e-4");
    }

    #[test]
    fn every_template_compiles() {
        for (name, _) in TEMPLATES {
            assert!(env().get_template(name).is_ok(), "{name}");
        }
    }
}
