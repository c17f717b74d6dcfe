//! An L2-regularised logistic regression fitted by Newton's method (IRLS) on a handful of
//! standardised features: the stacking layer of the risk model.
//!
//! The features are few (one per detector) and the training models tens, so an exact Newton
//! step with a dense `(d + 1) x (d + 1)` solve is both the fastest and the most reproducible
//! choice: no learning rate, no stochasticity, the same numbers on every run. The intercept is
//! not penalised.

use crate::error::{AuditError, Result};

/// Weights of a fitted logistic model: `p = sigmoid(bias + weights . x)`.
#[derive(Debug, Clone, PartialEq)]
pub struct Logistic {
    pub bias: f64,
    pub weights: Vec<f64>,
}

impl Logistic {
    /// Fits on rows `x` (each of the same length) with labels `y`, minimising the mean log loss
    /// plus `l2 / (2 n) * |w|^2`.
    ///
    /// # Errors
    /// [`AuditError::InvalidTraining`] for empty or ragged input, a non-finite feature, or a
    /// Newton iteration that does not converge in 100 steps.
    pub fn fit(x: &[Vec<f64>], y: &[bool], l2: f64) -> Result<Self> {
        let invalid = |m: String| AuditError::InvalidTraining(m);
        if x.is_empty() || x.len() != y.len() {
            return Err(invalid(format!("{} rows but {} labels", x.len(), y.len())));
        }
        let d = x[0].len();
        if let Some(i) = x.iter().position(|r| r.len() != d) {
            return Err(invalid(format!(
                "row {i} has {} features, row 0 has {d}",
                x[i].len()
            )));
        }
        if x.iter().flatten().any(|v| !v.is_finite()) {
            return Err(invalid("a feature is not finite".into()));
        }
        // Parameters theta = [bias, w_1..w_d].
        let mut theta = vec![0.0; d + 1];
        for _ in 0..100 {
            let mut grad = vec![0.0; d + 1];
            let mut hess = vec![vec![0.0; d + 1]; d + 1];
            for (row, &label) in x.iter().zip(y) {
                let z = theta[0] + dot(&theta[1..], row);
                let p = sigmoid(z);
                let r = p - if label { 1.0 } else { 0.0 };
                let w = (p * (1.0 - p)).max(1e-12);
                let feat = |j: usize| if j == 0 { 1.0 } else { row[j - 1] };
                for (a, (g, h)) in grad.iter_mut().zip(hess.iter_mut()).enumerate() {
                    *g += r * feat(a);
                    for (b, hab) in h.iter_mut().enumerate() {
                        *hab += w * feat(a) * feat(b);
                    }
                }
            }
            for j in 1..=d {
                grad[j] += l2 * theta[j];
                hess[j][j] += l2;
            }
            // A tiny ridge on the intercept keeps the system solvable when one class is absent
            // from a bootstrap resample's logits' range.
            hess[0][0] += 1e-9;
            let step = solve(hess, grad).ok_or_else(|| invalid("singular Hessian".into()))?;
            let mut max_step: f64 = 0.0;
            for (t, s) in theta.iter_mut().zip(&step) {
                *t -= s;
                max_step = max_step.max(s.abs());
            }
            if max_step < 1e-10 {
                return Ok(Self {
                    bias: theta[0],
                    weights: theta[1..].to_vec(),
                });
            }
        }
        Err(invalid(
            "Newton's method did not converge in 100 steps".into(),
        ))
    }

    /// The probability of the positive class for one row.
    pub fn predict(&self, row: &[f64]) -> f64 {
        sigmoid(self.bias + dot(&self.weights, row))
    }
}

pub(crate) fn sigmoid(z: f64) -> f64 {
    if z >= 0.0 {
        1.0 / (1.0 + (-z).exp())
    } else {
        let e = z.exp();
        e / (1.0 + e)
    }
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// Solves `a x = b` by Gaussian elimination with partial pivoting; `None` if singular.
fn solve(mut a: Vec<Vec<f64>>, mut b: Vec<f64>) -> Option<Vec<f64>> {
    let n = b.len();
    for col in 0..n {
        let pivot = (col..n).max_by(|&i, &j| a[i][col].abs().total_cmp(&a[j][col].abs()))?;
        if a[pivot][col].abs() < 1e-300 {
            return None;
        }
        a.swap(col, pivot);
        b.swap(col, pivot);
        for row in col + 1..n {
            let f = a[row][col] / a[col][col];
            if f != 0.0 {
                let (top, bottom) = a.split_at_mut(row);
                for (x, p) in bottom[0][col..].iter_mut().zip(&top[col][col..]) {
                    *x -= f * p;
                }
                b[row] -= f * b[col];
            }
        }
    }
    let mut x = vec![0.0; n];
    for row in (0..n).rev() {
        let s: f64 = (row + 1..n).map(|k| a[row][k] * x[k]).sum();
        x[row] = (b[row] - s) / a[row][row];
    }
    Some(x)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recovers_the_generating_weights_without_penalty() {
        // Deterministic data from p = sigmoid(-0.5 + 2 x): each x appears with labels in the
        // proportion the model gives it, so the MLE is exactly the generating model.
        let mut x = Vec::new();
        let mut y = Vec::new();
        for i in 0..11 {
            let xi = -1.0 + 0.2 * f64::from(i);
            let p = sigmoid(-0.5 + 2.0 * xi);
            let n_pos = (p * 1000.0).round() as usize;
            for k in 0..1000 {
                x.push(vec![xi]);
                y.push(k < n_pos);
            }
        }
        let fit = Logistic::fit(&x, &y, 0.0).unwrap();
        assert!((fit.bias + 0.5).abs() < 0.01, "bias {}", fit.bias);
        assert!((fit.weights[0] - 2.0).abs() < 0.02, "w {}", fit.weights[0]);
    }

    #[test]
    fn separable_data_stays_finite_with_a_penalty_and_ranks_correctly() {
        let x = vec![vec![-2.0], vec![-1.0], vec![1.0], vec![2.0]];
        let y = [false, false, true, true];
        let fit = Logistic::fit(&x, &y, 1.0).unwrap();
        assert!(fit.weights[0].is_finite() && fit.weights[0] > 0.0);
        assert!(fit.predict(&[2.0]) > 0.5 && fit.predict(&[-2.0]) < 0.5);
        // Without the penalty the separable problem has no finite optimum.
        assert!(Logistic::fit(&x, &y, 0.0).is_err());
    }

    #[test]
    fn refuses_ragged_or_non_finite_rows() {
        assert!(Logistic::fit(&[vec![1.0], vec![1.0, 2.0]], &[true, false], 1.0).is_err());
        assert!(Logistic::fit(&[vec![f64::NAN], vec![1.0]], &[true, false], 1.0).is_err());
        assert!(Logistic::fit(&[], &[], 1.0).is_err());
    }

    #[test]
    fn solve_matches_a_hand_solved_system() {
        // 2x + y = 5, x + 3y = 10 -> x = 1, y = 3.
        let x = solve(vec![vec![2.0, 1.0], vec![1.0, 3.0]], vec![5.0, 10.0]).unwrap();
        assert!((x[0] - 1.0).abs() < 1e-12 && (x[1] - 3.0).abs() < 1e-12);
    }
}
