//! The on-disk form of one event: a fixed header, the payload, and a CRC32 over both.
//!
//! ```text
//! 0      1        9        26        28       30        34        34+len   38+len
//! | fmt | ts_ms  | stream | type_id | version | len     | payload | crc32  |
//!   u8    i64 LE   17 B     u16 LE    u16 LE    u32 LE    len B     u32 LE
//! ```
//! The stream is `[tag, 16 id bytes]` (tag 1 project, 2 job, 3 service). Decoding checks the
//! format byte, the length against the record size and `MAX_PAYLOAD_BYTES` before reading the
//! payload, and the checksum, so a damaged record is reported, never trusted or over-allocated.

use tunewright_schemas::{JobId, ProjectId};

use crate::event::{
    decode_payload, encode_payload, Event, StoredEvent, StreamId, MAX_PAYLOAD_BYTES,
};

use super::LogError;

pub const RECORD_FORMAT: u8 = 1;
const HEADER: usize = 1 + 8 + 17 + 2 + 2 + 4;

/// An event encoded for the writer, before it has a seq and a timestamp.
pub struct Encoded {
    pub event: Event,
    pub stream: [u8; 17],
    pub type_id: u16,
    pub version: u16,
    pub payload: Vec<u8>,
}

pub fn stream_key(stream: &StreamId) -> [u8; 17] {
    let mut k = [0u8; 17];
    match stream {
        StreamId::Project(id) => {
            k[0] = 1;
            k[1..].copy_from_slice(&id.0);
        }
        StreamId::Job(id) => {
            k[0] = 2;
            k[1..].copy_from_slice(&id.0);
        }
        StreamId::Service => k[0] = 3,
    }
    k
}

fn stream_from_key(k: &[u8]) -> Option<StreamId> {
    let mut id = [0u8; 16];
    id.copy_from_slice(k.get(1..17)?);
    match k.first()? {
        1 => Some(StreamId::Project(ProjectId(id))),
        2 => Some(StreamId::Job(JobId(id))),
        3 => Some(StreamId::Service),
        _ => None,
    }
}

pub fn encode_event(event: Event) -> Result<Encoded, LogError> {
    let (type_id, version, payload) = encode_payload(&event)?;
    Ok(Encoded {
        stream: stream_key(&event.stream()),
        event,
        type_id,
        version,
        payload,
    })
}

/// The full record for an encoded event committed at `ts_ms`.
pub fn frame(e: &Encoded, ts_ms: i64, out: &mut Vec<u8>) {
    out.clear();
    out.reserve(HEADER + e.payload.len() + 4);
    out.push(RECORD_FORMAT);
    out.extend_from_slice(&ts_ms.to_le_bytes());
    out.extend_from_slice(&e.stream);
    out.extend_from_slice(&e.type_id.to_le_bytes());
    out.extend_from_slice(&e.version.to_le_bytes());
    out.extend_from_slice(&(e.payload.len() as u32).to_le_bytes());
    out.extend_from_slice(&e.payload);
    let crc = crc32fast::hash(out);
    out.extend_from_slice(&crc.to_le_bytes());
}

/// The parts of a record, checked but with the payload not yet decoded.
pub struct RawRecord<'a> {
    pub ts_ms: i64,
    pub stream: StreamId,
    pub type_id: u16,
    pub version: u16,
    pub payload: &'a [u8],
}

