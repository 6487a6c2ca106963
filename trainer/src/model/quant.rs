//! QLoRA's 4-bit storage of frozen weights, as bitsandbytes lays it out: blocks of 64 values
//! scaled by their absolute maximum, each value the nearest of 16 code points (NF4 or FP4),
//! two values per byte (the first in the high nibble); with double quantization the per-block
//! absmax values are themselves stored as 8-bit codes of bitsandbytes' dynamic map in blocks
//! of 256 around their mean. The arithmetic mirrors bitsandbytes' reference (`default`)
//! kernels op for op, so the packed bytes and absmax are the same (checked by a test against
//! bitsandbytes itself); `dequantize` restores the weight for each use.

use tch::{Device, Kind, Tensor};
use tunewright_schemas::config::QuantType4bit;

use crate::error::TrainerError;

/// Values per 4-bit block (bitsandbytes' default for QLoRA).
pub const BLOCK: i64 = 64;
/// Absmax values per 8-bit block in double quantization (bitsandbytes' fixed choice).
pub const ABSMAX_BLOCK: i64 = 256;

/// The NF4 code points (bitsandbytes' `get_4bit_type("nf4")`).
const NF4: [f32; 16] = [
    -1.0,
    -0.696_192_8,
    -0.525_073_05,
    -0.394_917_5,
    -0.284_441_38,
    -0.184_773_43,
    -0.091_050_036,
    0.0,
    0.079_580_3,
    0.160_930_2,
    0.246_112_3,
    0.337_915_24,
    0.440_709_83,
    0.562_617,
    0.722_956_84,
    1.0,
];
/// FP4 before normalisation by its largest magnitude (bitsandbytes' `get_4bit_type("fp4")`).
const FP4_RAW: [f32; 16] = [
    0.0, 0.0625, 8.0, 12.0, 4.0, 6.0, 2.0, 3.0, -0.0, -0.0625, -8.0, -12.0, -4.0, -6.0, -2.0, -3.0,
];

/// The 16 code points of `qt` on `device`, in code order.
pub fn code4(qt: QuantType4bit, device: Device) -> Tensor {
    let data = Tensor::from_slice(match qt {
        QuantType4bit::Nf4 => &NF4,
        QuantType4bit::Fp4 => &FP4_RAW,
    });
    (&data / data.abs().max()).to_device(device)
}

/// bitsandbytes' signed dynamic 8-bit map (`create_dynamic_map()`): 256 sorted code points.
pub fn dynamic_map(device: Device) -> Tensor {
    const DECADES: [f64; 7] = [1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1.0];
    let mut data: Vec<f32> = Vec::with_capacity(256);
    for (i, scale) in DECADES.iter().enumerate() {
        let b = Tensor::linspace(0.1, 1.0, (1i64 << i) + 1, (Kind::Float, Device::Cpu));
        let n = b.size()[0];
        let means = (b.narrow(0, 0, n - 1) + b.narrow(0, 1, n - 1)) / 2.0;
        for signed in [*scale, -*scale] {
            let v = &means * signed;
            data.extend(Vec::<f32>::try_from(&v).unwrap_or_default());
        }
    }
    data.push(0.0);
    data.push(1.0);
    data.sort_by(f32::total_cmp);
    Tensor::from_slice(&data).to_device(device)
}

/// Per-block absmax of the 4-bit blocks: plain f32, or double-quantized.
pub enum Absmax {
    Plain(Tensor),
    Double {
        /// u8 codes of `absmax - offset` in the dynamic map.
        codes: Tensor,
        /// f32 absmax of each block of 256 codes.
        absmax2: Tensor,
        /// The mean of the absmax values (a 0-dim f32 tensor).
        offset: Tensor,
    },
}

/// A weight stored in 4 bits.
pub struct Quantized4bit {
    /// u8 `[ceil(n / 2)]`, two codes per byte.
    pub packed: Tensor,
    pub absmax: Absmax,
    pub shape: Vec<i64>,
    pub quant_type: QuantType4bit,
}

/// Scale each block of `flat` (f32) by its absmax: (scaled values in [-1, 1], absmax).
/// A last partial block gets its own absmax, as bitsandbytes does.
fn scale_blocks(flat: &Tensor, block: i64) -> (Tensor, Tensor) {
    let n = flat.size()[0];
    let rem = n % block;
    let full = n - rem;
    let a = flat.narrow(0, 0, full).view([full / block, block]);
    let mut absmax = a.abs().amax([-1].as_slice(), false);
    let inv = absmax.clamp_min(1e-38).reciprocal().view([-1, 1]);
    let mut scaled = (a * inv).clamp(-1.0, 1.0).reshape([-1]);
    if rem > 0 {
        let tail = flat.narrow(0, full, rem);
        let am = tail.abs().max().clamp_min(1e-38);
        scaled = Tensor::cat(&[&scaled, &(tail / &am).clamp(-1.0, 1.0)], 0);
        absmax = Tensor::cat(&[&absmax, &am.unsqueeze(0)], 0);
    }
    (scaled, absmax)
}

