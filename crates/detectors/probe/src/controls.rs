//! Controls a probe's number is read against: random unit directions scored on the same
//! activations, and a null distribution of probes fitted on shuffled labels.
//!
//! Sign. An AUROC `a` below 0.5 separates the classes as well as `1 - a` does, with the
//! opposite orientation. A probe whose orientation is fixed by its fit (a supervised probe, or a
//! contrast probe oriented by its pairs) claims "higher = positive", so its signed AUROC is read
//! against the signed p95 of a control. A probe whose sign is not identifiable (an unsupervised
//! principal component) is read as [`sign_free`]`(a) = max(a, 1 - a)` against the sign-free
//! p95, since a random direction gets the same freedom of sign.

use ndarray::{Array1, Array2};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_distr::{Distribution, StandardNormal};

use crate::error::{ProbeError, Result};
use crate::linear::LinearProbe;

/// `max(a, 1 - a)`: the AUROC of whichever orientation of a score separates better.
pub fn sign_free(auroc: f64) -> f64 {
    auroc.max(1.0 - auroc)
}

/// Mean, 95th percentile (nearest rank) and maximum of a sample of AUROCs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NullSummary {
    pub mean: f64,
    pub p95: f64,
    pub max: f64,
}

impl NullSummary {
    /// Summarises `values`.
    ///
    /// # Errors
    /// [`ProbeError::InvalidData`] if `values` is empty or holds a NaN.
    pub fn of(values: &[f64]) -> Result<Self> {
        if values.is_empty() {
            return Err(ProbeError::InvalidData(
                "cannot summarise an empty sample".into(),
            ));
        }
        if values.iter().any(|v| v.is_nan()) {
            return Err(ProbeError::InvalidData("a NaN in the sample".into()));
        }
        let n = values.len();
        let mut sorted = values.to_vec();
        sorted.sort_by(f64::total_cmp);
        let rank = ((0.95 * n as f64).ceil() as usize).clamp(1, n);
        Ok(Self {
            mean: values.iter().sum::<f64>() / n as f64,
            p95: sorted[rank - 1],
            max: sorted[n - 1],
        })
    }
}

/// AUROCs of random unit directions on one labelled activation set.
#[derive(Debug, Clone, PartialEq)]
pub struct RandomBaseline {
    /// One AUROC per direction, in draw order.
    pub aurocs: Vec<f64>,
    /// The 95th percentile of `aurocs` (nearest rank): a probe below it is no better than
    /// a random direction picked with a little luck.
    pub p95: f64,
    /// The best of `aurocs`: what picking a direction on the test set would report.
    pub best: f64,
    /// The 95th percentile of [`sign_free`] of each AUROC: the bar for a probe whose sign is
    /// not identifiable.
    pub p95_sign_free: f64,
    /// The best sign-free AUROC (equal to `max(best, 1 - worst)`).
    pub best_sign_free: f64,
}

/// Scores `x` (`[n, d]`) along `n_directions` random unit directions (isotropic Gaussian,
/// normalised; seeded) and summarises their AUROCs against `labels`, signed and sign-free.
///
/// # Errors
/// Zero directions, mismatched lengths, or a set without both classes.
pub fn random_direction_baseline(
    x: &Array2<f64>,
    labels: &[bool],
    n_directions: usize,
    seed: u64,
) -> Result<RandomBaseline> {
    if n_directions == 0 {
        return Err(ProbeError::InvalidParam {
            param: "n_directions",
            reason: "must be at least 1".into(),
        });
    }
    let mut rng = StdRng::seed_from_u64(seed);
    let d = x.ncols();
    let directions: Array2<f64> =
        Array2::from_shape_fn((d, n_directions), |_| StandardNormal.sample(&mut rng));
    let norms = directions
        .columns()
        .into_iter()
        .map(|c| c.dot(&c).sqrt())
        .collect::<Array1<f64>>();
    let projections = x.dot(&(directions / &norms));
    let mut aurocs = Vec::with_capacity(n_directions);
    for column in projections.columns() {
        aurocs.push(mesa_eval::auroc(&column.to_vec(), labels)?);
    }
    let signed = NullSummary::of(&aurocs)?;
    let unsigned = NullSummary::of(&aurocs.iter().map(|&a| sign_free(a)).collect::<Vec<_>>())?;
    Ok(RandomBaseline {
        p95: signed.p95,
        best: signed.max,
        p95_sign_free: unsigned.p95,
        best_sign_free: unsigned.max,
        aurocs,
    })
}

