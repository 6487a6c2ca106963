//! The GGUF container (version 3, little-endian): the header, the metadata key/values, the
//! tensor infos (dimensions innermost first, as ggml counts them) and the tensor data, each
//! tensor aligned to 32 bytes. `write` lays a file out; `read` parses one back (what the
//! export's self-check loads). The rules are in docs/exports.md.

use std::io::Write;
use std::path::Path;

use crate::error::TrainerError;

pub const MAGIC: &[u8; 4] = b"GGUF";
pub const VERSION: u32 = 3;
pub const ALIGNMENT: u64 = 32;

/// A metadata value (the kinds tunewright writes).
#[derive(Debug, Clone, PartialEq)]
pub enum MetaValue {
    U32(u32),
    I32(i32),
    F32(f32),
    Bool(bool),
    Str(String),
    StrArray(Vec<String>),
    I32Array(Vec<i32>),
}

impl MetaValue {
    pub fn as_u32(&self) -> Option<u32> {
        match self {
            MetaValue::U32(v) => Some(*v),
            _ => None,
        }
    }
    pub fn as_f32(&self) -> Option<f32> {
        match self {
            MetaValue::F32(v) => Some(*v),
            _ => None,
        }
    }
    pub fn as_str(&self) -> Option<&str> {
        match self {
            MetaValue::Str(v) => Some(v),
            _ => None,
        }
    }
}

/// ggml's tensor types that tunewright writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GgmlType {
    F32,
    F16,
    Q8_0,
    Bf16,
}

impl GgmlType {
    pub fn id(self) -> u32 {
        match self {
            GgmlType::F32 => 0,
            GgmlType::F16 => 1,
            GgmlType::Q8_0 => 8,
            GgmlType::Bf16 => 30,
        }
    }
    fn from_id(id: u32) -> Option<GgmlType> {
        [GgmlType::F32, GgmlType::F16, GgmlType::Q8_0, GgmlType::Bf16]
            .into_iter()
            .find(|t| t.id() == id)
    }
    /// Bytes of `n` elements (`n` a multiple of 32 for Q8_0).
    pub fn bytes_of(self, n: u64) -> u64 {
        match self {
            GgmlType::F32 => 4 * n,
            GgmlType::F16 | GgmlType::Bf16 => 2 * n,
            GgmlType::Q8_0 => n / 32 * 34,
        }
    }
}

