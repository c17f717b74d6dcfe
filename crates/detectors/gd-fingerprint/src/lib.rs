//! `mesa-gdfp`: the gradient-descent fingerprint. Does a model, given a regression task in its
//! context, behave and represent like gradient descent on that context?
//!
//! Reproduces the comparisons of von Oswald et al. (2023, "Transformers learn in-context by
//! gradient descent") and Akyurek et al. (2023), as a model-level detector of in-context
//! optimization. Against a reference learner's weight vector per task (one-step GD with a
//! line-searched learning rate, computed by the caller) it measures, on fresh tasks:
//!
//! - `pred_diff`: `E[(y_hat - y_ref)^2] / E[y_q^2]`, the prediction difference against the
//!   task's scale;
//! - `sens_cos`: mean cosine between `d y_hat / d x_q` of the model (dfdx gradients through the
//!   model) and of the reference (its weight vector);
//! - `ilwd`: the implied-weights difference, `E||w_model - w_ref||^2 / E||w_ref||^2`, with
//!   `w_model` fitted to the model's predictions on probe queries;
//! - `probe_r2_xty`: held-out R^2 of a ridge probe from the query-position residual stream to
//!   `X^T y / N` (the one-step-GD weight vector up to its scalar learning rate, so one probe
//!   serves both), beside the same probe on a random-init baseline model.
//!
//! The model-level [`Fingerprint::score`] is the mean of four agreements in `[0, 1]`:
//! `max(0, sens_cos)`, `clamp(1 - ilwd)`, `clamp(1 - pred_diff / ref_scale)` (the share of the
//! reference's prediction power the model reproduces), and `max(0, probe_r2 - baseline_r2)`.
//! Why this form: each part is 1 for a model that is exactly the reference and about 0 for one
//! that ignores the context; the probe enters only as its excess over an untrained model of the
//! same architecture, because a random network's activations already carry linear functions of
//! its input (Deutch et al. 2023 warn that GD-similarity metrics look high on untrained models).
//!
//! ```no_run
//! # use mesa_gdfp::{GdFingerprintParams, RegressionTasks};
//! # fn run(model: &mesa_nn::Transformer, baseline: &mesa_nn::Transformer,
//! #        fit: &RegressionTasks, eval: &RegressionTasks, w_gd1: &ndarray::Array2<f64>)
//! #        -> mesa_gdfp::Result<()> {
//! let detector = GdFingerprintParams::default().probe_queries(32).check()?;
//! let fp = detector.measure(model, baseline, fit, eval, w_gd1)?;
//! println!("sensitivity cosine to GD: {:.3}, score {:.3}", fp.sens_cos, fp.score);
//! # Ok(()) }
//! ```
//!
//! [`GdFingerprintDetector`] is the same measurement as a `mesa-detect` model-level detector
//! ([`register`]): it reads the tasks from the audit context's generic prompts (with their
//! targets), line-searches one-step GD on the fit prompts itself, and takes the probe's
//! untrained baseline from the context's clean references.
//!
//! The detector knows no organism: it sees a model through `mesa-nn` and tasks as arrays.
pub mod detector;
pub mod error;
pub mod metrics;
pub mod tasks;

pub use detector::{register, FittedGdFingerprint, GdFingerprintDetector};
pub use error::{GdfpError, Result};
pub use tasks::RegressionTasks;

use mesa_nn::Transformer;
use ndarray::Array2;
use rand::rngs::StdRng;
use rand::SeedableRng;

/// Hyper-parameters of the fingerprint, validated by [`GdFingerprintParams::check`].
#[derive(Clone, Debug, PartialEq)]
pub struct GdFingerprintParams {
    probe_queries: usize,
    lambdas: Vec<f64>,
    validation_fraction: f64,
    seed: u64,
}

impl Default for GdFingerprintParams {
    fn default() -> Self {
        Self {
            probe_queries: 32,
            lambdas: vec![1e-4, 1e-3, 1e-2, 1e-1, 1.0],
            validation_fraction: 0.25,
            seed: 0,
        }
    }
}

impl GdFingerprintParams {
    /// Fresh queries per task for the implied-weights fit (at least `d + 2`).
    pub fn probe_queries(mut self, n: usize) -> Self {
        self.probe_queries = n;
        self
    }
    /// Ridge penalties (relative to the mean feature variance) tried for the probe.
    pub fn lambdas(mut self, l: Vec<f64>) -> Self {
        self.lambdas = l;
        self
    }
    /// Share of the fit tasks held out to pick the probe's penalty.
    pub fn validation_fraction(mut self, f: f64) -> Self {
        self.validation_fraction = f;
        self
    }
    /// Seeds the probe queries.
    pub fn seed(mut self, s: u64) -> Self {
        self.seed = s;
        self
    }

