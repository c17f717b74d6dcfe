//! Confidence intervals for AUROC (stratified bootstrap, cluster bootstrap, DeLong) and DeLong's
//! test comparing two detectors scored on the same inputs.
//!
//! Which interval to report: DeLong is fast and deterministic but rests on a normal
//! approximation that is poor near AUROC = 1 with few examples (its interval collapses to a
//! point at perfect separation). The bootstrap makes no such assumption. When several inputs
//! share a prompt (a cluster), they are not independent, and only the cluster bootstrap gives
//! an honest interval.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use statrs::distribution::{ContinuousCDF, Normal};

use crate::auroc::auroc_unchecked;
use crate::error::{Class, EvalError, Result};
use crate::input::{check_binary, check_confidence, check_same_len, midranks};

/// Settings of a bootstrap. Build with [`BootstrapParams::new`] or struct update syntax over
/// [`Default`]; every function that takes one validates it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BootstrapParams {
    /// Number of resamples; the default 2000 keeps the Monte-Carlo error of a 95% percentile
    /// bound well below the width of a typical interval.
    pub n_resamples: usize,
    /// Seed of the resampling generator (`StdRng`): same seed and `rand` version, same interval.
    pub seed: u64,
    /// Confidence level of the interval, strictly between 0 and 1.
    pub confidence: f64,
}

impl Default for BootstrapParams {
    fn default() -> Self {
        Self {
            n_resamples: 2000,
            seed: 0,
            confidence: 0.95,
        }
    }
}

impl BootstrapParams {
    /// A 95% interval from 2000 resamples drawn with `seed`.
    pub fn new(seed: u64) -> Self {
        Self {
            seed,
            ..Self::default()
        }
    }

    fn check(&self) -> Result<()> {
        if self.n_resamples == 0 {
            return Err(EvalError::ZeroCount {
                name: "n_resamples",
                value: 0,
            });
        }
        check_confidence(self.confidence)
    }
}

/// How an [`AurocReport`]'s interval was obtained, so the report can say so next to the number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CiMethod {
    /// Percentile interval of a bootstrap stratified by class.
    Bootstrap { n_resamples: usize, seed: u64 },
    /// Percentile interval of a bootstrap that resamples whole clusters.
    ClusterBootstrap {
        n_resamples: usize,
        seed: u64,
        n_clusters: usize,
    },
    /// Normal interval with DeLong's variance, clipped to [0, 1].
    DeLong,
}

impl fmt::Display for CiMethod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CiMethod::Bootstrap { n_resamples, seed } => {
                write!(
                    f,
                    "stratified bootstrap ({n_resamples} resamples, seed {seed})"
                )
            }
            CiMethod::ClusterBootstrap {
                n_resamples,
                seed,
                n_clusters,
            } => write!(
                f,
                "cluster bootstrap ({n_clusters} clusters, {n_resamples} resamples, seed {seed})"
            ),
            CiMethod::DeLong => f.write_str("DeLong"),
        }
    }
}

/// An AUROC with its confidence interval and the class sizes it rests on: everything the
/// design asks to report next to a detector's number.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AurocReport {
    pub auroc: f64,
    pub lo: f64,
    pub hi: f64,
    /// Confidence level of `[lo, hi]`, e.g. 0.95.
    pub confidence: f64,
    pub n_pos: usize,
    pub n_neg: usize,
    pub method: CiMethod,
}

impl fmt::Display for AurocReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "AUROC {:.3} [{:.3}, {:.3}] ({}% CI, {}; n_pos = {}, n_neg = {})",
            self.auroc,
            self.lo,
            self.hi,
            self.confidence * 100.0,
            self.method,
            self.n_pos,
            self.n_neg
        )
    }
}

/// A point estimate with a confidence interval, for any metric bootstrapped by [`bootstrap_ci`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Interval {
    /// The metric on the full data (not the bootstrap mean).
    pub estimate: f64,
    pub lo: f64,
    pub hi: f64,
}

