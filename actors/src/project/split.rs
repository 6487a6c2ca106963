//! Splitting a dataset into named parts (docs/projects.md, "Splits"): the ratio rules and the
//! number of examples each part gets.

use tunewright_schemas::{ctx, ErrorCode, Failure};

fn validation(reason: impl Into<String>) -> Failure {
    Failure::new(ErrorCode::ValidationError, ctx! {"reason" => reason.into()})
}

/// The split rules of docs/projects.md; the examples per part.
pub fn split_counts(ratios: &[(String, f64)], n: u64) -> Result<Vec<(String, u64)>, Failure> {
    if ratios
        .iter()
        .any(|(k, r)| k.trim().is_empty() || !r.is_finite() || *r < 0.0 || *r > 1.0)
    {
        return Err(validation("each ratio must be named and between 0 and 1"));
    }
    let total: f64 = ratios.iter().map(|(_, r)| r).sum();
    if (total - 1.0).abs() > 0.01 {
        return Err(validation(format!("Ratios must sum to 1.0, got {total}")));
    }
    if !ratios.iter().any(|(k, _)| k == "train") || !ratios.iter().any(|(k, _)| k == "val") {
        return Err(validation("Ratios must include 'train' and 'val'"));
    }
    let mut names = std::collections::HashSet::new();
    if !ratios.iter().all(|(k, _)| names.insert(k)) {
        return Err(validation("ratio names must be unique"));
    }
    let mut counts: Vec<(String, u64)> = ratios
        .iter()
        .map(|(k, r)| (k.clone(), (n as f64 * r / total).floor() as u64))
        .collect();
    let assigned: u64 = counts.iter().map(|(_, c)| c).sum();
    if let Some(train) = counts.iter_mut().find(|(k, _)| k == "train") {
        train.1 += n.saturating_sub(assigned);
    }
    Ok(counts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_validation_follows_the_documented_rules() {
        let r = |v: &[(&str, f64)]| {
            v.iter()
                .map(|(k, r)| (k.to_string(), *r))
                .collect::<Vec<_>>()
        };
        assert_eq!(
            split_counts(&r(&[("train", 0.8), ("val", 0.2)]), 101).unwrap(),
            vec![("train".into(), 81), ("val".into(), 20)]
        );
        assert!(split_counts(&r(&[("train", 0.8), ("val", 0.1)]), 10)
            .unwrap_err()
            .detail
            .contains("sum to 1.0"));
        assert!(split_counts(&r(&[("train", 0.8), ("test", 0.2)]), 10)
            .unwrap_err()
            .detail
            .contains("'train' and 'val'"));
        assert!(
            split_counts(&r(&[("train", 0.805), ("val", 0.2)]), 10).is_ok(),
            "within 0.01"
        );
        assert!(split_counts(&r(&[("train", f64::NAN), ("val", 0.2)]), 10).is_err());
    }
}
