//! Training-dynamics detection of backdoor insertion.
//!
//! When poisoned examples start to enter a run, the model meets sequences it cannot yet predict
//! (a trigger followed by an answer unlike any it was trained on), so the per-batch loss and the
//! gradient norm jump above the smooth decline of a clean run until the backdoor is learnt.
//! [`CusumMonitor`] watches exactly what a trainer has, one [`StepLog`] per step: each series
//! is standardised against its own exponentially weighted mean and variance so far, and a
//! one-sided CUSUM accumulates standardised excesses above a slack `k`. The run's score at a
//! step is the loss CUSUM (or the larger of the two with `use_grad_norm`); an alarm is raised when it crosses a threshold `h`
//! that is calibrated on clean runs only ([`calibrate_threshold`]).
//!
//! The monitor is a [`mesa_nn::TrainObserver`], so any organism trained through
//! `mesa_nn::train_observed` can be monitored online; [`CusumMonitor::replay`] runs the same
//! statistic offline on a finished run's log (checkpoints keep it).
//!
//! [`LossCusumDetector`] (`loss-cusum`, [`register`]) is the offline statistic as a
//! `mesa-detect` model-level detector of the dynamics family: it reads the audited model's own
//! training log from the audit context and scores late excess of the log-loss above its own
//! trend (see [`detector`]).
//!
//! It knows nothing of triggers or organisms: only losses and gradient norms.

use mesa_nn::{StepLog, TrainObserver, Transformer};
use serde::Serialize;
use thiserror::Error;

pub mod detector;

pub use detector::{
    log_stats, register, LogStats, LossCusumDetector, LossCusumParams, LOSS_FLOOR, NAME, SPIKE_Z,
};

/// Errors of the crate.
#[derive(Debug, Clone, PartialEq, Error)]
#[non_exhaustive]
pub enum DynamicsError {
    #[error("invalid monitor parameter {name} = {value}: {reason}")]
    InvalidParam {
        name: &'static str,
        value: f64,
        reason: &'static str,
    },
    #[error("step {step}: non-finite {what} {value}: the monitor cannot read it")]
    NonFinite {
        step: usize,
        what: &'static str,
        value: f64,
    },
    #[error("cannot calibrate a threshold: {0}")]
    Calibration(String),
    #[error("unusable training log: {0}")]
    InvalidLog(String),
}

pub type Result<T> = std::result::Result<T, DynamicsError>;

/// Hyper-parameters of the CUSUM monitor.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MonitorParams {
    /// Weight of the newest value in the running mean and variance (0 < alpha < 1).
    pub alpha: f64,
    /// Steps read before any score accumulates (the warm-up of the statistics and of the
    /// learning rate, where a clean run's loss falls fastest).
    pub burn_in: usize,
    /// Slack: standardised excess below `k` is treated as noise.
    pub k: f64,
    /// Cap on one step's standardised excess, so that one outlier batch cannot raise an alarm
    /// alone.
    pub clip: f64,
    /// Whether the gradient-norm CUSUM counts towards the score. Off by default: in a pilot
    /// (7 runs of the `deployment` data, 400 steps) clean runs' gradient norms spiked above 3
    /// standard deviations 7-14 times per run, so that channel set a threshold no poisoned run
    /// reached; the loss channel never did.
    pub use_grad_norm: bool,
}

impl Default for MonitorParams {
    fn default() -> Self {
        Self {
            alpha: 0.05,
            burn_in: 100,
            k: 0.5,
            clip: 4.0,
            use_grad_norm: false,
        }
    }
}

impl MonitorParams {
    /// # Errors
    /// [`DynamicsError::InvalidParam`] for alpha outside (0, 1), a negative or non-finite
    /// slack, or a clip that is not positive.
    pub fn check(&self) -> Result<()> {
        let bad = |name, value, reason| {
            Err(DynamicsError::InvalidParam {
                name,
                value,
                reason,
            })
        };
        if !(self.alpha > 0.0 && self.alpha < 1.0) {
            return bad("alpha", self.alpha, "must be in (0, 1)");
        }
        if !(self.k.is_finite() && self.k >= 0.0) {
            return bad("k", self.k, "must be finite and >= 0");
        }
        if !(self.clip.is_finite() && self.clip > 0.0) {
            return bad("clip", self.clip, "must be finite and > 0");
        }
        Ok(())
    }
}

/// Running exponentially weighted mean and variance of one series, with its CUSUM.
#[derive(Debug, Clone, Default)]
struct Channel {
    mean: f64,
    var: f64,
    seen: usize,
    cusum: f64,
}

