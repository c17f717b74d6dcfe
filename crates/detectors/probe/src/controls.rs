//! Controls a probe's number is read against: random unit directions scored on the same
//! activations, and labels shuffled before fitting.

use ndarray::{Array1, Array2};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_distr::{Distribution, StandardNormal};

use crate::error::{ProbeError, Result};

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
}

/// Scores `x` (`[n, d]`) along `n_directions` random unit directions (isotropic Gaussian,
/// normalised; seeded) and summarises their AUROCs against `labels`.
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
    let mut sorted = aurocs.clone();
    sorted.sort_by(f64::total_cmp);
    let rank = ((0.95 * n_directions as f64).ceil() as usize).clamp(1, n_directions);
    Ok(RandomBaseline {
        p95: sorted[rank - 1],
        best: sorted[n_directions - 1],
        aurocs,
    })
}

/// `labels` in a seeded random order: fitting on these must give a chance-level probe.
pub fn shuffled_labels(labels: &[bool], seed: u64) -> Vec<bool> {
    let mut shuffled = labels.to_vec();
    shuffled.shuffle(&mut StdRng::seed_from_u64(seed));
    shuffled
}