/// Wilson score interval of a proportion (`successes` of `n`) at `confidence`: the interval for
/// an accuracy or a rate, well behaved at 0 and 1 where the normal approximation is not.
///
/// # Errors
/// [`EvalError::InvalidProportion`] with `n == 0` or `successes > n`;
/// [`EvalError::ConfidenceOutOfRange`] outside (0, 1).
pub fn wilson_interval(successes: usize, n: usize, confidence: f64) -> Result<Interval> {
    check_confidence(confidence)?;
    if n == 0 || successes > n {
        return Err(EvalError::InvalidProportion { successes, n });
    }
    let z = Normal::standard().inverse_cdf(0.5 + confidence / 2.0);
    let (k, n) = (successes as f64, n as f64);
    let p = k / n;
    let denom = 1.0 + z * z / n;
    let centre = (p + z * z / (2.0 * n)) / denom;
    let half = z * (p * (1.0 - p) / n + z * z / (4.0 * n * n)).sqrt() / denom;
    Ok(Interval {
        estimate: p,
        lo: (centre - half).max(0.0),
        hi: (centre + half).min(1.0),
    })
}

/// AUROC with a percentile interval from a bootstrap stratified by class: every resample
/// draws `n_pos` positives and `n_neg` negatives with replacement, so both classes are always
/// present and the class balance of the evaluation set is kept.
///
/// # Errors
/// Invalid input as for [`auroc`](crate::auroc()), or invalid `params`.
pub fn auroc_bootstrap(
    scores: &[f64],
    labels: &[bool],
    params: &BootstrapParams,
) -> Result<AurocReport> {
    let (n_pos, n_neg) = check_binary(scores, labels)?;
    let ci = bootstrap_ci(scores, labels, None, params, resample_auroc)?;
    Ok(AurocReport {
        auroc: ci.estimate,
        lo: ci.lo,
        hi: ci.hi,
        confidence: params.confidence,
        n_pos,
        n_neg,
        method: CiMethod::Bootstrap {
            n_resamples: params.n_resamples,
            seed: params.seed,
        },
    })
}

/// AUROC with a percentile interval from a bootstrap that resamples whole clusters
/// (`clusters[i]` is the cluster of example `i`, e.g. the prompt it was made from), because
/// examples that share a prompt are not independent evidence.
///
/// Stratification carries over to clusters: clusters are split into all-positive,
/// all-negative and mixed ones, and each group is resampled (with replacement) to its own
/// number of clusters. Every resample therefore holds both classes.
///
/// # Errors
/// Invalid input as for [`auroc`](crate::auroc()), `clusters` of the wrong length, or invalid `params`.
pub fn auroc_cluster_bootstrap(
    scores: &[f64],
    labels: &[bool],
    clusters: &[u64],
    params: &BootstrapParams,
) -> Result<AurocReport> {
    let (n_pos, n_neg) = check_binary(scores, labels)?;
    check_same_len("clusters", clusters.len(), "labels", labels.len())?;
    let ci = bootstrap_ci(scores, labels, Some(clusters), params, resample_auroc)?;
    let n_clusters = clusters.iter().collect::<BTreeSet<_>>().len();
    Ok(AurocReport {
        auroc: ci.estimate,
        lo: ci.lo,
        hi: ci.hi,
        confidence: params.confidence,
        n_pos,
        n_neg,
        method: CiMethod::ClusterBootstrap {
            n_resamples: params.n_resamples,
            seed: params.seed,
            n_clusters,
        },
    })
}

