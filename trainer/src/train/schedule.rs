//! Learning-rate schedules: linear warmup, then linear decay, cosine decay or constant
//! (`transformers.get_scheduler` semantics).

use tunewright_schemas::config::LrSchedulerType;

pub fn lr_at(step: u64, total: u64, warmup: u64, base: f64, kind: LrSchedulerType) -> f64 {
    if warmup > 0 && step < warmup {
        return base * step as f64 / warmup as f64;
    }
    let span = total.saturating_sub(warmup).max(1) as f64;
    let progress = (step.saturating_sub(warmup) as f64 / span).min(1.0);
    match kind {
        LrSchedulerType::Constant => base,
        LrSchedulerType::Linear => base * (1.0 - progress).max(0.0),
        LrSchedulerType::Cosine => base * 0.5 * (1.0 + (std::f64::consts::PI * progress).cos()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warmup_then_decay() {
        assert_eq!(lr_at(0, 100, 10, 1.0, LrSchedulerType::Linear), 0.0);
        assert!((lr_at(5, 100, 10, 1.0, LrSchedulerType::Linear) - 0.5).abs() < 1e-12);
        assert!((lr_at(10, 100, 10, 1.0, LrSchedulerType::Linear) - 1.0).abs() < 1e-12);
        assert!((lr_at(55, 100, 10, 1.0, LrSchedulerType::Linear) - 0.5).abs() < 1e-12);
        assert!((lr_at(55, 100, 10, 1.0, LrSchedulerType::Cosine) - 0.5).abs() < 1e-12);
        assert_eq!(lr_at(100, 100, 10, 1.0, LrSchedulerType::Linear), 0.0);
        assert_eq!(lr_at(70, 100, 0, 2.0, LrSchedulerType::Constant), 2.0);
    }
}
