//! QLoRA's 4-bit storage against bitsandbytes itself (`quantize_4bit`, blocks of 64, NF4 and
//! FP4, with and without double quantization): the same packed bytes, absmax and dequantized
//! weights; with double quantization the same packed bytes, offset and absmax of the absmax
//! blocks, and the same 8-bit absmax codes except at near-ties: where a scaled absmax lies
//! within 1e-4 of the midpoint between two neighbouring codes of the dynamic map,
//! bitsandbytes' CPU kernel (a table-driven search, not reproduced here) sometimes returns the
//! farther neighbour, while tunewright takes the nearest (the arithmetic of bitsandbytes'
//! reference kernel). And QLoRA runs whose adapters load in PEFT on transformers' model
//! of the base loaded 4-bit through bitsandbytes and give tunewright's logits.

mod support;

use tch::{Device, Kind, Tensor};
use tunewright_schemas::config::QuantType4bit;
use tunewright_trainer::export::files::{read_safetensors, write_safetensors};
use tunewright_trainer::export::read_adapter;
use tunewright_trainer::model::quant::{dynamic_map, Absmax, Quantized4bit, ABSMAX_BLOCK};
use tunewright_trainer::model::{CausalLm, LoadOptions, QuantSettings};
use tunewright_trainer::train::train;

use support::{
    fixture, get, max_diff, peft_logits, python, reference, rng_lock, train_spec, Recorder,
};

fn weights() -> Vec<(String, Tensor)> {
    let _rng = rng_lock();
    tch::manual_seed(11);
    vec![
        // A weight-like matrix: 128 blocks of 64.
        (
            "square".to_string(),
            Tensor::randn([128, 64], (Kind::Float, Device::Cpu)) * 0.05,
        ),
        // 150 values: two full blocks and a partial one; more than 256 blocks for the absmax.
        (
            "ragged".to_string(),
            Tensor::randn([3, 50], (Kind::Float, Device::Cpu)),
        ),
        (
            "many_blocks".to_string(),
            Tensor::randn([300, 64], (Kind::Float, Device::Cpu)) * 0.02,
        ),
    ]
}

#[test]
fn packed_bytes_and_absmax_equal_bitsandbytes() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("weights.safetensors");
    let out = dir.path().join("bnb.safetensors");
    let ws = weights();
    write_safetensors(&input, &ws).unwrap();
    python("bnb_quantize.py", &[&input, &out], &[]);
    let bnb = read_safetensors(&out).unwrap();
    assert!(
        dynamic_map(Device::Cpu).equal(get(&bnb, "dynamic_map")),
        "dynamic map"
    );
    for (name, w) in &ws {
        for (qt, qn) in [(QuantType4bit::Nf4, "nf4"), (QuantType4bit::Fp4, "fp4")] {
            for double in [false, true] {
                let key = format!("{name}.{qn}.{}", if double { "double" } else { "plain" });
                let q = Quantized4bit::quantize(w, qt, double).unwrap();
                assert!(
                    q.packed.equal(get(&bnb, &format!("{key}.packed"))),
                    "{key}: packed bytes"
                );
                match &q.absmax {
                    Absmax::Plain(a) => assert!(
                        a.equal(get(&bnb, &format!("{key}.absmax"))),
                        "{key}: absmax"
                    ),
                    Absmax::Double {
                        codes,
                        absmax2,
                        offset,
                    } => {
                        assert!(
                            absmax2.equal(get(&bnb, &format!("{key}.absmax2"))),
                            "{key}: absmax2"
                        );
                        assert!(
                            offset
                                .reshape([1])
                                .equal(get(&bnb, &format!("{key}.offset"))),
                            "{key}: offset"
                        );
                        let theirs = get(&bnb, &format!("{key}.codes"));
                        let differ = near_ties_only(w, qt, &q, theirs, &key);
                        println!(
                            "{key}: {differ} of {} absmax codes differ (near-ties)",
                            codes.numel()
                        );
                    }
                }
                let d = max_diff(
                    &q.dequantize(Kind::Float),
                    get(&bnb, &format!("{key}.dequantized")),
                );
                if !double {
                    assert_eq!(d, 0.0, "{key}: dequantized weights");
                }
                let err = max_diff(&q.dequantize(Kind::Float), w) / w.abs().max().double_value(&[]);
                assert!(
                    err < 0.2,
                    "{key}: 4 bits keep the weight within a block's step ({err})"
                );
            }
        }
    }
}

