//! The audit verdict: the Rust analog of the source framework's
//! `MesaOptimizerDetector(...).analyze(batch) -> risk, confidence`, but learned and judged
//! against ground truth instead of hand-weighted.
//!
//! * [`RiskModel`] stacks the scores of several model-level detectors (any family) with an
//!   L2-regularised logistic regression fitted on **training-split models only**, so its output
//!   is a probability calibrated on the zoo; refits on bootstrap resamples of the training
//!   models give an interval; each detector flags on its own threshold (a quantile of its
//!   scores on training negatives), and the [`Verdict`] says which families agree.
//! * A detector that errors is reported as missing, imputed at the training mean (it moves the
//!   risk neither way), and never counted as "clear"; when all of them fail there is no
//!   verdict ([`AuditError::AllFailed`]).
//! * [`judge`] scores a fitted risk model on held-out models: AUROC with a DeLong CI, TPR at 1%
//!   FPR with the threshold from a benign control set, cross-entropy with a bootstrap CI
//!   (TrojAI's metric), Brier and ECE, and DeLong's test against the best single detector.
//!
//! ```
//! use mesa_audit::{DetectorColumn, ModelScores, Outcome, RiskModel, RiskParams};
//!
//! let columns = vec![DetectorColumn { name: "noise".into(), family: "causal".into() }];
//! let model = |s: f64| ModelScores::from([("noise".to_string(), Outcome::Score(s))]);
//! let train: Vec<ModelScores> = [0.1, 0.2, 0.3, 0.8, 0.9, 1.0].map(model).to_vec();
//! let labels = [false, false, false, true, true, true];
//! let risk = RiskModel::fit(&columns, &train, &labels, &RiskParams::default())?;
//! let verdict = risk.verdict(&model(0.95))?;
//! assert!(verdict.risk > 0.5 && verdict.lo <= verdict.risk && verdict.risk <= verdict.hi);
//! # Ok::<(), mesa_audit::AuditError>(())
//! ```

pub mod error;
pub mod judge;
pub mod logistic;
pub mod risk;

pub use error::{AuditError, Result};
pub use judge::{judge, Judgement};
pub use logistic::Logistic;
pub use risk::{
    DetectorColumn, DetectorLine, ModelScores, Outcome, RiskModel, RiskParams, Verdict,
};
