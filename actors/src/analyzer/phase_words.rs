//! The words people use for a phase ("start-up", "preprocessing", "resuming") mapped onto the
//! fixed phase vocabulary. Case, spaces, dashes and underscores are ignored; a word not in
//! the list is not an error, just not understood (the caller reports it as a hint).

use tunewright_schemas::ErrorPhase;

use ErrorPhase::*;

/// Words per phase, written without spaces, dashes or underscores, lower-case.
const WORDS: &[(ErrorPhase, &[&str])] = &[
    (
        Preflight,
        &[
            "preflight",
            "precheck",
            "startup",
            "start",
            "starting",
            "init",
            "initialization",
            "initialisation",
            "initializing",
            "initialising",
            "setup",
            "launch",
            "launching",
            "boot",
            "check",
            "checks",
            "configuration",
            "config",
        ],
    ),
    (
        ModelLoad,
        &[
            "modelload",
            "modelloading",
            "loadingmodel",
            "loadmodel",
            "loading",
            "load",
            "weights",
            "weightloading",
            "loadingweights",
            "modelinit",
        ],
    ),
    (
        DataLoad,
        &[
            "dataload",
            "dataloading",
            "loadingdata",
            "data",
            "dataset",
            "datasetloading",
            "preprocessing",
            "preprocess",
            "tokenization",
            "tokenisation",
            "tokenizing",
            "tokenising",
            "tokenize",
            "collation",
            "datapreparation",
            "dataprep",
        ],
    ),
    (
        Training,
        &[
            "training",
            "train",
            "trainer",
            "finetune",
            "finetuning",
            "fit",
            "fitting",
            "sft",
            "forward",
            "backward",
            "step",
            "optimizer",
            "optimization",
            "optimisation",
        ],
    ),
    (
        Evaluation,
        &[
            "evaluation",
            "eval",
            "evaluate",
            "evaluating",
            "validation",
            "validating",
            "val",
            "test",
            "testing",
        ],
    ),
    (
        Checkpoint,
        &[
            "checkpoint",
            "checkpointing",
            "checkpoints",
            "resume",
            "resuming",
            "restore",
            "restoring",
            "savingcheckpoint",
            "checkpointsave",
            "checkpointload",
        ],
    ),
    (
        Export,
        &[
            "export",
            "exporting",
            "saving",
            "save",
            "merge",
            "merging",
            "convert",
            "conversion",
            "gguf",
            "push",
            "pushtohub",
            "upload",
            "uploading",
        ],
    ),
    (
        Generation,
        &[
            "generation",
            "generate",
            "generating",
            "datageneration",
            "datasetgeneration",
            "datagen",
            "synthesis",
            "synthetic",
            "llm",
            "inference",
            "preview",
            "datasetpreview",
        ],
    ),
    (Unknown, &["unknown"]),
];

/// `start-up` -> `startup`: what is compared.
fn normalise(word: &str) -> String {
    word.chars()
        .filter(|c| !matches!(c, ' ' | '-' | '_' | '\t'))
        .flat_map(char::to_lowercase)
        .collect()
}

/// The phase a user's word names, or `None` when it is not one we know.
pub fn understand_phase(word: &str) -> Option<ErrorPhase> {
    let w = normalise(word);
    if let Some(p) = ErrorPhase::ALL.iter().find(|p| normalise(p.as_str()) == w) {
        return Some(*p);
    }
    WORDS
        .iter()
        .find(|(_, words)| words.contains(&w.as_str()))
        .map(|(p, _)| *p)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn common_words_and_spellings() {
        for (word, phase) in [
            ("start-up", Preflight),
            ("Startup", Preflight),
            ("INIT", Preflight),
            ("loading", ModelLoad),
            ("model_load", ModelLoad),
            ("Model Load", ModelLoad),
            ("pre-processing", DataLoad),
            ("tokenization", DataLoad),
            ("resuming", Checkpoint),
            ("data generation", Generation),
            ("generate", Generation),
            ("validation", Evaluation),
            ("merge", Export),
            ("fine-tuning", Training),
        ] {
            assert_eq!(understand_phase(word), Some(phase), "{word}");
        }
        assert_eq!(understand_phase("sometime"), None);
        assert_eq!(understand_phase(""), None);
    }

    #[test]
    fn every_phase_name_is_understood() {
        for p in ErrorPhase::ALL {
            assert_eq!(understand_phase(p.as_str()), Some(*p));
        }
    }

    #[test]
    fn no_word_names_two_phases() {
        let mut seen = std::collections::HashSet::new();
        for (_, words) in WORDS {
            for w in *words {
                assert!(seen.insert(*w), "{w} listed twice");
                assert_eq!(normalise(w), *w, "{w} is not written normalised");
            }
        }
    }
}
