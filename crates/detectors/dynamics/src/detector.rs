//! `loss-cusum`: the CUSUM statistic of [`CusumMonitor`] replayed offline on the audited
//! model's own training log, as a `mesa-detect` model-level detector ([`register`]).
//!
//! What an offline log can show. The online monitor looks for an onset: the step where
//! poisoned data starts to enter a run. A model trained with poison mixed in from step 0 has
//! no onset; what its log may still show is a loss that keeps rising above its own trend after
//! the task is learnt (batches holding examples the model fits late, such as rare triggered
//! ones). So the detector
//!
//! 1. reads the log alone (no reference model's log: references are models, and a model has
//!    no log of another run), refusing a non-finite or negative entry;
//! 2. replays the loss CUSUM on the log-loss (a zoo run's loss falls over four orders of
//!    magnitude, and batch noise is multiplicative), each step standardised against the
//!    running mean and variance of the steps before it: a smooth decline scores 0, excess
//!    above the log's own trend accumulates;
//! 3. scores the mean statistic over the last `late_fraction` of the log (by default the
//!    second half): persistent late excess, not a single early episode, where a run with
//!    poison from step 0 and a clean run should differ if their logs differ at all.
//!
//! Evidence: the score's parts and what the online monitor would report (the maximum, its
//! step, the first step above a nominal threshold, the share of steps above it, the early mean,
//! the share of late steps more than [`SPIKE_Z`] running standard deviations above the trend,
//! and the maximum of the statistic on the raw loss as the online monitor computes it). The
//! threshold is nominal, not calibrated: calibrating needs clean runs' logs, which an auditor
//! of one model does not have. Nothing here was tuned on the zoo's labels.

use mesa_detect::{
    AuditContext, DetectError, DetectorSpec, Evidence, Family, FittedModelDetector, ModelDetector,
    ModelInfo, Needs, Registry, Verdict,
};
use mesa_nn::{StepLog, Transformer};
use serde::Serialize;

use crate::{CusumMonitor, DynamicsError, MonitorParams, Result};

/// The registry name.
pub const NAME: &str = "loss-cusum";

/// A loss below this is read as this (`ln` of an exact 0 would be minus infinity; an `f32`
/// cross-entropy has no resolution below it anyway).
pub const LOSS_FLOOR: f64 = 1e-7;

/// A late step whose standardised log-loss excess is above this is a spike (evidence only).
pub const SPIKE_Z: f64 = 3.0;

/// What the detector needs: the audited model's training log, nothing else.
pub const NEEDS: Needs = Needs::TRAINING_LOG;

/// What a harness knows about the detector.
pub const INFO: ModelInfo = ModelInfo::new(
    Family::Dynamics,
    "offline CUSUM of the log-loss above its own running trend in the model's training log: mean statistic over the last half of training",
    NEEDS,
);

/// Hyper-parameters of the offline detector.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LossCusumParams {
    /// The monitor's statistic (the online monitor's defaults).
    pub monitor: MonitorParams,
    /// Nominal alarm threshold on the statistic, for the evidence only (alarm step, share
    /// above): not calibrated, and not part of the score.
    pub threshold: f64,
    /// The share of the log, at its end, whose mean statistic is the score (0 < f <= 1).
    pub late_fraction: f64,
}

impl Default for LossCusumParams {
    fn default() -> Self {
        Self {
            monitor: MonitorParams::default(),
            threshold: 5.0,
            late_fraction: 0.5,
        }
    }
}

impl LossCusumParams {
    /// # Errors
    /// [`DynamicsError::InvalidParam`] for invalid monitor parameters, a threshold that is not
    /// a positive number, or a late fraction outside (0, 1].
    pub fn check(&self) -> Result<()> {
        self.monitor.check()?;
        if self.threshold.is_nan() || self.threshold <= 0.0 {
            return Err(DynamicsError::InvalidParam {
                name: "threshold",
                value: self.threshold,
                reason: "must be > 0",
            });
        }
        if !(self.late_fraction > 0.0 && self.late_fraction <= 1.0) {
            return Err(DynamicsError::InvalidParam {
                name: "late_fraction",
                value: self.late_fraction,
                reason: "must be in (0, 1]",
            });
        }
        Ok(())
    }

