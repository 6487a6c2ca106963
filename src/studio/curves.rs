//! The curves a page draws, in uPlot's `[[x...], [y...]]` form: training loss, eval loss,
//! learning rate and gradient norm by step, each thinned to at most `MAX_POINTS` (minima and
//! maxima kept, `downsample`). `through_seq` is where the page's live stream continues.

use serde::Serialize;

use super::downsample::min_max;
use super::job_log::JobLog;

/// Points per curve sent to a page: enough for any screen's width, small enough to send.
pub const MAX_POINTS: usize = 2000;

/// One curve: steps and values.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Curve(pub Vec<u64>, pub Vec<f64>);

impl Curve {
    pub fn of(points: &[(u64, f64)], max_points: usize) -> Curve {
        let thin = min_max(points, max_points);
        Curve(
            thin.iter().map(|p| p.0).collect(),
            thin.iter().map(|p| p.1).collect(),
        )
    }
}

#[derive(Debug, Serialize)]
pub struct Curves {
    pub through_seq: u64,
    /// Steps recorded in all (before thinning).
    pub recorded_steps: usize,
    pub loss: Curve,
    pub eval_loss: Curve,
    pub learning_rate: Curve,
    pub grad_norm: Curve,
}

pub fn curves(log: &JobLog, through_seq: u64) -> Curves {
    let eval: Vec<(u64, f64)> = log.eval_loss.iter().map(|(s, l)| (*s, *l)).collect();
    Curves {
        through_seq,
        recorded_steps: log.steps.len(),
        loss: Curve::of(&log.series(|p| p.loss), MAX_POINTS),
        eval_loss: Curve::of(&eval, MAX_POINTS),
        learning_rate: Curve::of(&log.series(|p| p.learning_rate), MAX_POINTS),
        grad_norm: Curve::of(&log.series(|p| p.grad_norm), MAX_POINTS),
    }
}
