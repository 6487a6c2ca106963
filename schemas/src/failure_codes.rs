//! Between the analyzer's vocabulary and the error catalog, beside the catalog: the catalog
//! code a recognised type is reported under; the type a known code implies when the text says
//! nothing; and the codes that decide the type on their own, with the failure's phase, when
//! tunewright itself raised them (docs/errors.md, "The failure analysis").

use crate::{ErrorCode, ErrorPhase, ErrorType};

use ErrorType::*;

pub fn code_of_type(t: ErrorType) -> ErrorCode {
    match t {
        OomTraining | OomEval | OomModelLoad | OomCpu | ProcessKilled => ErrorCode::TrainingOom,
        Diverged => ErrorCode::TrainingDiverged,
        Stalled => ErrorCode::TrainingStalled,
        CudaError | Distributed | Interrupted => ErrorCode::TrainingInterrupted,
        CudaDriver | NoGpu | PrecisionUnsupported => ErrorCode::TrainingNoGpu,
        DiskFull => ErrorCode::StorageFull,
        PermissionDenied => ErrorCode::FileUploadFailed,
        CheckpointCorrupted | CheckpointMissing | CheckpointIncomplete => {
            ErrorCode::CheckpointNotFound
        }
        ModelNotFound => ErrorCode::ModelNotFound,
        ModelAccessDenied => ErrorCode::ModelAccessDenied,
        ModelUnsupportedArch => ErrorCode::ModelUnsupportedArch,
        ModelMismatch | TokenizerConfig => ErrorCode::TrainingModelLoadFailed,
        DatasetFormat | SequenceTooLong | LoraConfig | ChatRoles => ErrorCode::ValidationError,
        DatasetTooSmall => ErrorCode::DatasetTooFewExamples,
        NetworkTimeout => ErrorCode::OllamaApiTimeout,
        NetworkUnreachable | LlmServerError => ErrorCode::OllamaApiError,
        RateLimit => ErrorCode::OllamaApiRateLimit,
        AuthFailed => ErrorCode::OllamaApiKeyInvalid,
        LlmResponseInvalid => ErrorCode::OllamaResponseInvalid,
        LlmModelNotFound => ErrorCode::OllamaModelNotFound,
        // Failures inside a training step that are bugs or setup, not resources.
        DeviceMismatch | DtypeMismatch | NoGradient | DependencyMissing | Unknown => {
            ErrorCode::InternalError
        }
    }
}

/// The type a catalog code implies, when the text says nothing recognisable.
pub fn type_of_code(c: ErrorCode) -> Option<ErrorType> {
    Some(match c {
        ErrorCode::TrainingOom => OomTraining,
        ErrorCode::TrainingDiverged => Diverged,
        ErrorCode::TrainingNoGpu | ErrorCode::GpuNotAvailable => NoGpu,
        ErrorCode::TrainingInterrupted => Interrupted,
        ErrorCode::TrainingStalled => Stalled,
        ErrorCode::StorageFull => DiskFull,
        ErrorCode::TrainingModelLoadFailed => ModelMismatch,
        ErrorCode::ModelNotFound => ModelNotFound,
        ErrorCode::ModelAccessDenied => ModelAccessDenied,
        ErrorCode::ModelUnsupportedArch => ModelUnsupportedArch,
        ErrorCode::CheckpointNotFound => CheckpointMissing,
        ErrorCode::DatasetTooFewExamples | ErrorCode::DatasetNoChunks => DatasetTooSmall,
        ErrorCode::DatasetUploadInvalid => DatasetFormat,
        ErrorCode::OllamaApiTimeout => NetworkTimeout,
        ErrorCode::OllamaApiRateLimit => RateLimit,
        ErrorCode::OllamaApiKeyInvalid | ErrorCode::OllamaApiKeyMissing => AuthFailed,
        ErrorCode::OllamaApiError => NetworkUnreachable,
        ErrorCode::OllamaResponseInvalid => LlmResponseInvalid,
        ErrorCode::OllamaModelNotFound => LlmModelNotFound,
        ErrorCode::GpuVramInsufficient => OomTraining,
        _ => return None,
    })
}

/// The type a failure tunewright raised itself has, from its code and phase alone: the code
/// that failed knew what happened, so its text is not second-guessed. `None` for codes that
/// several kinds of failure share (an interrupted run, an internal error, a failed write, an
/// LLM service error), which the text tells apart.
pub fn decisive_type(code: ErrorCode, phase: Option<ErrorPhase>) -> Option<ErrorType> {
    Some(match code {
        ErrorCode::TrainingOom => match phase {
            Some(ErrorPhase::ModelLoad) => OomModelLoad,
            Some(ErrorPhase::Evaluation) => OomEval,
            _ => return None,
        },
        ErrorCode::TrainingDiverged => Diverged,
        ErrorCode::TrainingStalled => Stalled,
        ErrorCode::StorageFull => DiskFull,
        ErrorCode::TrainingNoGpu => NoGpu,
        ErrorCode::ModelNotFound => ModelNotFound,
        ErrorCode::ModelAccessDenied => ModelAccessDenied,
        ErrorCode::ModelUnsupportedArch => ModelUnsupportedArch,
        ErrorCode::CheckpointNotFound => CheckpointMissing,
        ErrorCode::DatasetTooFewExamples | ErrorCode::DatasetNoChunks => DatasetTooSmall,
        ErrorCode::DatasetUploadInvalid => DatasetFormat,
        ErrorCode::OllamaApiTimeout => NetworkTimeout,
        ErrorCode::OllamaApiRateLimit => RateLimit,
        ErrorCode::OllamaApiKeyInvalid | ErrorCode::OllamaApiKeyMissing => AuthFailed,
        ErrorCode::OllamaResponseInvalid => LlmResponseInvalid,
        ErrorCode::OllamaModelNotFound => LlmModelNotFound,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_llm_services_codes_read_back_as_their_types() {
        for t in [
            NetworkTimeout,
            RateLimit,
            AuthFailed,
            LlmResponseInvalid,
            LlmModelNotFound,
        ] {
            assert_eq!(type_of_code(code_of_type(t)), Some(t), "{t}");
        }
        assert_eq!(
            type_of_code(ErrorCode::DatasetNoChunks),
            Some(DatasetTooSmall)
        );
        assert_eq!(type_of_code(ErrorCode::ProjectNotFound), None);
    }

    #[test]
    fn an_oom_is_placed_by_its_phase() {
        let oom = |p| decisive_type(ErrorCode::TrainingOom, Some(p));
        assert_eq!(oom(ErrorPhase::ModelLoad), Some(OomModelLoad));
        assert_eq!(oom(ErrorPhase::Evaluation), Some(OomEval));
        // In training the text still tells a GPU's from the host's.
        assert_eq!(oom(ErrorPhase::Training), None);
        assert_eq!(decisive_type(ErrorCode::TrainingInterrupted, None), None);
    }
}