/// Percentile bootstrap interval of any metric of (scores, labels), stratified by class, and
/// by cluster when `clusters` is given (see [`auroc_cluster_bootstrap`] for the scheme).
///
/// The bounds are the `(1 - confidence) / 2` and `(1 + confidence) / 2` quantiles of the
/// resampled metric, with linear interpolation between order statistics (numpy's default
/// `np.quantile` rule).
///
/// # Errors
/// Invalid input as for [`auroc`](crate::auroc()), `clusters` of the wrong length, invalid `params`, any
/// error of `metric`, or a non-finite value returned by `metric`.
pub fn bootstrap_ci<F>(
    scores: &[f64],
    labels: &[bool],
    clusters: Option<&[u64]>,
    params: &BootstrapParams,
    mut metric: F,
) -> Result<Interval>
where
    F: FnMut(&[f64], &[bool]) -> Result<f64>,
{
    check_binary(scores, labels)?;
    params.check()?;
    let strata = match clusters {
        Some(ids) => {
            check_same_len("clusters", ids.len(), "labels", labels.len())?;
            cluster_strata(labels, ids)
        }
        None => singleton_strata(labels),
    };
    let estimate = finite(metric(scores, labels)?)?;

    let mut rng = StdRng::seed_from_u64(params.seed);
    let mut stats = Vec::with_capacity(params.n_resamples);
    let mut s = Vec::with_capacity(scores.len());
    let mut l = Vec::with_capacity(labels.len());
    for _ in 0..params.n_resamples {
        s.clear();
        l.clear();
        for stratum in &strata {
            for _ in 0..stratum.len() {
                let cluster = &stratum[rng.gen_range(0..stratum.len())];
                s.extend(cluster.iter().map(|&i| scores[i]));
                l.extend(cluster.iter().map(|&i| labels[i]));
            }
        }
        stats.push(finite(metric(&s, &l)?)?);
    }
    stats.sort_by(f64::total_cmp);
    let alpha = 1.0 - params.confidence;
    Ok(Interval {
        estimate,
        lo: quantile_sorted(&stats, alpha / 2.0),
        hi: quantile_sorted(&stats, 1.0 - alpha / 2.0),
    })
}

/// AUROC with a normal-approximation interval, `auroc +- z * sqrt(var)`, where `var` is
/// DeLong's variance ([`delong_variance`]). The interval is clipped to [0, 1].
///
/// # Errors
/// Invalid input as for [`auroc`](crate::auroc()), fewer than 2 examples in a class, or `confidence` outside
/// (0, 1).
pub fn auroc_delong(scores: &[f64], labels: &[bool], confidence: f64) -> Result<AurocReport> {
    check_confidence(confidence)?;
    let (n_pos, n_neg) = check_binary(scores, labels)?;
    let c = DeLongComponents::new(scores, labels)?;
    let se = c.variance().sqrt();
    let z = Normal::standard().inverse_cdf(0.5 + confidence / 2.0);
    Ok(AurocReport {
        auroc: c.auroc,
        lo: (c.auroc - z * se).max(0.0),
        hi: (c.auroc + z * se).min(1.0),
        confidence,
        n_pos,
        n_neg,
        method: CiMethod::DeLong,
    })
}

/// DeLong's estimate of the variance of the empirical AUROC (DeLong, DeLong & Clarke-Pearson
/// 1988), computed with the midrank algorithm of Sun & Xu (2014) in O(n log n):
/// `var = S10 / n_pos + S01 / n_neg`, where `S10` is the sample variance (n - 1 denominator)
/// over positives of the fraction of negatives each one outscores (ties one half), and `S01`
/// the same over negatives of the fraction of positives that outscore it.
///
/// # Errors
/// Invalid input as for [`auroc`](crate::auroc()), or fewer than 2 examples in a class.
pub fn delong_variance(scores: &[f64], labels: &[bool]) -> Result<f64> {
    check_binary(scores, labels)?;
    Ok(DeLongComponents::new(scores, labels)?.variance())
}

/// Outcome of [`delong_test`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DeLongTest {
    pub auroc_a: f64,
    pub auroc_b: f64,
    /// Standard error of `auroc_a - auroc_b`, accounting for the correlation between two
    /// detectors scored on the same inputs.
    pub se: f64,
    /// `(auroc_a - auroc_b) / se`.
    pub z: f64,
    /// Two-sided p-value of `z` under the standard normal.
    pub p_value: f64,
    pub n_pos: usize,
    pub n_neg: usize,
}