    pub fn check(self) -> Result<GdFingerprint> {
        let bad = |field, reason: &str| {
            Err(GdfpError::InvalidParams {
                field,
                reason: reason.into(),
            })
        };
        if self.probe_queries < 2 {
            return bad("probe_queries", "must be at least d + 2");
        }
        if self.lambdas.is_empty() || self.lambdas.iter().any(|l| !(l.is_finite() && *l > 0.0)) {
            return bad("lambdas", "must be a non-empty list of positive numbers");
        }
        if !(self.validation_fraction > 0.0 && self.validation_fraction < 1.0) {
            return bad("validation_fraction", "must be in (0, 1)");
        }
        Ok(GdFingerprint { params: self })
    }
}

/// A validated fingerprint detector.
#[derive(Clone, Debug)]
pub struct GdFingerprint {
    params: GdFingerprintParams,
}

/// One model's fingerprint against one reference learner.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Fingerprint {
    /// The model's own loss, `E[(y_hat - y_q)^2] / E[y_q^2]`.
    pub icl_loss: f64,
    pub pred_diff: f64,
    pub sens_cos: f64,
    pub ilwd: f64,
    pub probe_r2_xty: f64,
    /// The same probe on the random-init baseline model.
    pub probe_r2_xty_baseline: f64,
    pub score: f64,
}

impl GdFingerprint {
    /// Measures `model` on `eval` tasks against the reference weights `w_ref [T_eval, d]`;
    /// `fit` tasks train the probes (on `model` and on `baseline`, an untrained model of the
    /// same architecture), whose R^2 is reported on `eval`.
    pub fn measure(
        &self,
        model: &Transformer,
        baseline: &Transformer,
        fit: &RegressionTasks,
        eval: &RegressionTasks,
        w_ref: &Array2<f64>,
    ) -> Result<Fingerprint> {
        let d = eval.dim();
        if w_ref.dim() != (eval.len(), d) || fit.dim() != d {
            return Err(GdfpError::InvalidTasks(format!(
                "reference weights {:?} and fit tasks of dimension {} do not match {} eval tasks of dimension {d}",
                w_ref.dim(),
                fit.dim(),
                eval.len()
            )));
        }
        if self.params.probe_queries < d + 2 {
            return Err(GdfpError::InvalidParams {
                field: "probe_queries",
                reason: format!(
                    "{} queries cannot fit {} weights",
                    self.params.probe_queries,
                    d + 1
                ),
            });
        }
        let y_hat = metrics::predictions(model, eval)?;
        let y_ref = (w_ref * &eval.x_q).sum_axis(ndarray::Axis(1));
        let icl_loss = metrics::prediction_diff(&y_hat, &eval.y_q, &eval.y_q);
        let pred_diff = metrics::prediction_diff(&y_hat, &y_ref, &eval.y_q);
        let ref_scale =
            metrics::prediction_diff(&y_ref, &ndarray::Array1::zeros(eval.len()), &eval.y_q);
        let sens_cos = metrics::mean_cosine(&metrics::sensitivities(model, eval)?, w_ref);
        let mut rng = StdRng::seed_from_u64(self.params.seed);
        let implied = metrics::implied_weights(model, eval, self.params.probe_queries, &mut rng)?;
        let ilwd = metrics::ilwd(&implied, w_ref);
        let probe_r2 = |m: &Transformer| -> Result<f64> {
            let probe = metrics::fit_probe_validated(
                &metrics::query_features(m, fit)?,
                &fit.xty(),
                &self.params.lambdas,
                self.params.validation_fraction,
            )?;
            Ok(probe.r2(&metrics::query_features(m, eval)?, &eval.xty()))
        };
        let probe_r2_xty = probe_r2(model)?;
        let probe_r2_xty_baseline = probe_r2(baseline)?;
        let unit = |v: f64| v.clamp(0.0, 1.0);
        let score = (unit(sens_cos)
            + unit(1.0 - ilwd)
            + unit(1.0 - pred_diff / ref_scale.max(f64::MIN_POSITIVE))
            + unit(probe_r2_xty - probe_r2_xty_baseline))
            / 4.0;
        let fp = Fingerprint {
            icl_loss,
            pred_diff,
            sens_cos,
            ilwd,
            probe_r2_xty,
            probe_r2_xty_baseline,
            score,
        };
        let named = [
            ("icl_loss", fp.icl_loss),
            ("pred_diff", fp.pred_diff),
            ("sens_cos", fp.sens_cos),
            ("ilwd", fp.ilwd),
            ("probe_r2_xty", fp.probe_r2_xty),
            ("probe_r2_xty_baseline", fp.probe_r2_xty_baseline),
            ("score", fp.score),
        ];
        if let Some((name, _)) = named.iter().find(|(_, v)| !v.is_finite()) {
            return Err(GdfpError::NonFinite(name));
        }
        Ok(fp)
    }
}