impl Channel {
    /// Folds in `x`; returns the standardised excess against the statistics *before* `x`.
    fn update(&mut self, x: f64, p: &MonitorParams, accumulate: bool) -> f64 {
        let z = if self.seen >= 2 && self.var > 0.0 {
            (x - self.mean) / self.var.sqrt()
        } else {
            0.0
        };
        if accumulate {
            self.cusum = (self.cusum + z.min(p.clip) - p.k).max(0.0);
        }
        if self.seen == 0 {
            self.mean = x;
        } else {
            let d = x - self.mean;
            self.mean += p.alpha * d;
            self.var = (1.0 - p.alpha) * (self.var + p.alpha * d * d);
        }
        self.seen += 1;
        z
    }
}

/// One step of the monitor's trace.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct MonitorPoint {
    pub step: usize,
    pub loss_z: f64,
    pub grad_z: f64,
    /// The loss CUSUM, or max(loss CUSUM, gradient-norm CUSUM) with `use_grad_norm`.
    pub score: f64,
}

/// The online monitor. Feed it every step's log (as a [`TrainObserver`] or by
/// [`CusumMonitor::push`]); read the trace, the running maximum and the first alarm.
#[derive(Debug, Clone)]
pub struct CusumMonitor {
    params: MonitorParams,
    threshold: f64,
    loss: Channel,
    grad: Channel,
    trace: Vec<MonitorPoint>,
    max_score: f64,
    alarm: Option<usize>,
}

impl CusumMonitor {
    /// A monitor raising its alarm when the score exceeds `threshold` (use
    /// `f64::INFINITY` to only record the trace, e.g. while calibrating).
    ///
    /// # Errors
    /// Invalid parameters or a NaN threshold.
    pub fn new(params: MonitorParams, threshold: f64) -> Result<Self> {
        params.check()?;
        if threshold.is_nan() {
            return Err(DynamicsError::InvalidParam {
                name: "threshold",
                value: threshold,
                reason: "must be a number",
            });
        }
        Ok(Self {
            params,
            threshold,
            loss: Channel::default(),
            grad: Channel::default(),
            trace: Vec::new(),
            max_score: 0.0,
            alarm: None,
        })
    }

    /// Reads one step.
    ///
    /// # Errors
    /// A non-finite loss or gradient norm (training should have stopped on it).
    pub fn push(&mut self, log: &StepLog) -> Result<MonitorPoint> {
        for (what, v) in [("loss", log.loss), ("gradient norm", log.grad_norm)] {
            if !v.is_finite() {
                return Err(DynamicsError::NonFinite {
                    step: log.step,
                    what,
                    value: f64::from(v),
                });
            }
        }
        let accumulate = self.trace.len() >= self.params.burn_in;
        let loss_z = self
            .loss
            .update(f64::from(log.loss), &self.params, accumulate);
        let grad_z = self
            .grad
            .update(f64::from(log.grad_norm), &self.params, accumulate);
        let score = if self.params.use_grad_norm {
            self.loss.cusum.max(self.grad.cusum)
        } else {
            self.loss.cusum
        };
        self.max_score = self.max_score.max(score);
        if self.alarm.is_none() && score > self.threshold {
            self.alarm = Some(log.step);
        }
        let point = MonitorPoint {
            step: log.step,
            loss_z,
            grad_z,
            score,
        };
        self.trace.push(point);
        Ok(point)
    }

    /// The same statistic offline, on a finished run's log.
    ///
    /// # Errors
    /// As [`CusumMonitor::new`] and [`CusumMonitor::push`].
    pub fn replay(params: MonitorParams, threshold: f64, log: &[StepLog]) -> Result<Self> {
        let mut m = Self::new(params, threshold)?;
        for entry in log {
            m.push(entry)?;
        }
        Ok(m)
    }

    pub fn trace(&self) -> &[MonitorPoint] {
        &self.trace
    }

    /// The largest score so far: the run-level score.
    pub fn max_score(&self) -> f64 {
        self.max_score
    }

    /// The step of the first alarm, if any.
    pub fn alarm(&self) -> Option<usize> {
        self.alarm
    }
}

impl TrainObserver for CusumMonitor {
    fn observe(&mut self, _model: &Transformer, log: &StepLog) -> mesa_nn::Result<()> {
        // A monitor that cannot read a step must not stop training as if it had raised an
        // alarm; training itself already stops on a non-finite loss.
        let _ = self.push(log);
        Ok(())
    }
}

