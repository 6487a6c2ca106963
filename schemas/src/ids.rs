//! Identifiers of the domain's entities.
//!
//! Each id is a UUID (v7, so ids sort by creation time) behind its own type, so a job id can
//! never be passed where a project id is expected. On the wire (JSON) an id is its prefixed
//! string form, e.g. `prj_0190f6c4e8a87c3b9d0e5f1a2b3c4d5e`; in the event log it is 16 raw bytes.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Why a string is not an id of the expected kind.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("'{text}' is not a valid {kind} id (expected '{prefix}_' followed by 32 hex digits)")]
pub struct IdParseError {
    pub kind: &'static str,
    pub prefix: &'static str,
    pub text: String,
}

macro_rules! define_id {
    ($(#[$doc:meta])* $name:ident, $prefix:literal, $kind:literal) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, bincode::Encode, bincode::Decode)]
        pub struct $name(pub [u8; 16]);

        impl $name {
            pub const PREFIX: &'static str = $prefix;

            /// A fresh, time-ordered id.
            pub fn new() -> Self {
                Self(*uuid::Uuid::now_v7().as_bytes())
            }

            pub fn from_uuid(u: uuid::Uuid) -> Self {
                Self(*u.as_bytes())
            }

            pub fn as_uuid(&self) -> uuid::Uuid {
                uuid::Uuid::from_bytes(self.0)
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}_{}", $prefix, self.as_uuid().simple())
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(self, f)
            }
        }

        impl FromStr for $name {
            type Err = IdParseError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                let err = || IdParseError { kind: $kind, prefix: $prefix, text: s.chars().take(80).collect() };
                let rest = s.strip_prefix(concat!($prefix, "_")).ok_or_else(err)?;
                if rest.len() != 32 {
                    return Err(err());
                }
                uuid::Uuid::try_parse(rest).map(Self::from_uuid).map_err(|_| err())
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                s.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}

define_id!(
    /// A project: a named workspace holding documents, a dataset and jobs.
    ProjectId, "prj", "project"
);
define_id!(
    /// A job: one dataset preview, dataset generation, training or export.
    JobId, "job", "job"
);
define_id!(
    /// An uploaded document of a project.
    FileId, "file", "file"
);
define_id!(
    /// A dataset imported into (or generated for) a project.
    DatasetId, "ds", "dataset"
);
define_id!(
    /// A named split (train/val/test ratios) of a project's dataset.
    SplitId, "split", "split"
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_parse_round_trip() {
        let id = JobId::new();
        let text = id.to_string();
        assert!(text.starts_with("job_"));
        assert_eq!(text.parse::<JobId>().unwrap(), id);
    }

    #[test]
    fn wrong_prefix_or_garbage_is_rejected() {
        let id = JobId::new().to_string().replacen("job_", "prj_", 1);
        let err = id.parse::<JobId>().unwrap_err();
        assert_eq!(err.kind, "job");
        assert!("job_xyz".parse::<JobId>().is_err());
        assert!("".parse::<ProjectId>().is_err());
        assert!("prj_../../etc/passwd00000000000000000"
            .parse::<ProjectId>()
            .is_err());
    }

    #[test]
    fn ids_created_later_sort_later() {
        let a = ProjectId::new();
        std::thread::sleep(std::time::Duration::from_millis(2));
        let b = ProjectId::new();
        assert!(a < b);
    }

    #[test]
    fn json_form_is_the_prefixed_string() {
        let id = FileId::new();
        let json = serde_json::to_string(&id).unwrap();
        assert_eq!(json, format!("\"{id}\""));
        let back: FileId = serde_json::from_str(&json).unwrap();
        assert_eq!(back, id);
    }
}
