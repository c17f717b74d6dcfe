//! The three statistics on an activation matrix `[n, d]`, with no model in view: spectral
//! signatures, activation clustering and the Mahalanobis distance. Each fits on one set and
//! scores rows of another; every score is higher for a more anomalous row.

use ndarray::{Array1, Array2, Axis};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::error::{ActivationError, Result};

fn check_rows(x: &Array2<f64>, min: usize, what: &str) -> Result<()> {
    if x.nrows() < min || x.ncols() == 0 {
        return Err(ActivationError::InvalidData(format!(
            "{what} needs at least {min} rows of width >= 1, got [{}, {}]",
            x.nrows(),
            x.ncols()
        )));
    }
    if x.iter().any(|v| !v.is_finite()) {
        return Err(ActivationError::InvalidData(format!(
            "{what}: NaN or inf in the activations"
        )));
    }
    Ok(())
}

fn check_width(x: &Array2<f64>, d: usize) -> Result<()> {
    if x.ncols() != d {
        return Err(ActivationError::InvalidData(format!(
            "fitted on width {d}, scoring width {}",
            x.ncols()
        )));
    }
    Ok(())
}

fn column_mean(x: &Array2<f64>) -> Array1<f64> {
    x.mean_axis(Axis(0))
        .unwrap_or_else(|| Array1::zeros(x.ncols()))
}

/// The sample covariance of `x` (rows are observations).
pub fn covariance(x: &Array2<f64>) -> Array2<f64> {
    let centred = x - &column_mean(x);
    centred.t().dot(&centred) / (x.nrows().max(2) - 1) as f64
}

/// The `k` leading eigenpairs of a symmetric positive semi-definite matrix, by power iteration
/// with deflation from a seeded start: eigenvalues descending, eigenvectors as rows `[k, d]`.
pub fn top_eigen(c: &Array2<f64>, k: usize, seed: u64) -> (Vec<f64>, Array2<f64>) {
    let d = c.nrows();
    let k = k.min(d);
    let mut rng = StdRng::seed_from_u64(seed);
    let mut m = c.clone();
    let mut values = Vec::with_capacity(k);
    let mut vectors = Array2::zeros((k, d));
    for i in 0..k {
        let mut v: Array1<f64> = (0..d).map(|_| rng.gen::<f64>() - 0.5).collect();
        let mut lambda = 0.0;
        for _ in 0..500 {
            let w = m.dot(&v);
            let norm = w.dot(&w).sqrt();
            if norm <= f64::MIN_POSITIVE {
                break;
            }
            let next = w / norm;
            let converged = (&next - &v).mapv(f64::abs).sum() < 1e-12 * d as f64;
            v = next;
            lambda = v.dot(&m.dot(&v));
            if converged {
                break;
            }
        }
        let norm = v.dot(&v).sqrt().max(f64::MIN_POSITIVE);
        v /= norm;
        // Deflate so the next iteration finds the next eigenvector.
        let outer = v
            .view()
            .insert_axis(Axis(1))
            .dot(&v.view().insert_axis(Axis(0)));
        m = m - outer * lambda;
        values.push(lambda.max(0.0));
        vectors.row_mut(i).assign(&v);
    }
    (values, vectors)
}

/// The inverse of a symmetric positive definite matrix by Gauss-Jordan elimination with
/// partial pivoting; `None` if it is singular.
pub fn inverse(a: &Array2<f64>) -> Option<Array2<f64>> {
    let n = a.nrows();
    let mut m = a.clone();
    let mut inv = Array2::eye(n);
    for col in 0..n {
        let pivot = (col..n).max_by(|&i, &j| m[[i, col]].abs().total_cmp(&m[[j, col]].abs()))?;
        if m[[pivot, col]].abs() < 1e-300 {
            return None;
        }
        for j in 0..n {
            m.swap([col, j], [pivot, j]);
            inv.swap([col, j], [pivot, j]);
        }
        let p = m[[col, col]];
        m.row_mut(col).mapv_inplace(|v| v / p);
        inv.row_mut(col).mapv_inplace(|v| v / p);
        for i in 0..n {
            if i != col {
                let f = m[[i, col]];
                if f != 0.0 {
                    let (mr, ir) = (m.row(col).to_owned(), inv.row(col).to_owned());
                    m.row_mut(i).scaled_add(-f, &mr);
                    inv.row_mut(i).scaled_add(-f, &ir);
                }
            }
        }
    }
    Some(inv)
}

/// Spectral signature (Tran et al. 2018): the squared projection of a centred row on the top
/// singular vector of the centred fit set. A small poisoned subpopulation that is far from the
/// rest dominates that direction, so its rows score high.
#[derive(Debug, Clone, PartialEq)]
pub struct Spectral {
    pub mean: Array1<f64>,
    pub direction: Array1<f64>,
    /// The top eigenvalue of the fit set's covariance over their mean: how much one direction
    /// dominates (about 1 for isotropic data).
    pub dominance: f64,
}

