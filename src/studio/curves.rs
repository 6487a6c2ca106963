//! The curves a page draws, in uPlot's `[[x...], [y...]]` form: training loss, eval loss,
//! learning rate and gradient norm by step, each thinned to at most `MAX_POINTS` (minima and
//! maxima kept, `downsample`). The thinned curves of a job are computed once per change of its
//! reading and kept as JSON, so a page view of an unchanged long run does no work on them.

use std::sync::Arc;

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
struct Curves {
    /// Steps recorded in all (before thinning).
    recorded_steps: usize,
    loss: Curve,
    eval_loss: Curve,
    learning_rate: Curve,
    grad_norm: Curve,
}

fn compute(log: &JobLog) -> Curves {
    let eval: Vec<(u64, f64)> = log.eval_loss.iter().map(|(s, l)| (*s, *l)).collect();
    Curves {
        recorded_steps: log.steps.len(),
        loss: Curve::of(&log.series(|p| p.loss), MAX_POINTS),
        eval_loss: Curve::of(&eval, MAX_POINTS),
        learning_rate: Curve::of(&log.series(|p| p.learning_rate), MAX_POINTS),
        grad_norm: Curve::of(&log.series(|p| p.grad_norm), MAX_POINTS),
    }
}

/// The job's thinned curves as a JSON object (cached until the reading changes).
pub fn curves_json(log: &mut JobLog) -> Arc<str> {
    if let Some((seq, json)) = &log.thinned {
        if *seq == log.through_seq {
            return json.clone();
        }
    }
    let json: Arc<str> = serde_json::to_string(&compute(log))
        .unwrap_or_else(|_| "{}".into())
        .into();
    log.thinned = Some((log.through_seq, json.clone()));
    json
}
