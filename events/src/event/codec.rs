//! The payload codec: `(type id, version, bytes)` <-> `Event`, with bounded decoding.
//!
//! Payloads are bincode 2.0.1 (standard config, with a byte limit so a corrupt length can
//! never make the decoder allocate gigabytes). A payload must decode to exactly its length.
//! Older versions of a payload decode into their frozen struct and are upcast here.

use super::{old, Event};

/// Largest payload the log accepts or decodes.
pub const MAX_PAYLOAD_BYTES: usize = 16 * 1024 * 1024;

pub const BINCODE_CONFIG: bincode::config::Configuration<
    bincode::config::LittleEndian,
    bincode::config::Varint,
    bincode::config::Limit<MAX_PAYLOAD_BYTES>,
> = bincode::config::standard().with_limit::<MAX_PAYLOAD_BYTES>();

#[derive(Debug, thiserror::Error)]
pub enum EventCodecError {
    #[error("unknown event type id {type_id} (version {version}): written by a newer tunewright?")]
    UnknownType { type_id: u16, version: u16 },
    #[error("event type id {type_id} has no schema version {version} (current is {current})")]
    UnknownVersion {
        type_id: u16,
        version: u16,
        current: u16,
    },
    #[error("event type id {type_id} v{version}: payload does not decode: {source}")]
    Decode {
        type_id: u16,
        version: u16,
        #[source]
        source: bincode::error::DecodeError,
    },
    #[error("event payload does not encode: {0}")]
    Encode(#[from] bincode::error::EncodeError),
    #[error("event payload of {size} bytes exceeds the limit of {MAX_PAYLOAD_BYTES}")]
    TooLarge { size: usize },
}

/// Encode an event: its `(type id, version)` and payload bytes.
pub fn encode_payload(event: &Event) -> Result<(u16, u16, Vec<u8>), EventCodecError> {
    let (type_id, version) = event.type_id();
    let bytes = event.encode_current()?;
    if bytes.len() > MAX_PAYLOAD_BYTES {
        return Err(EventCodecError::TooLarge { size: bytes.len() });
    }
    Ok((type_id, version, bytes))
}

/// Decode a payload written with `(type id, version)`, upcasting old versions.
pub fn decode_payload(type_id: u16, version: u16, bytes: &[u8]) -> Result<Event, EventCodecError> {
    let current =
        Event::current_version(type_id).ok_or(EventCodecError::UnknownType { type_id, version })?;
    if version == current {
        return match Event::decode_current(type_id, bytes) {
            Some(Ok(e)) => Ok(e),
            Some(Err(source)) => Err(EventCodecError::Decode {
                type_id,
                version,
                source,
            }),
            None => Err(EventCodecError::UnknownType { type_id, version }),
        };
    }
    let upcast = match (type_id, version) {
        (42, 1) => decode_exact::<old::JobAttemptFailedV1>(bytes)
            .map(|v1| Event::JobAttemptFailed(v1.into())),
        (45, 1) => decode_exact::<old::JobFailedV1>(bytes).map(|v1| Event::JobFailed(v1.into())),
        _ => {
            return Err(EventCodecError::UnknownVersion {
                type_id,
                version,
                current,
            })
        }
    };
    upcast.map_err(|source| EventCodecError::Decode {
        type_id,
        version,
        source,
    })
}

/// Decode `T` from all of `bytes`; trailing bytes are an error (a sign of corruption).
pub(crate) fn decode_exact<T: bincode::Decode<()>>(
    bytes: &[u8],
) -> Result<T, bincode::error::DecodeError> {
    if bytes.len() > MAX_PAYLOAD_BYTES {
        return Err(bincode::error::DecodeError::LimitExceeded);
    }
    let (value, used) = bincode::decode_from_slice(bytes, BINCODE_CONFIG)?;
    if used != bytes.len() {
        return Err(bincode::error::DecodeError::OtherString(format!(
            "{} trailing byte(s) after the payload",
            bytes.len() - used
        )));
    }
    Ok(value)
}