impl Spectral {
    /// Fits on `x` (`[n, d]`, n >= 2).
    ///
    /// # Errors
    /// Too few rows, or non-finite values.
    pub fn fit(x: &Array2<f64>, seed: u64) -> Result<Self> {
        check_rows(x, 2, "spectral signature")?;
        let c = covariance(x);
        let (values, vectors) = top_eigen(&c, 1, seed);
        let mean_eig = c.diag().sum() / c.nrows() as f64;
        Ok(Self {
            mean: column_mean(x),
            direction: vectors.row(0).to_owned(),
            dominance: values[0] / mean_eig.max(f64::MIN_POSITIVE),
        })
    }

    /// `((x - mean) . direction)^2` per row.
    ///
    /// # Errors
    /// A width that differs from the fit's.
    pub fn scores(&self, x: &Array2<f64>) -> Result<Array1<f64>> {
        check_width(x, self.mean.len())?;
        Ok((x - &self.mean).dot(&self.direction).mapv(|p| p * p))
    }
}

/// A Gaussian fitted to a reference set: the Mahalanobis distance of new rows from it.
#[derive(Debug, Clone, PartialEq)]
pub struct Mahalanobis {
    pub mean: Array1<f64>,
    pub precision: Array2<f64>,
}

impl Mahalanobis {
    /// Fits mean and covariance of `x`, with `shrinkage` times the mean variance added to the
    /// diagonal (the fit sets are a few hundred rows; the residual stream is 32-64 wide).
    ///
    /// # Errors
    /// Too few rows, non-finite values, a negative shrinkage or a singular covariance.
    pub fn fit(x: &Array2<f64>, shrinkage: f64) -> Result<Self> {
        check_rows(x, 2, "Mahalanobis distance")?;
        if !(shrinkage.is_finite() && shrinkage >= 0.0) {
            return Err(ActivationError::InvalidParam {
                param: "shrinkage",
                reason: format!("{shrinkage} is not a finite number >= 0"),
            });
        }
        let mut c = covariance(x);
        let d = c.nrows();
        let ridge = shrinkage * c.diag().sum() / d as f64 + 1e-9;
        for i in 0..d {
            c[[i, i]] += ridge;
        }
        let precision = inverse(&c).ok_or_else(|| {
            ActivationError::InvalidData("the covariance is singular; raise the shrinkage".into())
        })?;
        Ok(Self {
            mean: column_mean(x),
            precision,
        })
    }

    /// `(x - mean)^T P (x - mean)` per row.
    ///
    /// # Errors
    /// A width that differs from the fit's.
    pub fn scores(&self, x: &Array2<f64>) -> Result<Array1<f64>> {
        check_width(x, self.mean.len())?;
        let centred = x - &self.mean;
        Ok((centred.dot(&self.precision) * &centred).sum_axis(Axis(1)))
    }
}

/// Two clusters found by seeded k-means (k-means++ start, several restarts, Lloyd steps).
#[derive(Debug, Clone, PartialEq)]
pub struct TwoMeans {
    pub centroids: Array2<f64>,
    pub assignment: Vec<usize>,
    pub inertia: f64,
}

fn nearest(row: ndarray::ArrayView1<'_, f64>, centroids: &Array2<f64>) -> (usize, f64) {
    let d0 = (&row - &centroids.row(0)).mapv(|v| v * v).sum();
    let d1 = (&row - &centroids.row(1)).mapv(|v| v * v).sum();
    if d1 < d0 {
        (1, d1)
    } else {
        (0, d0)
    }
}