/// `labels` in a seeded random order: fitting on these must give a chance-level probe.
pub fn shuffled_labels(labels: &[bool], seed: u64) -> Vec<bool> {
    let mut shuffled = labels.to_vec();
    shuffled.shuffle(&mut StdRng::seed_from_u64(seed));
    shuffled
}

/// Test AUROCs of one probe method fitted on many label permutations.
#[derive(Debug, Clone, PartialEq)]
pub struct ShuffledNull {
    /// The held-out AUROC (against the true test labels) of each permutation's probe, in
    /// permutation order.
    pub aurocs: Vec<f64>,
    /// Summary of `aurocs`: the bar for a probe whose sign its fit fixes.
    pub signed: NullSummary,
    /// Summary of [`sign_free`] of each AUROC. A probe fitted on shuffled labels is oriented
    /// towards labels that mean nothing, so its sign with respect to the true labels is a coin
    /// flip: `aurocs` is symmetric about its centre, and this is the null of `|AUROC - 0.5|`.
    pub sign_free: NullSummary,
}

impl ShuffledNull {
    /// The null of these held-out AUROCs (one per permutation, in permutation order).
    ///
    /// # Errors
    /// As [`NullSummary::of`] (no AUROC, or a non-finite one).
    pub fn from_aurocs(aurocs: Vec<f64>) -> Result<Self> {
        let signed = NullSummary::of(&aurocs)?;
        let sign_free = NullSummary::of(&aurocs.iter().map(|&a| sign_free(a)).collect::<Vec<_>>())?;
        Ok(Self {
            aurocs,
            signed,
            sign_free,
        })
    }
}

/// Fits a probe with `fit` on `x_train` under each of `k` permutations of `train_labels`
/// (permutation `i` is [`shuffled_labels`] with seed `seed + i`), and scores each on `x_test`
/// against the true `test_labels`.
///
/// # Errors
/// `k == 0`, a failed fit, or an AUROC that cannot be computed (mismatched lengths, one class).
pub fn shuffled_label_null<F>(
    x_train: &Array2<f64>,
    train_labels: &[bool],
    x_test: &Array2<f64>,
    test_labels: &[bool],
    k: usize,
    seed: u64,
    mut fit: F,
) -> Result<ShuffledNull>
where
    F: FnMut(&Array2<f64>, Array1<bool>) -> Result<LinearProbe>,
{
    if k == 0 {
        return Err(ProbeError::InvalidParam {
            param: "k",
            reason: "at least one permutation".into(),
        });
    }
    if x_train.nrows() != train_labels.len() {
        return Err(ProbeError::InvalidData(format!(
            "{} training rows, {} labels",
            x_train.nrows(),
            train_labels.len()
        )));
    }
    let mut aurocs = Vec::with_capacity(k);
    for i in 0..k {
        let labels = shuffled_labels(train_labels, seed.wrapping_add(i as u64));
        let probe = fit(x_train, Array1::from(labels))?;
        let scores = probe.scores(x_test)?;
        aurocs.push(mesa_eval::auroc(&scores.to_vec(), test_labels)?);
    }
    ShuffledNull::from_aurocs(aurocs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_uses_nearest_rank() {
        let values: Vec<f64> = (1..=20).map(f64::from).collect();
        let s = NullSummary::of(&values).expect("summary");
        assert_eq!(s.p95, 19.0);
        assert_eq!(s.max, 20.0);
        assert!((s.mean - 10.5).abs() < 1e-12);
        assert!(NullSummary::of(&[]).is_err());
        assert!(NullSummary::of(&[0.5, f64::NAN]).is_err());
    }

    #[test]
    fn sign_free_folds_about_one_half() {
        assert_eq!(sign_free(0.2), 0.8);
        assert_eq!(sign_free(0.8), 0.8);
        assert_eq!(sign_free(0.5), 0.5);
    }
}