    /// The shortest log the detector reads: twice the burn-in (at least as many scored steps as
    /// burn-in steps), and at least 20.
    pub fn min_steps(&self) -> usize {
        (2 * self.monitor.burn_in).max(20)
    }
}

/// The offline statistic of one training log.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LogStats {
    /// Entries in the log.
    pub steps: usize,
    /// Mean log-loss CUSUM over the late window: the score.
    pub late_mean: f64,
    /// Mean log-loss CUSUM over the scored steps before the late window (0 if none).
    pub early_mean: f64,
    /// The largest statistic after burn-in, and the step (as logged) where it first peaks.
    pub max: f64,
    pub max_step: usize,
    /// The first logged step whose statistic exceeds the nominal threshold.
    pub alarm_step: Option<usize>,
    /// Share of scored steps (after burn-in) whose statistic exceeds the nominal threshold.
    pub share_above: f64,
    /// Share of late-window steps whose standardised log-loss excess is above [`SPIKE_Z`].
    pub late_spike_share: f64,
    /// The largest statistic on the raw loss (what the online monitor computes).
    pub raw_max: f64,
}

/// Checks every entry: finite, loss and gradient norm non-negative.
fn check_log(log: &[StepLog]) -> Result<()> {
    for e in log {
        for (what, v) in [
            ("loss", e.loss),
            ("gradient norm", e.grad_norm),
            ("learning rate", e.lr),
        ] {
            if !v.is_finite() {
                return Err(DynamicsError::NonFinite {
                    step: e.step,
                    what,
                    value: f64::from(v),
                });
            }
        }
        if e.loss < 0.0 || e.grad_norm < 0.0 {
            return Err(DynamicsError::InvalidLog(format!(
                "step {}: negative loss {} or gradient norm {}",
                e.step, e.loss, e.grad_norm
            )));
        }
    }
    Ok(())
}

/// `ln(max(x, LOSS_FLOOR))` as the monitor reads it.
fn log_scale(x: f32) -> f32 {
    f64::from(x).max(LOSS_FLOOR).ln() as f32
}

/// The offline statistic of `log` (see the module docs).
///
/// # Errors
/// Invalid parameters, a log shorter than [`LossCusumParams::min_steps`], a non-finite or
/// negative entry.
pub fn log_stats(params: &LossCusumParams, log: &[StepLog]) -> Result<LogStats> {
    params.check()?;
    if log.len() < params.min_steps() {
        return Err(DynamicsError::InvalidLog(format!(
            "{} steps, needs at least {} (twice the burn-in of {})",
            log.len(),
            params.min_steps(),
            params.monitor.burn_in
        )));
    }
    check_log(log)?;
    let scaled: Vec<StepLog> = log
        .iter()
        .map(|e| StepLog {
            loss: log_scale(e.loss),
            grad_norm: log_scale(e.grad_norm),
            ..*e
        })
        .collect();
    let monitor = CusumMonitor::replay(params.monitor.clone(), params.threshold, &scaled)?;
    let raw = CusumMonitor::replay(params.monitor.clone(), f64::INFINITY, log)?;
    let n = log.len();
    let burn_in = params.monitor.burn_in.min(n);
    let late_len = ((n as f64 * params.late_fraction).round() as usize).clamp(1, n - burn_in);
    let late_start = n - late_len;
    let trace = monitor.trace();
    let mean = |points: &[crate::MonitorPoint]| {
        if points.is_empty() {
            0.0
        } else {
            points.iter().map(|p| p.score).sum::<f64>() / points.len() as f64
        }
    };
    let scored = &trace[burn_in..];
    let late = &trace[late_start..];
    let (mut max, mut max_step) = (0.0, scored[0].step);
    for p in scored {
        if p.score > max {
            (max, max_step) = (p.score, p.step);
        }
    }
    let above = scored.iter().filter(|p| p.score > params.threshold).count();
    let spikes = late.iter().filter(|p| p.loss_z > SPIKE_Z).count();
    Ok(LogStats {
        steps: n,
        late_mean: mean(late),
        early_mean: mean(&trace[burn_in..late_start]),
        max,
        max_step,
        alarm_step: monitor.alarm(),
        share_above: above as f64 / scored.len() as f64,
        late_spike_share: spikes as f64 / late.len() as f64,
        raw_max: raw.max_score(),
    })
}

