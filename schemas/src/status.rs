//! Project statuses, job statuses and job kinds, named as docs/jobs.md and docs/projects.md name them.
//!
//! Each is stored in the event log by its stable name (never by its position in the enum),
//! so variants can be added or reordered without breaking old logs.

/// An unknown name for one of the string-named enums below.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {what} '{name}' (expected one of: {expected})")]
pub struct UnknownName {
    pub what: &'static str,
    pub name: String,
    pub expected: String,
}

macro_rules! named_enum {
    ($(#[$doc:meta])* $name:ident, $what:literal { $($(#[$vdoc:meta])* $variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, ::serde::Serialize, ::serde::Deserialize)]
        #[serde(rename_all = "snake_case")]
        pub enum $name {
            $($(#[$vdoc])* $variant),+
        }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            pub fn as_str(&self) -> &'static str {
                match self {
                    $($name::$variant => $text),+
                }
            }
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl ::std::str::FromStr for $name {
            type Err = $crate::status::UnknownName;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $($text => Ok($name::$variant),)+
                    _ => Err($crate::status::UnknownName {
                        what: $what,
                        name: s.chars().take(80).collect(),
                        expected: [$($text),+].join(", "),
                    }),
                }
            }
        }

        impl bincode::Encode for $name {
            fn encode<E: bincode::enc::Encoder>(&self, e: &mut E) -> Result<(), bincode::error::EncodeError> {
                bincode::Encode::encode(self.as_str(), e)
            }
        }

        impl<C> bincode::Decode<C> for $name {
            fn decode<D: bincode::de::Decoder<Context = C>>(d: &mut D) -> Result<Self, bincode::error::DecodeError> {
                let s: String = bincode::Decode::decode(d)?;
                s.parse().map_err(|e: $crate::status::UnknownName| bincode::error::DecodeError::OtherString(e.to_string()))
            }
        }

        impl<'de, C> bincode::BorrowDecode<'de, C> for $name {
            fn borrow_decode<D: bincode::de::BorrowDecoder<'de, Context = C>>(d: &mut D) -> Result<Self, bincode::error::DecodeError> {
                <Self as bincode::Decode<C>>::decode(d)
            }
        }
    };
}
pub(crate) use named_enum;

named_enum!(
    /// The project state machine (docs/projects.md).
    ///
    /// `created` -> (dataset uploaded) `ready_to_train`, or -> (generation job) `generating`
    /// -> `ready_to_train`; `ready_to_train` -> (train job) `training` -> `completed`.
    /// A failed generation leaves `generating` (the user can re-run it); a failed training goes
    /// back to `ready_to_train`; a failed export leaves `completed`.
    ProjectStatus, "project status" {
        Created => "created",
        Generating => "generating",
        ReadyToTrain => "ready_to_train",
        Training => "training",
        Completed => "completed",
    }
);

named_enum!(
    /// The job state machine of docs/jobs.md.
    JobStatus, "job status" {
        Queued => "queued",
        Running => "running",
        Retrying => "retrying",
        Cancelling => "cancelling",
        Success => "success",
        Failed => "failed",
        Cancelled => "cancelled",
    }
);

impl JobStatus {
    /// A finished job never changes status again.
    pub fn is_terminal(&self) -> bool {
        matches!(
            self,
            JobStatus::Success | JobStatus::Failed | JobStatus::Cancelled
        )
    }
}

named_enum!(
    /// What a job does.
    JobKind, "job kind" {
        DatasetPreview => "dataset_preview",
        DatasetGenerate => "dataset_generate",
        Train => "train",
        Export => "export",
        Evaluate => "evaluate",
    }
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_through_text_json_and_bincode() {
        let cfg = bincode::config::standard();
        for k in JobKind::ALL {
            assert_eq!(k.as_str().parse::<JobKind>().unwrap(), *k);
            assert_eq!(
                serde_json::to_string(k).unwrap(),
                format!("\"{}\"", k.as_str())
            );
            let bytes = bincode::encode_to_vec(k, cfg).unwrap();
            let (back, _): (JobKind, usize) = bincode::decode_from_slice(&bytes, cfg).unwrap();
            assert_eq!(back, *k);
        }
        for s in JobStatus::ALL {
            assert_eq!(s.as_str().parse::<JobStatus>().unwrap(), *s);
        }
        for s in ProjectStatus::ALL {
            assert_eq!(s.as_str().parse::<ProjectStatus>().unwrap(), *s);
        }
    }

    #[test]
    fn unknown_name_says_what_is_expected() {
        let err = "training".parse::<JobKind>().unwrap_err();
        assert!(err
            .to_string()
            .contains("dataset_preview, dataset_generate, train, export, evaluate"));
        let cfg = bincode::config::standard();
        let bytes = bincode::encode_to_vec("bogus", cfg).unwrap();
        assert!(bincode::decode_from_slice::<JobStatus, _>(&bytes, cfg).is_err());
    }

    #[test]
    fn terminal_statuses() {
        assert!(JobStatus::Success.is_terminal());
        assert!(JobStatus::Cancelled.is_terminal());
        assert!(!JobStatus::Retrying.is_terminal());
    }
}