/// Codes that differ from bitsandbytes' are neighbours in the dynamic map, and the scaled
/// absmax lies within 1e-4 of their midpoint (a near-tie). Returns how many differ.
fn near_ties_only(
    w: &Tensor,
    qt: QuantType4bit,
    q: &Quantized4bit,
    theirs: &Tensor,
    key: &str,
) -> usize {
    let map = dynamic_map(Device::Cpu);
    let Absmax::Double {
        codes,
        offset,
        absmax2,
    } = &q.absmax
    else {
        panic!("{key}: not double-quantized")
    };
    let Absmax::Plain(absmax) = Quantized4bit::quantize(w, qt, false).unwrap().absmax else {
        panic!("{key}: plain")
    };
    let scaled = |i: i64| {
        (absmax.double_value(&[i]) - offset.double_value(&[]))
            / absmax2.double_value(&[i / ABSMAX_BLOCK])
    };
    let ours: Vec<i64> = Vec::try_from(&codes.to_kind(Kind::Int64)).unwrap();
    let theirs: Vec<i64> = Vec::try_from(&theirs.to_kind(Kind::Int64)).unwrap();
    let mut differ = 0;
    for (i, (a, b)) in ours.iter().zip(&theirs).enumerate() {
        if a == b {
            continue;
        }
        differ += 1;
        assert_eq!((a - b).abs(), 1, "{key}: code {i} is {a}, bitsandbytes {b}");
        let mid = (map.double_value(&[*a]) + map.double_value(&[*b])) / 2.0;
        let x = scaled(i as i64);
        assert!(
            (x - mid).abs() < 1e-4,
            "{key}: code {i}: {x} is not a near-tie at {mid}"
        );
    }
    assert!(
        differ * 50 <= ours.len(),
        "{key}: {differ} of {} codes differ",
        ours.len()
    );
    differ
}

#[test]
fn four_bit_storage_is_about_an_eighth_of_f32() {
    let w = Tensor::randn([256, 256], (Kind::Float, Device::Cpu));
    let plain = Quantized4bit::quantize(&w, QuantType4bit::Nf4, false).unwrap();
    let double = Quantized4bit::quantize(&w, QuantType4bit::Nf4, true).unwrap();
    let f32_bytes = 256 * 256 * 4;
    // 0.5 byte per value + 4 bytes per 64 values (plain) or ~1 byte per 64 (double).
    assert_eq!(plain.bytes(), 256 * 256 / 2 + 4 * 256 * 256 / 64);
    assert_eq!(double.bytes(), 256 * 256 / 2 + 256 * 256 / 64 + 4 * 4 + 4);
    assert!((double.bytes() as f64) < 0.14 * f32_bytes as f64);
}

#[test]
fn a_qlora_run_trains_and_its_adapter_loads_in_peft_on_bitsandbytes_4bit() {
    // bitsandbytes holds the same bytes and dequantizes, then multiplies, as tunewright does:
    // the logits are exactly equal (the fixture's absmax values have no near-tie, so double
    // quantization stores the same codes too).
    for (qt, double) in [("nf4", false), ("fp4", false), ("nf4", true)] {
        let dir = tempfile::tempdir().unwrap();
        let extra = serde_json::json!({
            "load_in_4bit": true, "bnb_4bit_quant_type": qt, "bnb_4bit_use_double_quant": double
        });
        let spec = train_spec("llama", dir.path(), extra);
        let mut rec = Recorder::default();
        train(&spec, &mut rec).unwrap();
        let losses: Vec<f64> = rec.progress.iter().map(|p| p.loss).collect();
        assert!(
            losses[9..].iter().sum::<f64>() < losses[..3].iter().sum::<f64>() * 0.9,
            "{losses:?}"
        );
        let adapter_dir = dir.path().join("adapter");
        let adapter = read_adapter(&adapter_dir).unwrap();
        let options = LoadOptions {
            quant: Some(QuantSettings {
                quant_type: if qt == "nf4" {
                    QuantType4bit::Nf4
                } else {
                    QuantType4bit::Fp4
                },
                double_quant: double,
            }),
        };
        let mut model = CausalLm::load_with(
            &fixture("llama"),
            Device::Cpu,
            Kind::Float,
            Some(&adapter.settings),
            0,
            options,
        )
        .unwrap();
        model.load_lora_parameters(&adapter.tensors).unwrap();
        let ids = get(&reference("llama"), "input_ids").narrow(0, 0, 1);
        let ours = tch::no_grad(|| model.forward(&ids, None, false));
        let mut extra = vec!["--load-in-4bit", qt];
        if double {
            extra.push("--double-quant");
        }
        let theirs = peft_logits(&fixture("llama"), &adapter_dir, &ids, &extra);
        let d = max_diff(&ours, &theirs);
        println!("QLoRA {qt} double={double}: PEFT on bitsandbytes 4-bit vs tunewright max abs diff {d:e}");
        assert_eq!(d, 0.0, "{qt} double={double}");
    }
}