/// 2-means on the rows of `x` (n >= 2), the best of `restarts` seeded starts.
///
/// # Errors
/// Too few rows or non-finite values.
pub fn two_means(x: &Array2<f64>, restarts: usize, seed: u64) -> Result<TwoMeans> {
    check_rows(x, 2, "2-means")?;
    let n = x.nrows();
    let mut rng = StdRng::seed_from_u64(seed);
    let mut best: Option<TwoMeans> = None;
    for _ in 0..restarts.max(1) {
        // k-means++: the first centre uniformly, the second with probability ~ distance^2.
        let first = rng.gen_range(0..n);
        let d2: Vec<f64> = x
            .rows()
            .into_iter()
            .map(|r| (&r - &x.row(first)).mapv(|v| v * v).sum())
            .collect();
        let total: f64 = d2.iter().sum();
        let second = if total <= 0.0 {
            (first + 1) % n
        } else {
            let mut u = rng.gen::<f64>() * total;
            let mut pick = n - 1;
            for (i, d) in d2.iter().enumerate() {
                if u < *d {
                    pick = i;
                    break;
                }
                u -= d;
            }
            pick
        };
        let mut centroids = ndarray::stack(Axis(0), &[x.row(first), x.row(second)])
            .map_err(|e| ActivationError::InvalidData(e.to_string()))?;
        let mut assignment = vec![0; n];
        let mut inertia = f64::INFINITY;
        for _ in 0..100 {
            let mut changed = false;
            inertia = 0.0;
            for (i, row) in x.rows().into_iter().enumerate() {
                let (c, d) = nearest(row, &centroids);
                inertia += d;
                changed |= assignment[i] != c;
                assignment[i] = c;
            }
            for c in 0..2 {
                let members: Vec<usize> = (0..n).filter(|&i| assignment[i] == c).collect();
                if !members.is_empty() {
                    let mean = x.select(Axis(0), &members).mean_axis(Axis(0));
                    if let Some(mean) = mean {
                        centroids.row_mut(c).assign(&mean);
                    }
                }
            }
            if !changed {
                break;
            }
        }
        if best.as_ref().is_none_or(|b| inertia < b.inertia) {
            best = Some(TwoMeans {
                centroids,
                assignment,
                inertia,
            });
        }
    }
    best.ok_or_else(|| ActivationError::InvalidData("no 2-means restart ran".into()))
}

/// Mean silhouette of a two-cluster assignment (Rousseeuw 1987); 0 if a cluster is empty.
pub fn silhouette(x: &Array2<f64>, assignment: &[usize]) -> f64 {
    let n = x.nrows();
    let sizes = [0, 1].map(|c| assignment.iter().filter(|&&a| a == c).count());
    if sizes.contains(&0) {
        return 0.0;
    }
    let mut total = 0.0;
    for i in 0..n {
        let mut sum = [0.0, 0.0];
        for j in 0..n {
            if i != j {
                sum[assignment[j]] += (&x.row(i) - &x.row(j)).mapv(|v| v * v).sum().sqrt();
            }
        }
        let own = assignment[i];
        if sizes[own] == 1 {
            continue; // a singleton's silhouette is 0 by convention
        }
        let a = sum[own] / (sizes[own] - 1) as f64;
        let b = sum[1 - own] / sizes[1 - own] as f64;
        total += (b - a) / a.max(b).max(f64::MIN_POSITIVE);
    }
    total / n as f64
}

/// Activation clustering (Chen et al. 2018): project on the top principal components of the fit
/// set, split it in two by 2-means; the smaller cluster is the suspect one. Scores a row by how
/// much nearer it lies to the small cluster's centre than to the large one's.
#[derive(Debug, Clone, PartialEq)]
pub struct Clustering {
    pub mean: Array1<f64>,
    /// Principal components as rows `[k, d]`.
    pub components: Array2<f64>,
    /// Centres in the reduced space: row 0 the small cluster, row 1 the large one.
    pub centres: Array2<f64>,
    /// Share of the fit set in the small cluster (at most 0.5).
    pub relative_size: f64,
    /// Mean silhouette of the split in the reduced space.
    pub silhouette: f64,
}

impl Clustering {
    /// Fits on `x` (`[n, d]`, n >= 4) with `k` components.
    ///
    /// # Errors
    /// Too few rows, non-finite values, `k == 0`.
    pub fn fit(x: &Array2<f64>, k: usize, seed: u64) -> Result<Self> {
        check_rows(x, 4, "activation clustering")?;
        if k == 0 {
            return Err(ActivationError::InvalidParam {
                param: "components",
                reason: "at least one principal component".into(),
            });
        }
        let mean = column_mean(x);
        let (_, components) = top_eigen(&covariance(x), k, seed);
        let z = (x - &mean).dot(&components.t());
        let split = two_means(&z, 5, seed ^ 0x6b6d_6561_6e73)?;
        let ones = split.assignment.iter().filter(|&&a| a == 1).count();
        let small = usize::from(ones * 2 < x.nrows());
        let small_size = if small == 1 { ones } else { x.nrows() - ones };
        let centres = ndarray::stack(
            Axis(0),
            &[split.centroids.row(small), split.centroids.row(1 - small)],
        )
        .map_err(|e| ActivationError::InvalidData(e.to_string()))?;
        Ok(Self {
            silhouette: silhouette(&z, &split.assignment),
            relative_size: small_size as f64 / x.nrows() as f64,
            mean,
            components,
            centres,
        })
    }

