//! The progress watchdog of a worker (docs/jobs.md, "The progress watchdog"): how long a worker
//! may stay silent before it is declared hung. Before its first step the bound is the start-up
//! allowance of its stage: the floor plus a time per GiB of what the stage reads (the data in
//! pre-flight, the weights in model load); once it steps, ten times the longest gap seen between
//! its progress lines. Both are held between a
//! floor and a configurable ceiling. Any protocol line resets the clock; only step-carrying
//! lines (progress, heartbeat) measure the pace.

use std::time::Duration;

use tokio::time::Instant;
use tunewright_schemas::worker::WorkerLine;
use tunewright_schemas::{ctx, ErrorCode, ErrorPhase, Failure};

/// How many of the slowest gap seen a worker may stay silent once it steps.
const PACE_FACTOR: u32 = 10;

/// The configurable limits of the watchdog.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StallBounds {
    /// No bound is shorter (a worker is never killed for a pause under this).
    pub floor: Duration,
    /// No bound is longer (a worker silent this long is hung, whatever it was doing).
    pub ceiling: Duration,
    /// Start-up time allowed per GiB of model weights, on top of the floor.
    pub startup_per_gib: Duration,
}

impl Default for StallBounds {
    fn default() -> Self {
        StallBounds {
            floor: Duration::from_secs(120),
            ceiling: Duration::from_secs(1800),
            startup_per_gib: Duration::from_secs(60),
        }
    }
}

impl StallBounds {
    fn clamp(&self, d: Duration) -> Duration {
        d.max(self.floor).min(self.ceiling.max(self.floor))
    }
}

/// A worker found hung: what the failure record says.
#[derive(Debug, Clone, PartialEq)]
pub struct Stall {
    pub silent_for: Duration,
    pub bound: Duration,
    /// `pre-flight` (reading the data), `model load` or `training`.
    pub stage: &'static str,
    pub phase: ErrorPhase,
    pub last_step: u64,
}

impl Stall {
    /// The `TRAINING_STALLED` failure of the attempt, with the worker's last log lines.
    pub fn failure(&self, log_tail: Vec<String>) -> Failure {
        let mut f = Failure::new(
            ErrorCode::TrainingStalled,
            ctx! {
                "silent_secs" => self.silent_for.as_secs(),
                "bound_secs" => self.bound.as_secs(),
                "stage" => self.stage,
                "last_step" => self.last_step,
            },
        )
        .in_phase(self.phase);
        f.log_tail = log_tail;
        f
    }
}

/// What a worker reads before its first step, which sizes its start-up allowance.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StartupLoad {
    /// Read in pre-flight (the training data; for an export, the weights it merges).
    pub data_bytes: u64,
    /// Read in model load (the weights).
    pub model_bytes: u64,
}

/// The size of the file at `path` (0 when it cannot be read, or is not a regular file: a FIFO
/// or a device then gets the floor alone).
pub fn file_bytes(path: &std::path::Path) -> u64 {
    std::fs::metadata(path)
        .ok()
        .filter(|m| m.is_file())
        .map(|m| m.len())
        .unwrap_or(0)
}

/// The weights a worker loads from `dir`: the sizes of its `*.safetensors` and `*.bin` files
/// (0 when it cannot be read: the floor alone then bounds the start-up).
pub fn model_bytes(dir: &std::path::Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .filter(|e| {
            let name = e.file_name();
            let name = name.to_string_lossy();
            name.ends_with(".safetensors") || name.ends_with(".bin")
        })
        .filter_map(|e| e.metadata().ok())
        .filter(|m| m.is_file())
        .map(|m| m.len())
        .sum()
}

/// The watchdog of one worker run.
#[derive(Debug, Clone)]
pub struct Watchdog {
    bounds: StallBounds,
    /// The start-up allowances of pre-flight and of model load.
    preflight: Duration,
    model_load: Duration,
    last_line: Instant,
    /// The last step-carrying line: when, and at which step.
    last_step_line: Option<(Instant, u64)>,
    /// The worker reported its pre-flight: it is loading the model now.
    preflight_done: bool,
    slowest_gap: Duration,
}

impl Watchdog {
    /// A watchdog for a worker that reads `load` before its first step, started now.
    pub fn new(bounds: StallBounds, load: StartupLoad) -> Self {
        let allowance = |bytes: u64| {
            let gib = bytes as f64 / (1u64 << 30) as f64;
            bounds.floor + bounds.startup_per_gib.mul_f64(gib.max(0.0))
        };
        Watchdog {
            bounds,
            preflight: allowance(load.data_bytes),
            model_load: allowance(load.model_bytes),
            last_line: Instant::now(),
            last_step_line: None,
            preflight_done: false,
            slowest_gap: Duration::ZERO,
        }
    }

