//! Metrics a reviewer trusts for detectors of backdoored or deceptive models: AUROC with a 95%
//! confidence interval (stratified or cluster bootstrap, DeLong), DeLong's test between two
//! detectors, ROC curves, average precision, TPR at a fixed FPR with the threshold set on a
//! separate benign control set, and calibration (Brier score, ECE).
//!
//! Two optional features add the only file IO of the crate: `tables` ([`table`]: rows -> Polars
//! DataFrame -> Parquet + CSV + JSON sidecar with seed, config and git revision) and `plots`
//! ([`plot`]: ROC curves, a metric by layer with its CI band, score histograms, as PNG + SVG).
//! Both write all or nothing. Detector crates that need only metrics leave them off and do not
//! build Polars.
//!
//! The crate knows only scores and labels. `labels[i] == true` marks a positive (the input or
//! model the detector should flag) and a higher score means "more likely positive". Every
//! function checks its input and returns an [`EvalError`] rather than a NaN: one class empty,
//! a non-finite score, mismatched lengths, a probability outside [0, 1], a rate outside (0, 1).
//! The ranking metrics agree with scikit-learn (`roc_auc_score`, `roc_curve`,
//! `average_precision_score`), ties included; the tests pin reference values it printed.
//!
//! ```
//! use mesa_eval::{auroc, auroc_bootstrap, auroc_delong, tpr_at_fpr, BootstrapParams};
//!
//! let scores = [0.9, 0.8, 0.35, 0.7, 0.4, 0.3, 0.2, 0.1];
//! let labels = [true, true, true, true, false, false, false, false];
//! // 15 of the 16 (positive, negative) pairs are ordered correctly.
//! assert_eq!(auroc(&scores, &labels)?, 15.0 / 16.0);
//!
//! let boot = auroc_bootstrap(&scores, &labels, &BootstrapParams::new(42))?;
//! assert!(boot.lo <= boot.auroc && boot.auroc <= boot.hi);
//! let delong = auroc_delong(&scores, &labels, 0.95)?;
//! println!("{boot}\n{delong}");
//!
//! // The threshold comes from benign control scores, never from the negatives above.
//! let control: Vec<f64> = (0..200).map(|i| f64::from(i) / 400.0).collect();
//! let at_1pct = tpr_at_fpr(&control, &scores, &labels, 0.01)?;
//! println!("TPR {} at FPR {} (control {})", at_1pct.tpr, at_1pct.fpr, at_1pct.control_fpr);
//! # Ok::<(), mesa_eval::EvalError>(())
//! ```

pub mod auroc;
pub mod calibration;
pub mod ci;
pub mod correlation;
pub mod error;
pub mod threshold;

#[cfg(feature = "plots")]
pub mod plot;
#[cfg(feature = "tables")]
pub mod table;

mod input;
#[cfg(feature = "tables")]
mod row;
#[cfg(any(feature = "tables", feature = "plots"))]
pub mod staged;

pub use auroc::{auroc, average_precision, roc_curve, RocCurve};
pub use calibration::{
    brier_score, expected_calibration_error, log_loss, reliability_bins, CalibrationBin,
};
pub use ci::{
    auroc_bootstrap, auroc_cluster_bootstrap, auroc_delong, bootstrap_ci, delong_test,
    delong_variance, wilson_interval, AurocReport, BootstrapParams, CiMethod, DeLongTest, Interval,
};
pub use correlation::{spearman, spearman_permutation_test, SpearmanTest};
#[cfg(any(feature = "tables", feature = "plots"))]
pub use error::WriteError;
pub use error::{Class, EvalError, Result};
#[cfg(any(feature = "tables", feature = "plots"))]
pub use staged::StagedDir;
pub use threshold::{threshold_at_fpr, tpr_at_fpr, TprAtFpr};