    /// `|z - large centre| - |z - small centre|` per row, `z` the reduced row.
    ///
    /// # Errors
    /// A width that differs from the fit's.
    pub fn scores(&self, x: &Array2<f64>) -> Result<Array1<f64>> {
        check_width(x, self.mean.len())?;
        let z = (x - &self.mean).dot(&self.components.t());
        Ok(z.rows()
            .into_iter()
            .map(|r| {
                let to = |c: usize| (&r - &self.centres.row(c)).mapv(|v| v * v).sum().sqrt();
                to(1) - to(0)
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_distr_free::gaussian;

    /// Gaussian noise without another dependency: Box-Muller on the seeded generator.
    mod rand_distr_free {
        use rand::rngs::StdRng;
        use rand::Rng;
        pub fn gaussian(rng: &mut StdRng) -> f64 {
            let (u, v): (f64, f64) = (rng.gen::<f64>().max(1e-12), rng.gen());
            (-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()
        }
    }

    /// `n` isotropic rows of width `d`, the first `planted` shifted by `shift` along axis 3.
    fn planted(n: usize, d: usize, planted: usize, shift: f64, seed: u64) -> Array2<f64> {
        let mut rng = StdRng::seed_from_u64(seed);
        Array2::from_shape_fn((n, d), |(i, j)| {
            gaussian(&mut rng) + if i < planted && j == 3 { shift } else { 0.0 }
        })
    }

    #[test]
    fn eigen_and_inverse_agree_with_a_known_matrix() {
        let c = ndarray::array![[4.0, 1.0, 0.0], [1.0, 3.0, 0.0], [0.0, 0.0, 1.0]];
        let (values, vectors) = top_eigen(&c, 3, 0);
        let expect = (7.0 + 5f64.sqrt()) / 2.0;
        assert!((values[0] - expect).abs() < 1e-8, "{values:?}");
        assert!((values[2] - 1.0).abs() < 1e-8, "{values:?}");
        assert!((vectors.row(0).dot(&vectors.row(1))).abs() < 1e-6);
        let inv = inverse(&c).expect("invertible");
        let id = c.dot(&inv);
        assert!((id - Array2::<f64>::eye(3)).mapv(f64::abs).sum() < 1e-10);
        assert!(inverse(&Array2::zeros((2, 2))).is_none());
    }

    #[test]
    fn each_statistic_ranks_a_planted_subpopulation_on_top() {
        // 5% of the fit set is far off along one axis: the realistic poisoning rate.
        let x = planted(400, 8, 20, 8.0, 1);
        let top20 = |s: Array1<f64>| {
            let mut idx: Vec<usize> = (0..s.len()).collect();
            idx.sort_by(|&a, &b| s[b].total_cmp(&s[a]));
            idx[..20].iter().filter(|&&i| i < 20).count()
        };
        let spectral = Spectral::fit(&x, 0).expect("fit");
        assert!(
            spectral.direction[3].abs() > 0.9,
            "{:?}",
            spectral.direction
        );
        assert!(top20(spectral.scores(&x).expect("scores")) >= 19);
        let clustering = Clustering::fit(&x, 3, 0).expect("fit");
        assert!((clustering.relative_size - 0.05).abs() < 0.01);
        assert!(clustering.silhouette > 0.3, "{}", clustering.silhouette);
        assert!(top20(clustering.scores(&x).expect("scores")) >= 19);
        // Mahalanobis fitted on clean rows only flags the planted ones.
        let clean = planted(400, 8, 0, 0.0, 2);
        let gauss = Mahalanobis::fit(&clean, 0.01).expect("fit");
        assert!(top20(gauss.scores(&x).expect("scores")) >= 19);
    }

    #[test]
    fn clean_data_shows_no_dominant_direction_or_small_tight_cluster() {
        let x = planted(400, 8, 0, 0.0, 3);
        let spectral = Spectral::fit(&x, 0).expect("fit");
        assert!(spectral.dominance < 1.6, "{}", spectral.dominance);
        let planted_x = planted(400, 8, 20, 8.0, 3);
        let planted_dominance = Spectral::fit(&planted_x, 0).expect("fit").dominance;
        assert!(planted_dominance > 2.0 * spectral.dominance);
        let clustering = Clustering::fit(&x, 3, 0).expect("fit");
        assert!(
            clustering.relative_size > 0.25,
            "isotropic data splits into two big halves, not a small cluster: {}",
            clustering.relative_size
        );
    }

    #[test]
    fn fits_refuse_too_few_rows_and_foreign_widths() {
        let x = planted(3, 4, 0, 0.0, 4);
        assert!(Clustering::fit(&x, 2, 0).is_err());
        let spectral = Spectral::fit(&x, 0).expect("fit");
        assert!(spectral.scores(&Array2::zeros((2, 5))).is_err());
        assert!(Mahalanobis::fit(&x, -1.0).is_err());
    }
}
