//! A split's parts as files a worker reads: the non-empty lines of the project's dataset that
//! `split::part_members` deals to a part, in file order, one JSON example per line. A training
//! with a split trains on its `train` part and evaluates on its `val` part; an evaluation scores
//! the `val` part, so what it scores was held out of the training (docs/projects.md, "Splits").

use std::path::Path;

use tunewright_events::projection::SplitView;

use super::split::part_members;

/// Write `part` of `split` of the dataset at `dataset` to `out` (the whole dataset when `split`
/// is `None`); the number of examples written. `Err` names the file that failed.
pub fn write_part(
    dataset: &Path,
    split: Option<&SplitView>,
    part: &str,
    out: &Path,
) -> Result<usize, String> {
    let text = std::fs::read_to_string(dataset)
        .map_err(|e| format!("reading the dataset {}: {e}", dataset.display()))?;
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    let chosen: Vec<&str> = match split {
        None => lines,
        Some(s) => part_members(lines.len() as u64, &s.counts, s.seed, part)
            .into_iter()
            .filter_map(|i| lines.get(i).copied())
            .collect(),
    };
    let mut body = chosen.join("\n");
    body.push('\n');
    if let Some(parent) = out.parent() {
        std::fs::create_dir_all(parent).map_err(|e| format!("{}: {e}", parent.display()))?;
    }
    std::fs::write(out, body).map_err(|e| format!("{}: {e}", out.display()))?;
    Ok(chosen.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use tunewright_schemas::{DatasetId, SplitId};

    #[test]
    fn the_parts_of_a_split_share_no_example_and_cover_the_dataset() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("d.jsonl");
        let lines: Vec<String> = (0..50).map(|i| format!("{{\"i\":{i}}}")).collect();
        std::fs::write(&data, lines.join("\n\n")).unwrap();
        let split = SplitView {
            id: SplitId::new(),
            name: "s".into(),
            dataset_id: DatasetId::new(),
            ratios: vec![("train".into(), 0.8), ("val".into(), 0.2)],
            seed: 9,
            counts: vec![("train".into(), 40), ("val".into(), 10)],
        };
        let read = |part: &str| {
            let out = dir.path().join(format!("{part}.jsonl"));
            let n = write_part(&data, Some(&split), part, &out).unwrap();
            let got: Vec<String> = std::fs::read_to_string(&out)
                .unwrap()
                .lines()
                .map(str::to_string)
                .collect();
            assert_eq!(got.len(), n);
            got
        };
        let (train, val) = (read("train"), read("val"));
        assert_eq!((train.len(), val.len()), (40, 10));
        assert!(val.iter().all(|l| !train.contains(l)), "held out");
        let mut all: Vec<String> = train.into_iter().chain(val).collect();
        all.sort();
        let mut expected = lines.clone();
        expected.sort();
        assert_eq!(all, expected);
        let whole = dir.path().join("whole.jsonl");
        assert_eq!(write_part(&data, None, "val", &whole).unwrap(), 50);
        assert!(write_part(&dir.path().join("gone"), None, "val", &whole).is_err());
    }
}