/// DeLong's test that two detectors scored on the same labelled inputs have equal AUROC.
///
/// When the difference has zero standard error and the AUROCs are equal (for instance a
/// detector compared with itself, or two perfect detectors), there is no evidence of a
/// difference: `z = 0` and `p_value = 1`.
///
/// # Errors
/// Invalid input as for [`auroc`](crate::auroc()) (for either score vector), lengths that differ, fewer than
/// 2 examples in a class, or [`EvalError::DegenerateTest`] when the AUROCs differ with zero
/// standard error.
pub fn delong_test(scores_a: &[f64], scores_b: &[f64], labels: &[bool]) -> Result<DeLongTest> {
    check_same_len("scores_a", scores_a.len(), "scores_b", scores_b.len())?;
    let (n_pos, n_neg) = check_binary(scores_a, labels)?;
    check_binary(scores_b, labels)?;
    let a = DeLongComponents::new(scores_a, labels)?;
    let b = DeLongComponents::new(scores_b, labels)?;
    let (m, n) = (n_pos as f64, n_neg as f64);
    let var = (covariance(&a.v10, &a.v10) + covariance(&b.v10, &b.v10)
        - 2.0 * covariance(&a.v10, &b.v10))
        / m
        + (covariance(&a.v01, &a.v01) + covariance(&b.v01, &b.v01)
            - 2.0 * covariance(&a.v01, &b.v01))
            / n;
    // Rounding can push a true zero slightly negative.
    let se = var.max(0.0).sqrt();
    let diff = a.auroc - b.auroc;
    let (z, p_value) = if se > 0.0 {
        let z = diff / se;
        (z, (2.0 * Normal::standard().sf(z.abs())).min(1.0))
    } else if diff == 0.0 {
        (0.0, 1.0)
    } else {
        return Err(EvalError::DegenerateTest {
            auroc_a: a.auroc,
            auroc_b: b.auroc,
        });
    };
    Ok(DeLongTest {
        auroc_a: a.auroc,
        auroc_b: b.auroc,
        se,
        z,
        p_value,
        n_pos,
        n_neg,
    })
}

/// The per-example placement values of DeLong's method.
struct DeLongComponents {
    /// For each positive: fraction of negatives it outscores, ties one half.
    v10: Vec<f64>,
    /// For each negative: fraction of positives that outscore it, ties one half.
    v01: Vec<f64>,
    auroc: f64,
}

impl DeLongComponents {
    /// Input must already have passed `check_binary`.
    fn new(scores: &[f64], labels: &[bool]) -> Result<Self> {
        let pos: Vec<f64> = select(scores, labels, true);
        let neg: Vec<f64> = select(scores, labels, false);
        let (m, n) = (pos.len(), neg.len());
        // A sample variance needs two observations per class.
        for (class, found) in [(Class::Positive, m), (Class::Negative, n)] {
            if found < 2 {
                return Err(EvalError::TooFewInClass {
                    class,
                    needed: 2,
                    found,
                });
            }
        }
        // Sun & Xu: a positive's rank among all scores minus its rank among positives is the
        // number of negatives below it (ties one half); likewise for negatives.
        let rank_pos = midranks(&pos);
        let rank_neg = midranks(&neg);
        let all: Vec<f64> = pos.iter().chain(&neg).copied().collect();
        let rank_all = midranks(&all);
        let v10: Vec<f64> = (0..m)
            .map(|i| (rank_all[i] - rank_pos[i]) / n as f64)
            .collect();
        let v01: Vec<f64> = (0..n)
            .map(|j| 1.0 - (rank_all[m + j] - rank_neg[j]) / m as f64)
            .collect();
        Ok(Self {
            auroc: v10.iter().sum::<f64>() / m as f64,
            v10,
            v01,
        })
    }

    fn variance(&self) -> f64 {
        covariance(&self.v10, &self.v10) / self.v10.len() as f64
            + covariance(&self.v01, &self.v01) / self.v01.len() as f64
    }
}

fn select(scores: &[f64], labels: &[bool], class: bool) -> Vec<f64> {
    scores
        .iter()
        .zip(labels)
        .filter(|(_, &l)| l == class)
        .map(|(&s, _)| s)
        .collect()
}

