//! The probes themselves, on ndarray: each fits a [`LinearProbe`] (a weight vector and a bias in
//! the raw activation coordinates) through linfa's `Fit`.

use linfa::dataset::DatasetBase;
use linfa::prelude::*;
use linfa_logistic::LogisticRegression;
use ndarray::{Array1, Array2, ArrayBase, Axis, Data, Ix2};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_distr::{Distribution, StandardNormal};

use crate::error::{ProbeError, Result};
use crate::hyperparams::{LogisticProbeValidParams, MeanDiffValidParams, PcaDirectionValidParams};

/// A fitted linear probe: `score(x) = weights . x + bias`, higher = more likely positive.
#[derive(Debug, Clone, PartialEq)]
pub struct LinearProbe {
    weights: Array1<f64>,
    bias: f64,
    alpha: Option<f64>,
}

impl LinearProbe {
    /// A probe with given weights and bias (for instance a random direction).
    pub fn new(weights: Array1<f64>, bias: f64) -> Self {
        Self {
            weights,
            bias,
            alpha: None,
        }
    }

    pub fn weights(&self) -> &Array1<f64> {
        &self.weights
    }

    pub fn bias(&self) -> f64 {
        self.bias
    }

    /// The weights scaled to unit length.
    pub fn direction(&self) -> Array1<f64> {
        let norm = self.weights.dot(&self.weights).sqrt();
        &self.weights / norm
    }

    /// The L2 strength the validation split chose (logistic probes only).
    pub fn chosen_alpha(&self) -> Option<f64> {
        self.alpha
    }

    /// One score per row of `x`.
    ///
    /// # Errors
    /// [`ProbeError::InvalidData`] if `x` has the wrong width or a non-finite entry.
    pub fn scores<D: Data<Elem = f64>>(&self, x: &ArrayBase<D, Ix2>) -> Result<Array1<f64>> {
        if x.ncols() != self.weights.len() {
            return Err(ProbeError::InvalidData(format!(
                "{} features, the probe was fitted on {}",
                x.ncols(),
                self.weights.len()
            )));
        }
        check_finite(x)?;
        Ok(x.dot(&self.weights) + self.bias)
    }
}

impl<D: Data<Elem = f64>> PredictInplace<ArrayBase<D, Ix2>, Array1<f64>> for LinearProbe {
    /// Scores (not classes). Panics on a width mismatch, as linfa's predictors do; use
    /// [`LinearProbe::scores`] for a checked call.
    fn predict_inplace(&self, x: &ArrayBase<D, Ix2>, y: &mut Array1<f64>) {
        assert_eq!(x.ncols(), self.weights.len(), "feature count mismatch");
        y.assign(&(x.dot(&self.weights) + self.bias));
    }

    fn default_target(&self, x: &ArrayBase<D, Ix2>) -> Array1<f64> {
        Array1::zeros(x.nrows())
    }
}

impl Fit<Array2<f64>, Array1<bool>, ProbeError> for LogisticProbeValidParams {
    type Object = LinearProbe;

    /// Standardises each feature on the training rows, picks the L2 strength with the best
    /// AUROC on a stratified validation split (the strongest on ties), refits on all rows, and
    /// folds the standardisation into the returned weights.
    fn fit(&self, dataset: &DatasetBase<Array2<f64>, Array1<bool>>) -> Result<LinearProbe> {
        let (x, y) = (dataset.records(), dataset.targets());
        check_labelled(x, y, if self.alphas.len() > 1 { 2 } else { 1 })?;
        let mean = x.mean_axis(Axis(0)).expect("rows checked");
        let std = x
            .std_axis(Axis(0), 0.0)
            .mapv(|s| if s > 1e-12 { s } else { 1.0 });
        let z = (x - &mean) / &std;

        let alpha = if self.alphas.len() == 1 {
            self.alphas[0]
        } else {
            let labels = y.to_vec();
            let (train, val) = stratified_split(&labels, self.validation_fraction, self.seed)?;
            let (zt, yt) = (z.select(Axis(0), &train), y.select(Axis(0), &train));
            let (zv, yv) = (z.select(Axis(0), &val), y.select(Axis(0), &val));
            let yv = yv.to_vec();
            let mut best = (f64::NEG_INFINITY, self.alphas[0]);
            let mut alphas = self.alphas.clone();
            alphas.sort_by(f64::total_cmp);
            for &alpha in &alphas {
                let (w, b) = self.fit_logistic(&zt, &yt, alpha)?;
                let auroc = mesa_eval::auroc(&(zv.dot(&w) + b).to_vec(), &yv)?;
                if auroc >= best.0 {
                    best = (auroc, alpha);
                }
            }
            best.1
        };
        let (w, b) = self.fit_logistic(&z, y, alpha)?;
        let weights = &w / &std;
        let bias = b - mean.dot(&weights);
        Ok(LinearProbe {
            weights,
            bias,
            alpha: Some(alpha),
        })
    }
}

