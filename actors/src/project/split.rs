//! Splitting a dataset into named parts (docs/projects.md, "Splits"): the ratio rules, the
//! number of examples each part gets, and which examples those are (`part_members`).

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

/// SplitMix64: the split's own seeded generator, so a seed gives the same parts everywhere.
fn splitmix(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE5_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The indices (in file order) of the `n` examples that make up `part` of a split with
/// `counts` and `seed`: the examples are shuffled with the seed (Fisher-Yates over
/// SplitMix64), then dealt to the parts in their order, each its count. A part the split does
/// not have is empty.
pub fn part_members(n: u64, counts: &[(String, u64)], seed: u64, part: &str) -> Vec<usize> {
    let mut order: Vec<usize> = (0..n as usize).collect();
    let mut state = seed;
    for i in (1..order.len()).rev() {
        let j = (splitmix(&mut state) % (i as u64 + 1)) as usize;
        order.swap(i, j);
    }
    let mut start = 0usize;
    for (name, count) in counts {
        let end = (start + *count as usize).min(order.len());
        if name == part {
            let mut members = order[start..end].to_vec();
            members.sort_unstable();
            return members;
        }
        start = end;
    }
    Vec::new()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_are_disjoint_cover_the_dataset_and_follow_the_seed() {
        let counts = vec![("train".to_string(), 81), ("val".to_string(), 20)];
        let train = part_members(101, &counts, 42, "train");
        let val = part_members(101, &counts, 42, "val");
        assert_eq!((train.len(), val.len()), (81, 20));
        let mut all: Vec<usize> = train.iter().chain(&val).copied().collect();
        all.sort_unstable();
        assert_eq!(all, (0..101).collect::<Vec<_>>());
        assert_eq!(
            val,
            part_members(101, &counts, 42, "val"),
            "same seed, same part"
        );
        assert_ne!(
            val,
            part_members(101, &counts, 43, "val"),
            "another seed deals anew"
        );
        assert!(part_members(101, &counts, 42, "test").is_empty());
    }

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
