//! `Json`: a JSON value that can live inside bincode-encoded events.
//!
//! bincode cannot carry `serde_json::Value` directly (it needs self-describing input), so
//! in the log a `Json` is its compact JSON text; in memory and on the API it is the value.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Json(pub serde_json::Value);

impl Json {
    pub fn null() -> Self {
        Json(serde_json::Value::Null)
    }

    pub fn object() -> Self {
        Json(serde_json::Value::Object(Default::default()))
    }

    pub fn get(&self, key: &str) -> Option<&serde_json::Value> {
        self.0.get(key)
    }
}

impl From<serde_json::Value> for Json {
    fn from(v: serde_json::Value) -> Self {
        Json(v)
    }
}

impl bincode::Encode for Json {
    fn encode<E: bincode::enc::Encoder>(
        &self,
        e: &mut E,
    ) -> Result<(), bincode::error::EncodeError> {
        bincode::Encode::encode(&self.0.to_string(), e)
    }
}

impl<C> bincode::Decode<C> for Json {
    fn decode<D: bincode::de::Decoder<Context = C>>(
        d: &mut D,
    ) -> Result<Self, bincode::error::DecodeError> {
        let s: String = bincode::Decode::decode(d)?;
        serde_json::from_str(&s)
            .map(Json)
            .map_err(|e| bincode::error::DecodeError::OtherString(format!("embedded JSON: {e}")))
    }
}

impl<'de, C> bincode::BorrowDecode<'de, C> for Json {
    fn borrow_decode<D: bincode::de::BorrowDecoder<'de, Context = C>>(
        d: &mut D,
    ) -> Result<Self, bincode::error::DecodeError> {
        <Self as bincode::Decode<C>>::decode(d)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bincode_round_trip_keeps_the_value() {
        let cfg = bincode::config::standard();
        let v = Json(serde_json::json!({"a": [1, 2.5, "x"], "b": null}));
        let bytes = bincode::encode_to_vec(&v, cfg).unwrap();
        let (back, _): (Json, usize) = bincode::decode_from_slice(&bytes, cfg).unwrap();
        assert_eq!(back, v);
    }

    #[test]
    fn invalid_embedded_json_is_a_decode_error() {
        let cfg = bincode::config::standard();
        let bytes = bincode::encode_to_vec("{not json", cfg).unwrap();
        assert!(bincode::decode_from_slice::<Json, _>(&bytes, cfg).is_err());
    }
}
