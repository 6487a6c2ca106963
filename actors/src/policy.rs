//! Retry policies per job kind (docs/jobs.md, "Retry policies") and the backoff they compute.
//!
//! Celery's semantics: retry k (1-based) waits `min(cap, base * 2^(k-1))`; with full jitter the
//! wait is drawn uniformly from `[0, that]`. Only codes that are retryable in the catalog *and*
//! listed by the kind's policy are retried.

use std::time::Duration;

use rand::Rng;
use serde::{Deserialize, Serialize};
use tunewright_schemas::{ErrorCode, JobKind};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RetryPolicy {
    pub max_retries: u32,
    pub base: Duration,
    pub cap: Duration,
    pub full_jitter: bool,
    /// The codes this kind retries (each must also be retryable in the catalog).
    pub retry_on: Vec<ErrorCode>,
}

impl RetryPolicy {
    pub fn none() -> Self {
        RetryPolicy {
            max_retries: 0,
            base: Duration::ZERO,
            cap: Duration::ZERO,
            full_jitter: false,
            retry_on: vec![],
        }
    }

    /// The documented policy for `kind`.
    pub fn for_kind(kind: JobKind) -> Self {
        let llm = vec![
            ErrorCode::OllamaApiTimeout,
            ErrorCode::OllamaApiRateLimit,
            ErrorCode::OllamaApiError,
        ];
        match kind {
            JobKind::DatasetPreview => RetryPolicy {
                max_retries: 3,
                base: Duration::from_secs(1),
                cap: Duration::from_secs(60),
                full_jitter: true,
                retry_on: llm,
            },
            JobKind::DatasetGenerate => RetryPolicy {
                max_retries: 3,
                base: Duration::from_secs(1),
                cap: Duration::from_secs(120),
                full_jitter: true,
                retry_on: llm,
            },
            // A stalled worker was killed; the next attempt resumes from its last checkpoint.
            JobKind::Train => RetryPolicy {
                max_retries: 3,
                base: Duration::from_secs(1),
                cap: Duration::from_secs(30),
                full_jitter: false,
                retry_on: vec![ErrorCode::TrainingStalled],
            },
            JobKind::Export => RetryPolicy {
                max_retries: 2,
                base: Duration::from_secs(1),
                cap: Duration::from_secs(600),
                full_jitter: true,
                retry_on: vec![
                    ErrorCode::ExportWriteFailed,
                    ErrorCode::FileUploadFailed,
                    ErrorCode::TrainingStalled,
                ],
            },
            // Like an export: a worker that reads a training's weights and writes a file.
            JobKind::Evaluate => RetryPolicy {
                max_retries: 2,
                base: Duration::from_secs(1),
                cap: Duration::from_secs(600),
                full_jitter: true,
                retry_on: vec![ErrorCode::EvaluationFailed, ErrorCode::TrainingStalled],
            },
        }
    }

    /// Whether a failure with `code` after `attempts` started attempts gets another one.
    pub fn should_retry(&self, code: ErrorCode, attempts: u32, max_retries: u32) -> bool {
        code.is_retryable() && self.retry_on.contains(&code) && attempts <= max_retries
    }

    /// The wait before retry number `retry` (1-based).
    pub fn backoff(&self, retry: u32, rng: &mut impl Rng) -> Duration {
        let exp = 2u64.saturating_pow(retry.saturating_sub(1).min(62));
        let ceiling = self
            .base
            .saturating_mul(exp.min(u32::MAX as u64) as u32)
            .min(self.cap);
        if self.full_jitter && !ceiling.is_zero() {
            Duration::from_millis(rng.random_range(0..=ceiling.as_millis() as u64))
        } else {
            ceiling
        }
    }
}

/// The policies of all kinds; configurable as a whole.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RetryPolicies {
    pub dataset_preview: RetryPolicy,
    pub dataset_generate: RetryPolicy,
    pub train: RetryPolicy,
    pub export: RetryPolicy,
    #[serde(default = "evaluate_policy")]
    pub evaluate: RetryPolicy,
}

fn evaluate_policy() -> RetryPolicy {
    RetryPolicy::for_kind(JobKind::Evaluate)
}

