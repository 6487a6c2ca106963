//! Generation: greedy tokens equal transformers' `generate` on every tiny fixture (one Python
//! run for all of them), decoding with the key/value cache equals re-running the whole
//! sequence (sliding windows and soft-caps included, base and adapter), and the stop ids.

mod support;

use tch::{Device, Kind, Tensor};
use tunewright_trainer::generate::{generate, stop_ids, GenerateOptions, Sampling, StopReason};
use tunewright_trainer::model::{CausalLm, LoraSettings};

use support::{fixture, get, reference, FAMILIES};

/// Row 0 of the fixture's reference input ids.
fn prompt(family: &str) -> Vec<i64> {
    let r = reference(family);
    let ids = get(&r, "input_ids").select(0, 0);
    Vec::<i64>::try_from(&ids).unwrap()
}

#[test]
fn greedy_tokens_equal_transformers_generate_on_every_family() {
    const NEW: usize = 12;
    let mut cases = Vec::new();
    let mut ours = Vec::new();
    for family in FAMILIES {
        let dir = fixture(family);
        let model = CausalLm::load(&dir, Device::Cpu, Kind::Float, None, 0).unwrap();
        let stops = stop_ids(&dir).unwrap();
        let p = prompt(family);
        let g = generate(&model, &p, &GenerateOptions::greedy(NEW, stops.clone())).unwrap();
        cases.push(serde_json::json!({
            "model_dir": dir.display().to_string(), "prompt": p,
            "max_new_tokens": NEW, "stop_ids": stops,
        }));
        ours.push(g.tokens);
    }
    let tmp = tempfile::tempdir().unwrap();
    let spec = tmp.path().join("spec.json");
    let out = tmp.path().join("out.json");
    std::fs::write(&spec, serde_json::to_vec(&cases).unwrap()).unwrap();
    support::python("generate_reference.py", &[&spec, &out], &[]);
    let theirs: Vec<Vec<i64>> = serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
    for ((family, a), b) in FAMILIES.iter().zip(&ours).zip(&theirs) {
        assert_eq!(a, b, "{family}: tunewright vs transformers greedy tokens");
        assert!(!a.is_empty(), "{family}");
    }
}

fn lora_with_nonzero_b(family: &str) -> CausalLm {
    let _rng = support::rng_lock();
    let lora = LoraSettings {
        r: 4,
        alpha: 8.0,
        dropout: 0.0,
        target_modules: vec!["all-linear".into()],
    };
    let mut model =
        CausalLm::load(&fixture(family), Device::Cpu, Kind::Float, Some(&lora), 3).unwrap();
    tch::manual_seed(11);
    let params: Vec<(String, Tensor)> = model
        .lora_parameters()
        .into_iter()
        .map(|(n, t)| (n, Tensor::randn(t.size(), (Kind::Float, Device::Cpu)) * 0.2))
        .collect();
    model.load_lora_parameters(&params).unwrap();
    model
}

#[test]
fn the_kv_cache_gives_the_tokens_and_logits_of_full_recomputation() {
    // Mistral and Gemma slide a window of 4 over a longer sequence; Gemma 2 soft-caps.
    for family in ["mistral", "gemma2", "gemma3", "phi3"] {
        let model = lora_with_nonzero_b(family);
        let mut opts = GenerateOptions::greedy(10, Vec::new());
        opts.keep_logits = true;
        let cached = generate(&model, &prompt(family), &opts).unwrap();
        opts.use_cache = false;
        let full = generate(&model, &prompt(family), &opts).unwrap();
        assert_eq!(cached.tokens, full.tokens, "{family}");
        assert_eq!(cached.stop, StopReason::Length);
        for (a, b) in cached.logits.iter().zip(&full.logits) {
            let d = support::max_diff(a, b);
            assert!(d <= 1e-4, "{family}: cached vs full logits differ by {d}");
        }
    }
}

#[test]
fn sampling_is_seeded_and_generation_stops_at_a_stop_id() {
    let model = lora_with_nonzero_b("qwen2");
    let p = prompt("qwen2");
    let sampled = |seed| {
        let opts = GenerateOptions {
            sampling: Sampling::Sample {
                temperature: 1.5,
                top_p: 0.95,
                seed,
            },
            ..GenerateOptions::greedy(16, Vec::new())
        };
        generate(&model, &p, &opts).unwrap().tokens
    };
    assert_eq!(sampled(1), sampled(1));
    assert_ne!(sampled(1), sampled(2));
    // Stop at the greedy path's third token: generation ends there, the stop id kept.
    let greedy = generate(&model, &p, &GenerateOptions::greedy(8, Vec::new())).unwrap();
    let stop = greedy.tokens[2];
    let first = greedy.tokens.iter().position(|t| *t == stop).unwrap();
    let stopped = generate(&model, &p, &GenerateOptions::greedy(8, vec![stop])).unwrap();
    assert_eq!(stopped.stop, StopReason::Stop);
    assert_eq!(stopped.tokens, greedy.tokens[..=first]);
    let e = generate(&model, &[], &GenerateOptions::greedy(8, Vec::new())).unwrap_err();
    assert_eq!(e.code(), tunewright_schemas::ErrorCode::ValidationError);
    assert!(e.to_string().contains("no tokens"), "{e}");
}

#[test]
fn stop_ids_include_eos_and_end_of_turn_tokens() {
    // Qwen2: eos <|im_end|> (2) and <|endoftext|> (0); Llama 3: <|end_of_text|> and <|eot_id|>.
    assert_eq!(stop_ids(&fixture("qwen2")).unwrap(), vec![0, 2]);
    let llama = stop_ids(&fixture("llama")).unwrap();
    assert!(llama.contains(&5), "{llama:?}");
    assert!(llama.len() >= 2, "{llama:?}");
}