/// Sample covariance with the n - 1 denominator; callers guarantee `a.len() >= 2`.
fn covariance(a: &[f64], b: &[f64]) -> f64 {
    let n = a.len() as f64;
    let mean_a = a.iter().sum::<f64>() / n;
    let mean_b = b.iter().sum::<f64>() / n;
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - mean_a) * (y - mean_b))
        .sum::<f64>()
        / (n - 1.0)
}

/// AUROC of a stratified resample, which always holds both classes, so needs no checks.
fn resample_auroc(scores: &[f64], labels: &[bool]) -> Result<f64> {
    let n_pos = labels.iter().filter(|&&l| l).count();
    Ok(auroc_unchecked(scores, labels, n_pos, labels.len() - n_pos))
}

fn finite(value: f64) -> Result<f64> {
    if value.is_finite() {
        Ok(value)
    } else {
        Err(EvalError::NonFiniteMetric { value })
    }
}

/// A stratum is a list of clusters, a cluster a list of example indices; resampling draws
/// clusters within each stratum.
type Strata = Vec<Vec<Vec<usize>>>;

/// Plain stratified bootstrap: every example is its own cluster, strata are the two classes.
fn singleton_strata(labels: &[bool]) -> Strata {
    let (mut pos, mut neg) = (Vec::new(), Vec::new());
    for (i, &l) in labels.iter().enumerate() {
        if l {
            pos.push(vec![i]);
        } else {
            neg.push(vec![i]);
        }
    }
    vec![pos, neg]
}

/// Clusters grouped into all-positive, all-negative and mixed strata. A `BTreeMap` keeps the
/// cluster order (and so the resamples for a given seed) independent of hashing.
fn cluster_strata(labels: &[bool], ids: &[u64]) -> Strata {
    let mut members: BTreeMap<u64, Vec<usize>> = BTreeMap::new();
    for (i, &id) in ids.iter().enumerate() {
        members.entry(id).or_default().push(i);
    }
    let (mut pos, mut neg, mut mixed) = (Vec::new(), Vec::new(), Vec::new());
    for cluster in members.into_values() {
        let n_pos = cluster.iter().filter(|&&i| labels[i]).count();
        if n_pos == cluster.len() {
            pos.push(cluster);
        } else if n_pos == 0 {
            neg.push(cluster);
        } else {
            mixed.push(cluster);
        }
    }
    vec![pos, neg, mixed]
}