impl LogisticProbeValidParams {
    /// Weights and intercept of linfa-logistic, signed so that `true` scores higher.
    fn fit_logistic(
        &self,
        x: &Array2<f64>,
        y: &Array1<bool>,
        alpha: f64,
    ) -> Result<(Array1<f64>, f64)> {
        let fitted = LogisticRegression::default()
            .alpha(alpha)
            .max_iterations(self.max_iterations)
            .fit(&Dataset::new(x.clone(), y.clone()))?;
        let sign = if fitted.labels().pos.class { 1.0 } else { -1.0 };
        Ok((fitted.params() * sign, fitted.intercept() * sign))
    }
}

impl Fit<Array2<f64>, Array1<bool>, ProbeError> for MeanDiffValidParams {
    type Object = LinearProbe;

    /// `w = mu_pos - mu_neg` (or `S^-1 (mu_pos - mu_neg)` with the shrunk pooled covariance),
    /// `bias` putting the midpoint of the class means at 0.
    fn fit(&self, dataset: &DatasetBase<Array2<f64>, Array1<bool>>) -> Result<LinearProbe> {
        let (x, y) = (dataset.records(), dataset.targets());
        check_labelled(x, y, if self.covariance_adjusted { 2 } else { 1 })?;
        let pos: Vec<usize> = (0..y.len()).filter(|&i| y[i]).collect();
        let neg: Vec<usize> = (0..y.len()).filter(|&i| !y[i]).collect();
        let xp = x.select(Axis(0), &pos);
        let xn = x.select(Axis(0), &neg);
        let mp = xp.mean_axis(Axis(0)).expect("class checked");
        let mn = xn.mean_axis(Axis(0)).expect("class checked");
        let diff = &mp - &mn;
        let weights = if self.covariance_adjusted {
            let cp = &xp - &mp;
            let cn = &xn - &mn;
            let dof = (x.nrows() - 2) as f64;
            let s = (cp.t().dot(&cp) + cn.t().dot(&cn)) / dof;
            let d = s.nrows();
            let scale = s.diag().sum() / d as f64;
            let mut shrunk = s * (1.0 - self.shrinkage);
            for i in 0..d {
                shrunk[[i, i]] += self.shrinkage * scale;
            }
            cholesky_solve(&shrunk, &diff)?
        } else {
            diff
        };
        if weights.dot(&weights) == 0.0 {
            return Err(ProbeError::FitFailed(
                "the class means coincide: no direction to probe".into(),
            ));
        }
        let bias = -weights.dot(&((&mp + &mn) / 2.0));
        Ok(LinearProbe::new(weights, bias))
    }
}

impl<T> Fit<Array2<f64>, T, ProbeError> for PcaDirectionValidParams {
    type Object = LinearProbe;

    /// The top eigenvector of `X^T X` (about the column means if centred), by power iteration
    /// from a seeded random start. Targets are ignored.
    fn fit(&self, dataset: &DatasetBase<Array2<f64>, T>) -> Result<LinearProbe> {
        let x = dataset.records();
        if x.nrows() < 2 || x.ncols() == 0 {
            return Err(ProbeError::InvalidData(format!(
                "need at least 2 rows and 1 feature, got {} x {}",
                x.nrows(),
                x.ncols()
            )));
        }
        check_finite(x)?;
        let mean = if self.centred {
            x.mean_axis(Axis(0)).expect("rows checked")
        } else {
            Array1::zeros(x.ncols())
        };
        let xc = x - &mean;
        let mut rng = StdRng::seed_from_u64(self.seed);
        let mut v: Array1<f64> = (0..x.ncols())
            .map(|_| StandardNormal.sample(&mut rng))
            .collect();
        v /= v.dot(&v).sqrt();
        for _ in 0..self.iterations {
            let mut next = xc.t().dot(&xc.dot(&v));
            let norm = next.dot(&next).sqrt();
            if norm == 0.0 || !norm.is_finite() {
                return Err(ProbeError::FitFailed(
                    "the data has no variance to find a direction in".into(),
                ));
            }
            next /= norm;
            let change = (&next - &v).mapv(f64::abs).sum();
            v = next;
            if change < 1e-12 {
                break;
            }
        }
        let sign = if self.centred {
            // No labels: fix the sign by the largest entry, so the result is deterministic.
            let largest = v
                .iter()
                .copied()
                .max_by(|a, b| a.abs().total_cmp(&b.abs()))
                .unwrap_or(1.0);
            largest.signum()
        } else {
            // Differences are positive - negative: the positive member must score higher.
            let mean_projection = x.dot(&v).mean().unwrap_or(0.0);
            if mean_projection < 0.0 {
                -1.0
            } else {
                1.0
            }
        };
        let weights = v * sign;
        let bias = -mean.dot(&weights);
        Ok(LinearProbe::new(weights, bias))
    }
}

