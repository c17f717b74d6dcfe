//! `mesa-activation`: activation-anomaly detectors, after spectral signatures (Tran, Li and
//! Madry 2018), activation clustering (Chen et al. 2018) and the Mahalanobis distance to
//! clean activations (Lee et al. 2018).
//!
//! - [`stats`]: the statistics on an activation matrix, no model in view: [`Spectral`] (squared
//!   projection on the top singular vector of the centred fit set), [`Clustering`] (2-means on
//!   the top principal components; the small cluster, its relative size and silhouette; a
//!   hand-written seeded k-means++) and [`Mahalanobis`] (a shrunk Gaussian of the fit set).
//! - Input level ([`ActivationDetector`], registered as `spectral`, `act-cluster`,
//!   `mahalanobis`): read activations at any hook (last token by default), fit the statistic on
//!   the **unlabelled** fit set (which may hold a few triggered inputs, as real data would), and
//!   score inputs, higher = more anomalous.
//! - Model level ([`ActivationAudit`], registered as `spectral-audit`, `act-cluster-audit`,
//!   `mahalanobis-audit`): insert one random token at a random place into each held-out generic
//!   prompt, whiten the activations by those of the other generic prompts, and ask whether they
//!   hold a small, tight, far cluster (dominance of the top direction; silhouette of a small
//!   2-means cluster; heavy tail of Mahalanobis distances). The evidence names the inserted
//!   tokens over-represented in the anomalous tail, decoded with the vocabulary.
//!
//! ```
//! use mesa_activation::stats::Spectral;
//! use ndarray::Array2;
//!
//! // 100 rows near 0 and 5 rows far along the first axis.
//! let x = Array2::from_shape_fn((105, 4), |(i, j)| {
//!     let noise = ((i * 7 + j * 3) % 11) as f64 / 11.0 - 0.5;
//!     noise + if i >= 100 && j == 0 { 10.0 } else { 0.0 }
//! });
//! let spectral = Spectral::fit(&x, 0)?;
//! let scores = spectral.scores(&x)?;
//! assert!(scores[102] > scores[10]);
//! # Ok::<(), mesa_activation::ActivationError>(())
//! ```
//!
//! The detectors know no organism: they see a model through `mesa-nn` (activations read with
//! `mesa_probe::activations`) and inputs as token ids.

pub mod detector;
pub mod error;
pub mod stats;

pub use detector::{
    insert_random_tokens, register, whiten, ActivationAudit, ActivationDetector, ActivationParams,
    Fitted, FittedActivation, Statistic, AUDIT_NEEDS,
};
pub use error::{ActivationError, Result};
pub use stats::{two_means, Clustering, Mahalanobis, Spectral, TwoMeans};