/// Nearest code index of each value: bucketize against the midpoints of the sorted code.
fn nearest(scaled: &Tensor, code: &Tensor) -> Tensor {
    let (sorted, order) = code.sort(0, false);
    let k = sorted.size()[0];
    let bounds = (sorted.narrow(0, 0, k - 1) + sorted.narrow(0, 1, k - 1)) / 2.0;
    let q = Tensor::bucketize(scaled, &bounds, true, false);
    order.index_select(0, &q.to_kind(Kind::Int64))
}

/// Dequantize codes `q` (any integer kind) with per-block `absmax`: `code[q] * absmax`.
fn dequantize_blocks(q: &Tensor, code: &Tensor, absmax: &Tensor, block: i64, n: i64) -> Tensor {
    let values = code
        .index_select(0, &q.to_kind(Kind::Int64))
        .narrow(0, 0, n);
    let rem = n % block;
    let full = n - rem;
    let blocks = full / block;
    let head = (values.narrow(0, 0, full).view([blocks, block])
        * absmax.narrow(0, 0, blocks).view([-1, 1]))
    .reshape([full]);
    if rem == 0 {
        return head;
    }
    let tail = values.narrow(0, full, rem) * absmax.narrow(0, blocks, 1);
    Tensor::cat(&[&head, &tail], 0)
}

impl Quantized4bit {
    /// Quantize `w` (any float kind, any device).
    pub fn quantize(
        w: &Tensor,
        quant_type: QuantType4bit,
        double_quant: bool,
    ) -> Result<Quantized4bit, TrainerError> {
        crate::model::guarded("4-bit quantization", || {
            let _guard = tch::no_grad_guard();
            let device = w.device();
            let flat = w.reshape([-1]).to_kind(Kind::Float);
            let (mut scaled, absmax) = scale_blocks(&flat, BLOCK);
            if scaled.size()[0] % 2 == 1 {
                scaled = scaled.constant_pad_nd([0, 1]);
            }
            let q = nearest(&scaled, &code4(quant_type, device)).to_kind(Kind::Uint8);
            let n2 = q.size()[0] / 2;
            let pairs = q.view([n2, 2]);
            let packed = pairs
                .select(1, 0)
                .bitwise_left_shift_tensor_scalar(4)
                .bitwise_or_tensor(&pairs.select(1, 1));
            let absmax = if double_quant {
                double_quantize(&absmax)
            } else {
                Absmax::Plain(absmax)
            };
            Quantized4bit {
                packed,
                absmax,
                shape: w.size(),
                quant_type,
            }
        })
    }

    /// The per-block absmax as f32 (decoded when double-quantized).
    pub fn absmax_f32(&self) -> Tensor {
        match &self.absmax {
            Absmax::Plain(a) => a.shallow_clone(),
            Absmax::Double {
                codes,
                absmax2,
                offset,
            } => {
                let map = dynamic_map(codes.device());
                let n = codes.size()[0];
                dequantize_blocks(codes, &map, absmax2, ABSMAX_BLOCK, n) + offset
            }
        }
    }

    /// The weight in `kind` (computed in f32 as bitsandbytes does, then cast).
    pub fn dequantize(&self, kind: Kind) -> Tensor {
        let n: i64 = self.shape.iter().product();
        let high = self.packed.bitwise_right_shift_tensor_scalar(4);
        let low = self.packed.bitwise_and(0xF);
        let q = Tensor::stack(&[high, low], 1).reshape([-1]);
        let code = code4(self.quant_type, self.packed.device());
        dequantize_blocks(&q, &code, &self.absmax_f32(), BLOCK, n)
            .view(self.shape.as_slice())
            .to_kind(kind)
    }

    /// Bytes held: packed codes plus the absmax storage.
    pub fn bytes(&self) -> u64 {
        let t = |x: &Tensor| (x.numel() * x.kind().elt_size_in_bytes()) as u64;
        t(&self.packed)
            + match &self.absmax {
                Absmax::Plain(a) => t(a),
                Absmax::Double {
                    codes,
                    absmax2,
                    offset,
                } => t(codes) + t(absmax2) + t(offset),
            }
    }
}

/// bitsandbytes' `compress_statistics`: `absmax - mean` blockwise-quantized (256 per block)
/// to the dynamic 8-bit map.
fn double_quantize(absmax: &Tensor) -> Absmax {
    let offset = absmax.mean(Kind::Float);
    let centred = absmax - &offset;
    let (scaled, absmax2) = scale_blocks(&centred, ABSMAX_BLOCK);
    let codes = nearest(&scaled, &dynamic_map(absmax.device())).to_kind(Kind::Uint8);
    Absmax::Double {
        codes,
        absmax2,
        offset,
    }
}

/// Bytes a `[out, in]` weight takes in 4 bits (for the memory estimate).
pub fn quantized_bytes(numel: u64, double_quant: bool) -> u64 {
    let blocks = numel.div_ceil(BLOCK as u64);
    let absmax = if double_quant {
        blocks + 4 * blocks.div_ceil(ABSMAX_BLOCK as u64) + 4
    } else {
        4 * blocks
    };
    numel.div_ceil(2) + absmax
}