/// Splits indices into `(train, validation)` with `fraction` of each class (at least one, at
/// most all but one) in validation, shuffled by `seed`.
///
/// # Errors
/// [`ProbeError::InvalidData`] if a class has fewer than 2 members.
pub fn stratified_split(
    labels: &[bool],
    fraction: f64,
    seed: u64,
) -> Result<(Vec<usize>, Vec<usize>)> {
    let mut rng = StdRng::seed_from_u64(seed);
    let (mut train, mut val) = (Vec::new(), Vec::new());
    for class in [true, false] {
        let mut idx: Vec<usize> = (0..labels.len()).filter(|&i| labels[i] == class).collect();
        if idx.len() < 2 {
            return Err(ProbeError::InvalidData(format!(
                "class {class} has {} examples; a validation split needs 2",
                idx.len()
            )));
        }
        idx.shuffle(&mut rng);
        let n_val = ((idx.len() as f64 * fraction).round() as usize).clamp(1, idx.len() - 1);
        val.extend_from_slice(&idx[..n_val]);
        train.extend_from_slice(&idx[n_val..]);
    }
    train.sort_unstable();
    val.sort_unstable();
    Ok((train, val))
}

fn check_finite<D: Data<Elem = f64>>(x: &ArrayBase<D, Ix2>) -> Result<()> {
    match x.indexed_iter().find(|(_, v)| !v.is_finite()) {
        Some(((r, c), v)) => Err(ProbeError::InvalidData(format!(
            "activation [{r}, {c}] is {v}"
        ))),
        None => Ok(()),
    }
}

fn check_labelled(x: &Array2<f64>, y: &Array1<bool>, min_per_class: usize) -> Result<()> {
    if x.nrows() != y.len() {
        return Err(ProbeError::InvalidData(format!(
            "{} rows but {} labels",
            x.nrows(),
            y.len()
        )));
    }
    let n_pos = y.iter().filter(|&&l| l).count();
    let n_neg = y.len() - n_pos;
    if n_pos < min_per_class || n_neg < min_per_class {
        return Err(ProbeError::InvalidData(format!(
            "{n_pos} positives and {n_neg} negatives; at least {min_per_class} of each needed"
        )));
    }
    check_finite(x)
}

/// Solves `a w = b` for a symmetric positive-definite `a` by Cholesky factorisation.
fn cholesky_solve(a: &Array2<f64>, b: &Array1<f64>) -> Result<Array1<f64>> {
    let n = a.nrows();
    let mut l = Array2::<f64>::zeros((n, n));
    for i in 0..n {
        for j in 0..=i {
            let s: f64 = (0..j).map(|k| l[[i, k]] * l[[j, k]]).sum();
            if i == j {
                let d = a[[i, i]] - s;
                if d <= 1e-12 * a[[i, i]].abs().max(1e-300) {
                    return Err(ProbeError::FitFailed(
                        "the pooled covariance is singular; raise the shrinkage".into(),
                    ));
                }
                l[[i, i]] = d.sqrt();
            } else {
                l[[i, j]] = (a[[i, j]] - s) / l[[j, j]];
            }
        }
    }
    let mut y = Array1::<f64>::zeros(n);
    for i in 0..n {
        let s: f64 = (0..i).map(|k| l[[i, k]] * y[k]).sum();
        y[i] = (b[i] - s) / l[[i, i]];
    }
    let mut w = Array1::<f64>::zeros(n);
    for i in (0..n).rev() {
        let s: f64 = (i + 1..n).map(|k| l[[k, i]] * w[k]).sum();
        w[i] = (y[i] - s) / l[[i, i]];
    }
    Ok(w)
}