fn into_detect(e: DynamicsError) -> DetectError {
    match e {
        DynamicsError::InvalidParam { name, reason, .. } => DetectError::InvalidParam {
            detector: NAME.into(),
            param: name,
            reason: reason.into(),
        },
        DynamicsError::NonFinite { .. } => DetectError::InvalidInputs {
            detector: NAME.into(),
            reason: format!("training log: {e}"),
        },
        other => DetectError::InvalidInputs {
            detector: NAME.into(),
            reason: other.to_string(),
        },
    }
}

/// The offline training-dynamics detector (see the module docs). Needs no fitting.
#[derive(Debug, Clone)]
pub struct LossCusumDetector {
    params: LossCusumParams,
}

impl LossCusumDetector {
    /// # Errors
    /// [`DetectError::InvalidParam`] for invalid parameters.
    pub fn new(params: LossCusumParams) -> mesa_detect::Result<Self> {
        params.check().map_err(into_detect)?;
        Ok(Self { params })
    }

    /// The verdict on a training log: the late mean as the score, the rest as evidence.
    ///
    /// # Errors
    /// [`DetectError::InvalidInputs`] for a log [`log_stats`] refuses.
    pub fn verdict(&self, log: &[StepLog]) -> mesa_detect::Result<Verdict> {
        let s = log_stats(&self.params, log).map_err(into_detect)?;
        let mut evidence = Evidence::metrics([
            ("late_cusum_mean", s.late_mean),
            ("early_cusum_mean", s.early_mean),
            ("cusum_max", s.max),
            ("cusum_max_step", s.max_step as f64),
            ("share_above_threshold", s.share_above),
            ("late_spike_share", s.late_spike_share),
            ("raw_loss_cusum_max", s.raw_max),
            ("threshold", self.params.threshold),
            ("steps", s.steps as f64),
        ]);
        match s.alarm_step {
            Some(step) => {
                evidence.metrics.insert("alarm_step".into(), step as f64);
            }
            None => evidence.notes.push(format!(
                "the statistic never exceeds the nominal threshold {}",
                self.params.threshold
            )),
        }
        evidence.notes.push(
            "reads the training log only: a backdoor trained in from step 0 has no onset to \
             find, and a log whose late loss follows its own trend scores 0 whatever the \
             model learnt"
                .into(),
        );
        Ok(Verdict::new(s.late_mean, evidence))
    }
}

impl ModelDetector for LossCusumDetector {
    fn name(&self) -> String {
        NAME.into()
    }

    fn needs(&self) -> Needs {
        NEEDS
    }

    fn fit(
        &self,
        _context: &AuditContext<'_>,
    ) -> mesa_detect::Result<Box<dyn FittedModelDetector>> {
        Ok(Box::new(self.clone()))
    }
}

impl FittedModelDetector for LossCusumDetector {
    fn name(&self) -> String {
        NAME.into()
    }

    fn audit(
        &self,
        _model: &Transformer,
        context: &AuditContext<'_>,
    ) -> mesa_detect::Result<Verdict> {
        self.verdict(context.training_log(NAME)?)
    }
}

/// Registers `loss-cusum` (model level) with its default parameters.
///
/// # Errors
/// [`DetectError::DuplicateName`] if the name is taken.
pub fn register(registry: &mut Registry) -> mesa_detect::Result<()> {
    registry.register_model(NAME, INFO, |_: &DetectorSpec| {
        Ok(Box::new(
            LossCusumDetector::new(LossCusumParams::default())?,
        ))
    })
}