impl Default for RetryPolicies {
    fn default() -> Self {
        RetryPolicies {
            dataset_preview: RetryPolicy::for_kind(JobKind::DatasetPreview),
            dataset_generate: RetryPolicy::for_kind(JobKind::DatasetGenerate),
            train: RetryPolicy::for_kind(JobKind::Train),
            export: RetryPolicy::for_kind(JobKind::Export),
            evaluate: evaluate_policy(),
        }
    }
}

impl RetryPolicies {
    pub fn get(&self, kind: JobKind) -> &RetryPolicy {
        match kind {
            JobKind::DatasetPreview => &self.dataset_preview,
            JobKind::DatasetGenerate => &self.dataset_generate,
            JobKind::Train => &self.train,
            JobKind::Export => &self.export,
            JobKind::Evaluate => &self.evaluate,
        }
    }

    pub fn get_mut(&mut self, kind: JobKind) -> &mut RetryPolicy {
        match kind {
            JobKind::DatasetPreview => &mut self.dataset_preview,
            JobKind::DatasetGenerate => &mut self.dataset_generate,
            JobKind::Train => &mut self.train,
            JobKind::Export => &mut self.export,
            JobKind::Evaluate => &mut self.evaluate,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn documented_numbers() {
        let p = RetryPolicies::default();
        assert_eq!(p.dataset_preview.max_retries, 3);
        assert_eq!(p.dataset_preview.cap, Duration::from_secs(60));
        assert_eq!(p.dataset_generate.cap, Duration::from_secs(120));
        assert_eq!(p.train.max_retries, 3);
        assert_eq!(p.train.retry_on, vec![ErrorCode::TrainingStalled]);
        assert_eq!(p.export.max_retries, 2);
        assert_eq!(p.evaluate.max_retries, 2);
        assert_eq!(p.evaluate.cap, p.export.cap);
    }

    #[test]
    fn exponential_capped_and_jittered_within_bounds() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let mut p = RetryPolicy::for_kind(JobKind::DatasetPreview);
        p.full_jitter = false;
        let waits: Vec<u64> = (1..=8).map(|k| p.backoff(k, &mut rng).as_secs()).collect();
        assert_eq!(waits, vec![1, 2, 4, 8, 16, 32, 60, 60]);
        p.full_jitter = true;
        for k in 1..=8 {
            let ceiling = Duration::from_secs(1 << (k - 1)).min(p.cap);
            for _ in 0..200 {
                assert!(p.backoff(k, &mut rng) <= ceiling);
            }
        }
        // Jitter really spreads the waits.
        let distinct: std::collections::HashSet<_> =
            (0..50).map(|_| p.backoff(6, &mut rng)).collect();
        assert!(distinct.len() > 10);
    }

    #[test]
    fn only_listed_retryable_codes_retry() {
        let p = RetryPolicy::for_kind(JobKind::DatasetGenerate);
        assert!(p.should_retry(ErrorCode::OllamaApiTimeout, 1, 3));
        assert!(p.should_retry(ErrorCode::OllamaApiRateLimit, 3, 3));
        assert!(
            !p.should_retry(ErrorCode::OllamaApiTimeout, 4, 3),
            "retries exhausted"
        );
        assert!(
            !p.should_retry(ErrorCode::OllamaApiKeyInvalid, 1, 3),
            "401 is not retryable"
        );
        assert!(
            !p.should_retry(ErrorCode::ExportWriteFailed, 1, 3),
            "not this kind's error"
        );
        let e = RetryPolicy::for_kind(JobKind::Export);
        assert!(e.should_retry(ErrorCode::ExportWriteFailed, 1, 2));
        let v = RetryPolicy::for_kind(JobKind::Evaluate);
        assert!(v.should_retry(ErrorCode::EvaluationFailed, 1, 2));
        assert!(!v.should_retry(ErrorCode::CheckpointNotFound, 1, 2));
        assert!(!v.should_retry(ErrorCode::ExportWriteFailed, 1, 2));
        assert!(!RetryPolicy::for_kind(JobKind::Train).should_retry(ErrorCode::TrainingOom, 1, 0));
    }
}