/// Quantile `q` of ascending, non-empty `sorted`, interpolating linearly between order
/// statistics (numpy's default "linear" method).
fn quantile_sorted(sorted: &[f64], q: f64) -> f64 {
    let h = (sorted.len() - 1) as f64 * q;
    let below = h.floor() as usize;
    let above = (below + 1).min(sorted.len() - 1);
    sorted[below] + (h - below as f64) * (sorted[above] - sorted[below])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wilson_interval_matches_hand_values_and_refuses_bad_counts() {
        // 8 of 10 at 95%: Wilson gives [0.4902, 0.9433] (z = 1.95996).
        let w = wilson_interval(8, 10, 0.95).expect("interval");
        assert!((w.estimate - 0.8).abs() < 1e-12);
        assert!((w.lo - 0.4902).abs() < 1e-4, "lo {}", w.lo);
        assert!((w.hi - 0.9433).abs() < 1e-4, "hi {}", w.hi);
        // At the edges the interval stays inside [0, 1] and is not a point.
        let all = wilson_interval(20, 20, 0.95).expect("interval");
        assert_eq!(all.hi, 1.0);
        assert!((all.lo - 0.8389).abs() < 1e-4, "lo {}", all.lo);
        assert!(wilson_interval(0, 0, 0.95).is_err());
        assert!(wilson_interval(3, 2, 0.95).is_err());
        assert!(wilson_interval(1, 2, 1.0).is_err());
    }
    use crate::auroc::auroc;

    fn assert_close(a: f64, b: f64, tol: f64) {
        assert!((a - b).abs() < tol, "{a} != {b}");
    }

    /// A seeded, noisy detector: positives score higher on average, with a few ties.
    fn noisy_scores(n: usize, seed: u64) -> (Vec<f64>, Vec<bool>) {
        let mut rng = StdRng::seed_from_u64(seed);
        let mut scores = Vec::with_capacity(n);
        let mut labels = Vec::with_capacity(n);
        for i in 0..n {
            let positive = i % 3 == 0;
            let shift = if positive { 0.8 } else { 0.0 };
            let raw: f64 = rng.gen_range(-1.0..1.0) + rng.gen_range(-1.0..1.0) + shift;
            // Rounding to one decimal makes ties common, as with quantised detector outputs.
            scores.push((raw * 10.0).round() / 10.0);
            labels.push(positive);
        }
        (scores, labels)
    }

    #[test]
    fn delong_variance_matches_hand_computation() {
        // Positives {0.9, 0.8, 0.4}, negatives {0.7, 0.3, 0.2}.
        // V10 (negatives outscored): 3/3, 3/3, 2/3 -> mean 8/9 = AUROC; deviations 1/9, 1/9,
        //   -2/9; S10 = (1 + 1 + 4) / 81 / 2 = 1/27.
        // V01 (positives above): 2/3, 3/3, 3/3 -> S10 by symmetry = 1/27.
        // var = S10 / 3 + S01 / 3 = 2/81.
        let scores = [0.9, 0.8, 0.4, 0.7, 0.3, 0.2];
        let labels = [true, true, true, false, false, false];
        assert_close(
            delong_variance(&scores, &labels).unwrap(),
            2.0 / 81.0,
            1e-15,
        );
        let report = auroc_delong(&scores, &labels, 0.95).unwrap();
        assert_close(report.auroc, 8.0 / 9.0, 1e-15);
        let half_width = 1.959_963_984_540_054 * (2.0_f64 / 81.0).sqrt();
        assert_close(report.lo, 8.0 / 9.0 - half_width, 1e-12);
        assert_eq!(report.hi, 1.0, "upper bound is clipped to 1");
    }

    #[test]
    fn delong_matches_quadratic_reference_on_tied_example() {
        // Reference: the O(n_pos * n_neg) definition of DeLong's placements, run with numpy
        // 2.4.6 and scipy (installed with scikit-learn 1.9.1) as `python ref.py` on:
        //   import numpy as np; from scipy.stats import norm
        //   y = np.array([0,0,1,1,1,0,1,0,0,1], bool)
        //   a = np.array([0.1,0.4,0.35,0.8,0.4,0.4,0.9,0.1,0.65,0.35])
        //   b = np.array([0.2,0.3,0.3,0.5,0.1,0.6,0.7,0.2,0.4,0.9])
        //   def psi(s):  # psi[i, j] = 1 if positive i beats negative j, 0.5 on a tie
        //       x, z = s[y][:, None], s[~y][None, :]; return (x > z) + 0.5 * (x == z)
        //   pa, pb = psi(a), psi(b); m, n = pa.shape
        //   S = np.cov([pa.mean(1), pb.mean(1)]) / m + np.cov([pa.mean(0), pb.mean(0)]) / n
        //   z = (pa.mean() - pb.mean()) / np.sqrt(S[0, 0] + S[1, 1] - 2 * S[0, 1])
        //   print(repr(S[0, 0]), repr(pb.mean()), repr(z), repr(2 * norm.sf(abs(z))))
        // which printed 0.0358 0.66 0.09245003270420495 0.9263404892511518.
        let scores = [0.1, 0.4, 0.35, 0.8, 0.4, 0.4, 0.9, 0.1, 0.65, 0.35];
        let labels = [
            false, false, true, true, true, false, true, false, false, true,
        ];
        assert_close(
            delong_variance(&scores, &labels).unwrap(),
            DELONG_REF_VAR,
            1e-14,
        );
        let other = [0.2, 0.3, 0.3, 0.5, 0.1, 0.6, 0.7, 0.2, 0.4, 0.9];
        let test = delong_test(&scores, &other, &labels).unwrap();
        assert_close(test.auroc_a, 0.68, 1e-14);
        assert_close(test.auroc_b, DELONG_REF_AUC_B, 1e-14);
        assert_close(test.z, DELONG_REF_Z, 1e-12);
        assert_close(test.p_value, DELONG_REF_P, 1e-12);
    }

    const DELONG_REF_VAR: f64 = 0.0358;
    const DELONG_REF_AUC_B: f64 = 0.66;
    const DELONG_REF_Z: f64 = 0.092_450_032_704_204_95;
    const DELONG_REF_P: f64 = 0.926_340_489_251_151_8;

    #[test]
    fn delong_test_of_a_detector_with_itself_finds_no_difference() {
        let (scores, labels) = noisy_scores(60, 1);
        let test = delong_test(&scores, &scores, &labels).unwrap();
        assert_eq!((test.z, test.p_value), (0.0, 1.0));
    }

    #[test]
    fn delong_test_is_antisymmetric() {
        let (a, labels) = noisy_scores(90, 2);
        let (b, _) = noisy_scores(90, 3);
        let ab = delong_test(&a, &b, &labels).unwrap();
        let ba = delong_test(&b, &a, &labels).unwrap();
        assert_close(ab.z, -ba.z, 1e-12);
        assert_close(ab.p_value, ba.p_value, 1e-12);
        assert!(ab.p_value > 0.0 && ab.p_value <= 1.0);
    }

    #[test]
    fn delong_test_rejects_infinite_z() {
        // a separates perfectly; b gives every input the same score. Both have zero spread
        // in their placements, so the difference 1 - 0.5 has zero standard error.
        let a = [0.9, 0.8, 0.1, 0.2];
        let b = [0.5; 4];
        let labels = [true, true, false, false];
        assert!(matches!(
            delong_test(&a, &b, &labels),
            Err(EvalError::DegenerateTest { .. })
        ));
    }

    #[test]
    fn delong_needs_two_examples_per_class() {
        assert_eq!(
            delong_variance(&[0.9, 0.1, 0.2], &[true, false, false]),
            Err(EvalError::TooFewInClass {
                class: Class::Positive,
                needed: 2,
                found: 1
            })
        );
    }

    #[test]
    fn bootstrap_ci_contains_point_estimate() {
        let (scores, labels) = noisy_scores(150, 4);
        let report = auroc_bootstrap(&scores, &labels, &BootstrapParams::new(7)).unwrap();
        assert_close(report.auroc, auroc(&scores, &labels).unwrap(), 1e-15);
        assert!(
            report.lo < report.auroc && report.auroc < report.hi,
            "{report}"
        );
        assert_eq!((report.n_pos, report.n_neg), (50, 100));
    }

    #[test]
    fn bootstrap_is_reproducible_from_its_seed() {
        let (scores, labels) = noisy_scores(90, 5);
        let a = auroc_bootstrap(&scores, &labels, &BootstrapParams::new(11)).unwrap();
        let b = auroc_bootstrap(&scores, &labels, &BootstrapParams::new(11)).unwrap();
        let c = auroc_bootstrap(&scores, &labels, &BootstrapParams::new(12)).unwrap();
        assert_eq!(a, b);
        assert_ne!((a.lo, a.hi), (c.lo, c.hi));
    }

    #[test]
    fn bootstrap_and_delong_intervals_roughly_agree() {
        // Both estimate the same sampling spread; on 300 examples with AUROC far from 1 their
        // widths should agree to within a quarter.
        let (scores, labels) = noisy_scores(300, 6);
        let boot = auroc_bootstrap(&scores, &labels, &BootstrapParams::new(8)).unwrap();
        let delong = auroc_delong(&scores, &labels, 0.95).unwrap();
        let ratio = (boot.hi - boot.lo) / (delong.hi - delong.lo);
        assert!((0.75..1.25).contains(&ratio), "width ratio {ratio}");
    }

    #[test]
    fn cluster_bootstrap_widens_interval_for_duplicated_examples() {
        // Each example copied 5 times into one cluster carries no new evidence: the cluster
        // bootstrap should give about the interval of the original data, whereas treating the
        // copies as independent shrinks it by about sqrt(5).
        let (scores, labels) = noisy_scores(120, 9);
        const COPIES: usize = 5;
        let dup_scores: Vec<f64> = scores.iter().flat_map(|&s| [s; COPIES]).collect();
        let dup_labels: Vec<bool> = labels.iter().flat_map(|&l| [l; COPIES]).collect();
        let ids: Vec<u64> = (0..scores.len() as u64).flat_map(|c| [c; COPIES]).collect();
        let params = BootstrapParams::new(10);
        let original = auroc_bootstrap(&scores, &labels, &params).unwrap();
        let naive = auroc_bootstrap(&dup_scores, &dup_labels, &params).unwrap();
        let clustered = auroc_cluster_bootstrap(&dup_scores, &dup_labels, &ids, &params).unwrap();
        let width = |r: &AurocReport| r.hi - r.lo;
        assert!(
            width(&clustered) > 1.8 * width(&naive),
            "{clustered} vs {naive}"
        );
        let ratio = width(&clustered) / width(&original);
        assert!((0.85..1.15).contains(&ratio), "width ratio {ratio}");
        assert!(matches!(
            clustered.method,
            CiMethod::ClusterBootstrap {
                n_clusters: 120,
                ..
            }
        ));
    }

    #[test]
    fn cluster_bootstrap_handles_clusters_with_both_classes() {
        // Each prompt appears with and without a trigger: every cluster is mixed.
        let (scores, labels) = noisy_scores(60, 13);
        let ids: Vec<u64> = (0..60).map(|i| i / 3).collect();
        let report =
            auroc_cluster_bootstrap(&scores, &labels, &ids, &BootstrapParams::new(1)).unwrap();
        assert!(
            report.lo <= report.auroc && report.auroc <= report.hi,
            "{report}"
        );
    }

    #[test]
    fn bootstrap_ci_works_for_any_metric() {
        let (scores, labels) = noisy_scores(120, 14);
        let ci = bootstrap_ci(
            &scores,
            &labels,
            None,
            &BootstrapParams::new(3),
            crate::auroc::average_precision,
        )
        .unwrap();
        assert!(ci.lo < ci.estimate && ci.estimate < ci.hi);
    }

    #[test]
    fn bootstrap_rejects_bad_params_and_input() {
        let scores = [0.1, 0.2, 0.3];
        let labels = [false, true, true];
        let zero = BootstrapParams {
            n_resamples: 0,
            ..BootstrapParams::default()
        };
        assert!(matches!(
            auroc_bootstrap(&scores, &labels, &zero),
            Err(EvalError::ZeroCount { .. })
        ));
        for confidence in [0.0, 1.0, f64::NAN, 95.0] {
            let params = BootstrapParams {
                confidence,
                ..BootstrapParams::default()
            };
            assert!(matches!(
                auroc_bootstrap(&scores, &labels, &params),
                Err(EvalError::ConfidenceOutOfRange { .. })
            ));
        }
        assert!(matches!(
            auroc_cluster_bootstrap(&scores, &labels, &[1, 2], &BootstrapParams::default()),
            Err(EvalError::LengthMismatch { .. })
        ));
        assert!(matches!(
            bootstrap_ci(
                &scores,
                &labels,
                None,
                &BootstrapParams::default(),
                |_, _| Ok(f64::NAN)
            ),
            Err(EvalError::NonFiniteMetric { .. })
        ));
        assert!(matches!(
            delong_test(&scores, &scores[..2], &labels),
            Err(EvalError::LengthMismatch { .. })
        ));
    }

    #[test]
    fn quantile_interpolates_like_numpy() {
        // np.quantile([1, 2, 3, 4], [0.025, 0.5, 0.975]) = [1.075, 2.5, 3.925].
        let sorted = [1.0, 2.0, 3.0, 4.0];
        assert_close(quantile_sorted(&sorted, 0.025), 1.075, 1e-12);
        assert_close(quantile_sorted(&sorted, 0.5), 2.5, 1e-12);
        assert_close(quantile_sorted(&sorted, 0.975), 3.925, 1e-12);
    }
}