/// The alarm threshold from clean runs' maximum scores: the smallest threshold that at most
/// `max_false_alarms` of them exceed (so `0` = above every clean calibration run).
///
/// # Errors
/// No calibration runs, a non-finite score, or more allowed alarms than runs.
pub fn calibrate_threshold(clean_max_scores: &[f64], max_false_alarms: usize) -> Result<f64> {
    if clean_max_scores.is_empty() {
        return Err(DynamicsError::Calibration(
            "no clean calibration runs".into(),
        ));
    }
    if clean_max_scores.iter().any(|s| !s.is_finite()) {
        return Err(DynamicsError::Calibration(
            "a non-finite clean score".into(),
        ));
    }
    if max_false_alarms >= clean_max_scores.len() {
        return Err(DynamicsError::Calibration(format!(
            "{max_false_alarms} allowed false alarms among {} runs",
            clean_max_scores.len()
        )));
    }
    let mut s = clean_max_scores.to_vec();
    s.sort_by(|a, b| b.total_cmp(a));
    Ok(s[max_false_alarms])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn log(step: usize, loss: f32, grad_norm: f32) -> StepLog {
        StepLog {
            step,
            loss,
            grad_norm,
            lr: 1e-3,
        }
    }

    /// A clean-looking run: loss decays with deterministic pseudo-noise.
    fn run(poison_at: Option<usize>, steps: usize, seed: u32) -> Vec<StepLog> {
        let mut state = seed.wrapping_mul(2_654_435_761).wrapping_add(1);
        let mut noise = move || {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            (state as f32 / u32::MAX as f32) - 0.5
        };
        (0..steps)
            .map(|t| {
                let base = 2.0 * (-(t as f32) / 150.0).exp() + 0.2;
                let bump = match poison_at {
                    // A jump that decays as the backdoor is learnt.
                    Some(t0) if t >= t0 => 0.4 * (-((t - t0) as f32) / 60.0).exp(),
                    _ => 0.0,
                };
                log(
                    t,
                    base + bump + 0.03 * noise(),
                    1.0 + 0.1 * noise() + 2.0 * bump,
                )
            })
            .collect()
    }

    #[test]
    fn flags_a_planted_loss_jump_soon_after_onset_and_not_the_clean_runs() {
        let p = MonitorParams::default();
        let clean: Vec<f64> = (0..20)
            .map(|s| CusumMonitor::replay(p.clone(), f64::INFINITY, &run(None, 600, s)).unwrap())
            .map(|m| m.max_score())
            .collect();
        let h = calibrate_threshold(&clean, 0).unwrap();
        for s in 100..110 {
            let m = CusumMonitor::replay(p.clone(), h, &run(Some(300), 600, s)).unwrap();
            let alarm = m.alarm().expect("poisoned run flagged");
            assert!((300..340).contains(&alarm), "alarm at {alarm}");
            // Held-out clean runs: scored by the same threshold.
            let c = CusumMonitor::replay(p.clone(), h, &run(None, 600, s)).unwrap();
            assert!(c.max_score() < m.max_score());
        }
    }

    #[test]
    fn gradient_channel_counts_only_when_asked() {
        // Loss flat, gradient norm jumps at step 200.
        let logs: Vec<StepLog> = (0..400)
            .map(|t| {
                let wiggle = if t % 2 == 0 { 0.01 } else { -0.01 };
                log(t, 1.0 + wiggle, if t >= 200 { 3.0 } else { 1.0 + wiggle })
            })
            .collect();
        let off = CusumMonitor::replay(MonitorParams::default(), 2.0, &logs).unwrap();
        assert_eq!(off.alarm(), None);
        let on = MonitorParams {
            use_grad_norm: true,
            ..MonitorParams::default()
        };
        assert_eq!(
            CusumMonitor::replay(on, 2.0, &logs).unwrap().alarm(),
            Some(200)
        );
    }

    #[test]
    fn burn_in_and_slack_keep_a_smooth_decline_at_zero() {
        let smooth: Vec<StepLog> = (0..400)
            .map(|t| log(t, 2.0 * (-(t as f32) / 100.0).exp() + 0.1, 1.0))
            .collect();
        let m = CusumMonitor::replay(MonitorParams::default(), 1.0, &smooth).unwrap();
        assert_eq!(m.max_score(), 0.0);
        assert_eq!(m.alarm(), None);
    }

    #[test]
    fn refuses_bad_parameters_non_finite_steps_and_bad_calibration() {
        let bad = MonitorParams {
            alpha: 1.0,
            ..MonitorParams::default()
        };
        assert!(CusumMonitor::new(bad, 1.0).is_err());
        let mut m = CusumMonitor::new(MonitorParams::default(), 1.0).unwrap();
        assert!(m.push(&log(0, f32::NAN, 1.0)).is_err());
        assert!(calibrate_threshold(&[], 0).is_err());
        assert!(calibrate_threshold(&[1.0, 2.0], 2).is_err());
        assert_eq!(calibrate_threshold(&[1.0, 3.0, 2.0], 1).unwrap(), 2.0);
    }
}
