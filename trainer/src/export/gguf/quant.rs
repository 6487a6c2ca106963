//! Tensor encodings of GGUF: f32, f16 and bf16 (rounded by libtorch, to nearest even, as
//! PyTorch and NumPy round), and q8_0: blocks of 32 values along a row, each an f16 scale
//! `d = max|x| / 127` and 32 signed bytes `round(x / d)` (ggml's reference quantizer), and
//! the way back to f32 for the self-check.

use half::f16;
use tch::{Device, Kind, Tensor};

use super::format::GgmlType;
use crate::error::TrainerError;

fn bytes_of(t: &Tensor, kind: Kind) -> Result<Vec<u8>, TrainerError> {
    let t = t
        .f_to_device(Device::Cpu)
        .and_then(|t| t.f_to_kind(kind))
        .and_then(|t| t.f_contiguous())
        .map_err(|e| TrainerError::torch("export", e))?;
    let numel = t.numel();
    let mut data = vec![0u8; numel * kind.elt_size_in_bytes()];
    t.f_copy_data_u8(&mut data, numel)
        .map_err(|e| TrainerError::torch("export", e))?;
    Ok(data)
}

/// `t` encoded as `kind`.
pub fn encode(t: &Tensor, kind: GgmlType) -> Result<Vec<u8>, TrainerError> {
    match kind {
        GgmlType::F32 => bytes_of(t, Kind::Float),
        GgmlType::F16 => bytes_of(t, Kind::Half),
        GgmlType::Bf16 => bytes_of(t, Kind::BFloat16),
        GgmlType::Q8_0 => {
            let raw = bytes_of(t, Kind::Float)?;
            let values: Vec<f32> = raw
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect();
            Ok(q8_0(&values))
        }
    }
}

/// q8_0 blocks of `values` (a multiple of 32 long).
pub fn q8_0(values: &[f32]) -> Vec<u8> {
    let mut out = Vec::with_capacity(values.len() / 32 * 34);
    for block in values.chunks_exact(32) {
        let amax = block.iter().fold(0f32, |m, v| m.max(v.abs()));
        let d = amax / 127.0;
        let id = if d != 0.0 { 1.0 / d } else { 0.0 };
        out.extend(f16::from_f32(d).to_bits().to_le_bytes());
        for v in block {
            out.push((v * id).round() as i8 as u8);
        }
    }
    out
}

/// The f32 values of encoded data.
pub fn decode(data: &[u8], kind: GgmlType) -> Vec<f32> {
    match kind {
        GgmlType::F32 => data
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect(),
        GgmlType::F16 => data
            .chunks_exact(2)
            .map(|b| f16::from_bits(u16::from_le_bytes([b[0], b[1]])).to_f32())
            .collect(),
        GgmlType::Bf16 => data
            .chunks_exact(2)
            .map(|b| half::bf16::from_bits(u16::from_le_bytes([b[0], b[1]])).to_f32())
            .collect(),
        GgmlType::Q8_0 => data
            .chunks_exact(34)
            .flat_map(|b| {
                let d = f16::from_bits(u16::from_le_bytes([b[0], b[1]])).to_f32();
                b[2..].iter().map(move |q| f32::from(*q as i8) * d)
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn q8_0_round_trips_within_half_a_step() {
        let values: Vec<f32> = (0..64)
            .map(|i| ((i * 37 % 19) as f32 - 9.0) / 7.0)
            .collect();
        let back = decode(&q8_0(&values), GgmlType::Q8_0);
        for (block, got) in values.chunks(32).zip(back.chunks(32)) {
            let d = block.iter().fold(0f32, |m, v| m.max(v.abs())) / 127.0;
            for (a, b) in block.iter().zip(got) {
                assert!((a - b).abs() <= d * 0.5 + d * 1e-3 * 127.0, "{a} vs {b}");
            }
        }
        assert_eq!(q8_0(&[0.0; 32])[2..], [0u8; 32]);
    }
}