pub fn parse(seq: u64, bytes: &[u8]) -> Result<RawRecord<'_>, LogError> {
    let corrupt = |reason: String| LogError::Corrupt { seq, reason };
    if bytes.len() < HEADER + 4 {
        return Err(corrupt(format!(
            "record of {} bytes is shorter than its header",
            bytes.len()
        )));
    }
    if bytes[0] != RECORD_FORMAT {
        return Err(corrupt(format!("unknown record format {}", bytes[0])));
    }
    let len = u32::from_le_bytes([bytes[30], bytes[31], bytes[32], bytes[33]]) as usize;
    if len > MAX_PAYLOAD_BYTES || HEADER + len + 4 != bytes.len() {
        return Err(corrupt(format!(
            "payload length {len} does not fit a record of {} bytes",
            bytes.len()
        )));
    }
    let body = &bytes[..HEADER + len];
    let stored_crc = u32::from_le_bytes([
        bytes[HEADER + len],
        bytes[HEADER + len + 1],
        bytes[HEADER + len + 2],
        bytes[HEADER + len + 3],
    ]);
    if crc32fast::hash(body) != stored_crc {
        return Err(corrupt("checksum mismatch".to_string()));
    }
    let mut ts = [0u8; 8];
    ts.copy_from_slice(&bytes[1..9]);
    let stream =
        stream_from_key(&bytes[9..26]).ok_or_else(|| corrupt("unknown stream tag".to_string()))?;
    Ok(RawRecord {
        ts_ms: i64::from_le_bytes(ts),
        stream,
        type_id: u16::from_le_bytes([bytes[26], bytes[27]]),
        version: u16::from_le_bytes([bytes[28], bytes[29]]),
        payload: &bytes[HEADER..HEADER + len],
    })
}

/// If `bytes` starts with a whole record (format byte, a length that fits, a matching CRC),
/// its length; for the salvage's scan of raw file bytes.
pub fn record_at(bytes: &[u8]) -> Option<usize> {
    if bytes.len() < HEADER + 4 || bytes[0] != RECORD_FORMAT || !matches!(bytes[9], 1..=3) {
        return None;
    }
    let len = u32::from_le_bytes([bytes[30], bytes[31], bytes[32], bytes[33]]) as usize;
    let total = HEADER.checked_add(len)?.checked_add(4)?;
    if len > MAX_PAYLOAD_BYTES || total > bytes.len() {
        return None;
    }
    parse(0, &bytes[..total]).ok().map(|_| total)
}

/// The stream key bytes of a framed record.
pub fn stream_bytes(bytes: &[u8]) -> Option<&[u8]> {
    bytes.get(9..26)
}

/// Parse and decode a record into the event it holds.
pub fn decode(seq: u64, bytes: &[u8]) -> Result<StoredEvent, LogError> {
    let raw = parse(seq, bytes)?;
    let event =
        decode_payload(raw.type_id, raw.version, raw.payload).map_err(|e| LogError::Corrupt {
            seq,
            reason: e.to_string(),
        })?;
    Ok(StoredEvent {
        seq,
        ts_ms: raw.ts_ms,
        stream: raw.stream,
        event,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::ProjectCreated;

    fn sample() -> Vec<u8> {
        let e = encode_event(Event::ProjectCreated(ProjectCreated {
            project_id: ProjectId::new(),
            name: "p".into(),
        }))
        .unwrap();
        let mut out = Vec::new();
        frame(&e, 1234, &mut out);
        out
    }

    #[test]
    fn frame_then_decode() {
        let bytes = sample();
        let ev = decode(7, &bytes).unwrap();
        assert_eq!(ev.seq, 7);
        assert_eq!(ev.ts_ms, 1234);
        assert!(matches!(ev.event, Event::ProjectCreated(_)));
        assert_eq!(ev.stream, ev.event.stream());
    }

    #[test]
    fn every_flipped_byte_or_truncation_is_detected() {
        let bytes = sample();
        for i in 0..bytes.len() {
            let mut b = bytes.clone();
            b[i] ^= 0x5a;
            assert!(decode(3, &b).is_err(), "flip at {i} went unnoticed");
        }
        for n in 0..bytes.len() {
            match decode(3, &bytes[..n]) {
                Err(LogError::Corrupt { seq: 3, .. }) => {}
                other => panic!("truncation to {n}: {other:?}"),
            }
        }
    }

    #[test]
    fn a_huge_length_is_rejected_before_any_allocation() {
        let mut b = sample();
        b[30..34].copy_from_slice(&u32::MAX.to_le_bytes());
        let err = decode(9, &b).unwrap_err();
        assert!(err.to_string().contains("seq 9"));
    }
}