/// One tensor: `shape` in PyTorch's order (outermost first), data already encoded.
#[derive(Debug, Clone, PartialEq)]
pub struct GgufTensor {
    pub name: String,
    pub shape: Vec<u64>,
    pub kind: GgmlType,
    pub data: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct GgufFile {
    pub metadata: Vec<(String, MetaValue)>,
    pub tensors: Vec<GgufTensor>,
}

impl GgufFile {
    pub fn get(&self, key: &str) -> Option<&MetaValue> {
        self.metadata.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }
    pub fn tensor(&self, name: &str) -> Option<&GgufTensor> {
        self.tensors.iter().find(|t| t.name == name)
    }
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    out.extend((s.len() as u64).to_le_bytes());
    out.extend(s.as_bytes());
}

fn put_value(out: &mut Vec<u8>, v: &MetaValue) {
    let ty = |out: &mut Vec<u8>, t: u32| out.extend(t.to_le_bytes());
    match v {
        MetaValue::U32(x) => {
            ty(out, 4);
            out.extend(x.to_le_bytes());
        }
        MetaValue::I32(x) => {
            ty(out, 5);
            out.extend(x.to_le_bytes());
        }
        MetaValue::F32(x) => {
            ty(out, 6);
            out.extend(x.to_le_bytes());
        }
        MetaValue::Bool(x) => {
            ty(out, 7);
            out.push(u8::from(*x));
        }
        MetaValue::Str(s) => {
            ty(out, 8);
            put_str(out, s);
        }
        MetaValue::StrArray(a) => {
            ty(out, 9);
            ty(out, 8);
            out.extend((a.len() as u64).to_le_bytes());
            for s in a {
                put_str(out, s);
            }
        }
        MetaValue::I32Array(a) => {
            ty(out, 9);
            ty(out, 5);
            out.extend((a.len() as u64).to_le_bytes());
            for x in a {
                out.extend(x.to_le_bytes());
            }
        }
    }
}

fn pad_to(n: u64) -> u64 {
    n.div_ceil(ALIGNMENT) * ALIGNMENT
}

/// Write `file` to `path` (fsynced).
pub fn write(path: &Path, file: &GgufFile) -> Result<u64, TrainerError> {
    let mut head = Vec::new();
    head.extend(MAGIC);
    head.extend(VERSION.to_le_bytes());
    head.extend((file.tensors.len() as u64).to_le_bytes());
    head.extend((file.metadata.len() as u64).to_le_bytes());
    for (k, v) in &file.metadata {
        put_str(&mut head, k);
        put_value(&mut head, v);
    }
    let mut offset = 0u64;
    for t in &file.tensors {
        put_str(&mut head, &t.name);
        head.extend((t.shape.len() as u32).to_le_bytes());
        for d in t.shape.iter().rev() {
            head.extend(d.to_le_bytes());
        }
        head.extend(t.kind.id().to_le_bytes());
        head.extend(offset.to_le_bytes());
        offset = pad_to(offset + t.data.len() as u64);
    }
    head.resize(pad_to(head.len() as u64) as usize, 0);
    let io = |e: std::io::Error| TrainerError::ExportWrite {
        reason: format!("{}: {e}", path.display()),
    };
    let mut f = std::io::BufWriter::new(std::fs::File::create(path).map_err(io)?);
    f.write_all(&head).map_err(io)?;
    let mut written = head.len() as u64;
    for t in &file.tensors {
        f.write_all(&t.data).map_err(io)?;
        let padded = pad_to(t.data.len() as u64);
        f.write_all(&vec![0u8; (padded - t.data.len() as u64) as usize])
            .map_err(io)?;
        written += padded;
    }
    let f = f.into_inner().map_err(|e| io(e.into_error()))?;
    f.sync_all().map_err(io)?;
    Ok(written)
}

/// A cursor over the file's bytes; every read is bounds-checked.
struct Cursor<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: u64) -> Result<&'a [u8], String> {
        let n = usize::try_from(n).map_err(|_| "length overflows".to_string())?;
        let end = self.pos.checked_add(n).filter(|e| *e <= self.bytes.len());
        let end = end.ok_or_else(|| format!("truncated at byte {}", self.pos))?;
        let s = &self.bytes[self.pos..end];
        self.pos = end;
        Ok(s)
    }
    fn u32(&mut self) -> Result<u32, String> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn u64(&mut self) -> Result<u64, String> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_le_bytes(a))
    }
    fn string(&mut self) -> Result<String, String> {
        let n = self.u64()?;
        let b = self.take(n)?;
        String::from_utf8(b.to_vec()).map_err(|e| e.to_string())
    }
    fn value(&mut self, ty: u32) -> Result<MetaValue, String> {
        Ok(match ty {
            4 => MetaValue::U32(self.u32()?),
            5 => MetaValue::I32(self.u32()? as i32),
            6 => MetaValue::F32(f32::from_bits(self.u32()?)),
            7 => MetaValue::Bool(self.take(1)?[0] != 0),
            8 => MetaValue::Str(self.string()?),
            9 => {
                let elem = self.u32()?;
                let n = self.u64()?;
                match elem {
                    8 => MetaValue::StrArray(
                        (0..n).map(|_| self.string()).collect::<Result<_, _>>()?,
                    ),
                    5 => MetaValue::I32Array(
                        (0..n)
                            .map(|_| self.u32().map(|x| x as i32))
                            .collect::<Result<_, _>>()?,
                    ),
                    other => {
                        return Err(format!(
                            "array of type {other} is not one tunewright writes"
                        ))
                    }
                }
            }
            other => {
                return Err(format!(
                    "metadata type {other} is not one tunewright writes"
                ))
            }
        })
    }
}

/// Parse a GGUF file written by `write`.
pub fn read(path: &Path) -> Result<GgufFile, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut c = Cursor {
        bytes: &bytes,
        pos: 0,
    };
    if c.take(4)? != MAGIC {
        return Err("not a GGUF file (bad magic)".into());
    }
    let version = c.u32()?;
    if version != VERSION {
        return Err(format!("GGUF version {version}, expected {VERSION}"));
    }
    let n_tensors = c.u64()?;
    let n_kv = c.u64()?;
    let mut file = GgufFile::default();
    for _ in 0..n_kv {
        let k = c.string()?;
        let ty = c.u32()?;
        file.metadata.push((k, c.value(ty)?));
    }
    let mut infos = Vec::new();
    for _ in 0..n_tensors {
        let name = c.string()?;
        let dims = c.u32()?;
        let mut shape = (0..dims).map(|_| c.u64()).collect::<Result<Vec<_>, _>>()?;
        shape.reverse();
        let id = c.u32()?;
        let kind = GgmlType::from_id(id).ok_or_else(|| format!("{name}: ggml type {id}"))?;
        let offset = c.u64()?;
        infos.push((name, shape, kind, offset));
    }
    let start = pad_to(c.pos as u64);
    for (name, shape, kind, offset) in infos {
        let n: u64 = shape.iter().product();
        c.pos = usize::try_from(start + offset).map_err(|e| e.to_string())?;
        let data = c.take(kind.bytes_of(n))?.to_vec();
        file.tensors.push(GgufTensor {
            name,
            shape,
            kind,
            data,
        });
    }
    Ok(file)
}