    /// A line arrived now.
    pub fn saw(&mut self, line: &WorkerLine) {
        let now = Instant::now();
        self.last_line = now;
        let step = match line {
            WorkerLine::Progress { step, .. } | WorkerLine::Heartbeat { step } => *step,
            WorkerLine::Note { topic, .. } if topic == "preflight" => {
                self.preflight_done = true;
                return;
            }
            _ => return,
        };
        if let Some((at, _)) = self.last_step_line {
            self.slowest_gap = self.slowest_gap.max(now - at);
        }
        self.last_step_line = Some((now, step));
    }

    /// How long the worker may stay silent from its last line.
    pub fn bound(&self) -> Duration {
        match (self.last_step_line, self.preflight_done) {
            (None, false) => self.bounds.clamp(self.preflight),
            (None, true) => self.bounds.clamp(self.model_load),
            (Some(_), _) => self.bounds.clamp(self.slowest_gap * PACE_FACTOR),
        }
    }

    /// When the worker is declared hung, unless a line arrives first.
    pub fn deadline(&self) -> Instant {
        self.last_line + self.bound()
    }

    /// What to report once the deadline passed.
    pub fn stall(&self) -> Stall {
        let (stage, phase) = match (self.last_step_line, self.preflight_done) {
            (None, false) => ("pre-flight", ErrorPhase::Preflight),
            (None, true) => ("model load", ErrorPhase::ModelLoad),
            (Some(_), _) => ("training", ErrorPhase::Training),
        };
        Stall {
            silent_for: Instant::now() - self.last_line,
            bound: self.bound(),
            stage,
            phase,
            last_step: self.last_step_line.map(|(_, s)| s).unwrap_or(0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bounds() -> StallBounds {
        StallBounds {
            floor: Duration::from_secs(2),
            ceiling: Duration::from_secs(100),
            startup_per_gib: Duration::from_secs(10),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn start_up_allows_the_floor_plus_time_per_gib_of_what_the_stage_reads() {
        let load = StartupLoad {
            data_bytes: 1 << 30,
            model_bytes: 3 << 30,
        };
        let w = Watchdog::new(bounds(), load);
        assert_eq!(w.bound(), Duration::from_secs(12), "the data's allowance");
        assert_eq!(w.stall().stage, "pre-flight");
        assert_eq!(w.stall().phase, ErrorPhase::Preflight);
        let mut w = w;
        w.saw(&WorkerLine::Note {
            topic: "preflight".into(),
            data: serde_json::json!({}),
        });
        assert_eq!(w.bound(), Duration::from_secs(32), "the weights' allowance");
        assert_eq!(w.stall().stage, "model load");
        assert_eq!(w.stall().phase, ErrorPhase::ModelLoad);
    }

    #[tokio::test(start_paused = true)]
    async fn once_stepping_the_bound_follows_the_slowest_gap_within_floor_and_ceiling() {
        let mut w = Watchdog::new(bounds(), StartupLoad::default());
        w.saw(&WorkerLine::Heartbeat { step: 1 });
        tokio::time::advance(Duration::from_millis(100)).await;
        w.saw(&WorkerLine::Heartbeat { step: 2 });
        assert_eq!(
            w.bound(),
            Duration::from_secs(2),
            "10 x 0.1 s is under the floor"
        );
        tokio::time::advance(Duration::from_secs(3)).await;
        w.saw(&WorkerLine::Heartbeat { step: 3 });
        assert_eq!(w.bound(), Duration::from_secs(30));
        tokio::time::advance(Duration::from_secs(20)).await;
        w.saw(&WorkerLine::Heartbeat { step: 4 });
        assert_eq!(w.bound(), Duration::from_secs(100), "held at the ceiling");
        let s = w.stall();
        assert_eq!((s.stage, s.last_step), ("training", 4));
    }

    #[tokio::test(start_paused = true)]
    async fn any_line_resets_the_clock_but_only_steps_measure_the_pace() {
        let mut w = Watchdog::new(bounds(), StartupLoad::default());
        w.saw(&WorkerLine::Heartbeat { step: 1 });
        tokio::time::advance(Duration::from_secs(1)).await;
        w.saw(&WorkerLine::Log {
            line: "evaluating".into(),
        });
        assert_eq!(w.deadline(), Instant::now() + Duration::from_secs(2));
        assert_eq!(w.bound(), Duration::from_secs(2));
    }
}
