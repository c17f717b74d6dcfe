//! Reference learners, computed exactly in f64: what a model that "does gradient descent"
//! should match, and the simpler and stronger algorithms beside it.
//!
//! Gradient descent runs on `L(w) = 1/(2N) sum_i (w.x_i - y_i)^2` from `w = 0`, so one step
//! with learning rate `eta` gives `w_1 = eta X^T y / N` (von Oswald et al. 2023, eq. 5).

use ndarray::{Array1, Array2};

use crate::error::{IclError, Result};
use crate::task::{common_shape, Task};

/// An in-context learner: from a task's context it predicts `y_q`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Learner {
    /// One gradient step from `w = 0`: `w = eta X^T y / N`.
    Gd1 { eta: f64 },
    /// `steps` gradient steps from `w = 0` with learning rate `eta`.
    GdK { eta: f64, steps: usize },
    /// `w = (X^T X + lambda I)^{-1} X^T y`.
    Ridge { lambda: f64 },
    /// The least-squares solution; the minimum-norm one when `N < d`.
    LeastSquares,
    /// The label of the context input closest to `x_q` (Euclidean).
    NearestNeighbour,
    /// Garg et al. (2022)'s averaging baseline: `w = (1/N) sum_i y_i x_i`, i.e. one GD step
    /// with `eta = 1`.
    Averaging,
}

impl Learner {
    /// A short name for tables (`gd1`, `gd3`, `ridge`, `least_squares`, ...).
    pub fn name(&self) -> String {
        match self {
            Learner::Gd1 { .. } => "gd1".into(),
            Learner::GdK { steps, .. } => format!("gd{steps}"),
            Learner::Ridge { .. } => "ridge".into(),
            Learner::LeastSquares => "least_squares".into(),
            Learner::NearestNeighbour => "nearest_neighbour".into(),
            Learner::Averaging => "averaging".into(),
        }
    }

    /// The weight vector the learner fits to the context, for the learners that are linear
    /// in `x_q` (all but nearest neighbour). Its prediction is `w.x_q` and its sensitivity
    /// `d y_hat / d x_q` is `w`.
    pub fn weights(&self, task: &Task) -> Result<Option<Array1<f64>>> {
        let (xs, ys) = (&task.xs, &task.ys);
        let n = xs.nrows() as f64;
        let d = xs.ncols();
        Ok(Some(match *self {
            Learner::Gd1 { eta } => xs.t().dot(ys) * (eta / n),
            Learner::Averaging => xs.t().dot(ys) / n,
            Learner::GdK { eta, steps } => {
                let mut w = Array1::zeros(d);
                for _ in 0..steps {
                    let residual = xs.dot(&w) - ys;
                    w = w - xs.t().dot(&residual) * (eta / n);
                }
                w
            }
            Learner::Ridge { lambda } => {
                let mut gram = xs.t().dot(xs);
                for i in 0..d {
                    gram[[i, i]] += lambda;
                }
                solve(gram, xs.t().dot(ys))?
            }
            Learner::LeastSquares => {
                if xs.nrows() >= d {
                    solve(xs.t().dot(xs), xs.t().dot(ys))?
                } else {
                    xs.t().dot(&solve(xs.dot(&xs.t()), ys.clone())?)
                }
            }
            Learner::NearestNeighbour => return Ok(None),
        }))
    }

    /// The learner's prediction of `y_q`.
    pub fn predict(&self, task: &Task) -> Result<f64> {
        if let Some(w) = self.weights(task)? {
            return Ok(w.dot(&task.x_q));
        }
        let nearest = task
            .xs
            .rows()
            .into_iter()
            .map(|x| (&x - &task.x_q).mapv(|v| v * v).sum())
            .enumerate()
            .min_by(|a, b| a.1.total_cmp(&b.1))
            .map(|(i, _)| i)
            .ok_or_else(|| IclError::InvalidTasks("a task without context".into()))?;
        Ok(task.ys[nearest])
    }

    /// Mean squared error of the learner on `tasks`.
    pub fn mse(&self, tasks: &[Task]) -> Result<f64> {
        common_shape(tasks)?;
        let mut total = 0.0;
        for t in tasks {
            total += (self.predict(t)? - t.y_q).powi(2);
        }
        Ok(total / tasks.len() as f64)
    }
}

/// The learning rate of one-step GD that minimises the squared error on `tasks`. The
/// prediction is `eta * a` with `a = x_q.X^T y / N`, so the exact minimiser is
/// `sum a y_q / sum a^2`.
pub fn line_search_gd1(tasks: &[Task]) -> Result<f64> {
    common_shape(tasks)?;
    let (mut ay, mut aa) = (0.0, 0.0);
    for t in tasks {
        let a = t.x_q.dot(&t.xs.t().dot(&t.ys)) / t.xs.nrows() as f64;
        ay += a * t.y_q;
        aa += a * a;
    }
    if aa <= 0.0 {
        return Err(IclError::InvalidTasks(
            "all one-step GD predictions are zero; the learning rate is undetermined".into(),
        ));
    }
    Ok(ay / aa)
}

/// The learning rate of `steps`-step GD that minimises the squared error on `tasks`, by
/// golden-section search on `log eta` over `[1e-3, 2]` (beyond `2 / lambda_max` of a typical
/// Gram matrix GD diverges).
pub fn line_search_gdk(tasks: &[Task], steps: usize) -> Result<f64> {
    let loss = |log_eta: f64| {
        Learner::GdK {
            eta: log_eta.exp(),
            steps,
        }
        .mse(tasks)
    };
    let (mut lo, mut hi) = (1e-3f64.ln(), 2f64.ln());
    let ratio = (5f64.sqrt() - 1.0) / 2.0;
    let mut a = hi - ratio * (hi - lo);
    let mut b = lo + ratio * (hi - lo);
    let (mut fa, mut fb) = (loss(a)?, loss(b)?);
    for _ in 0..60 {
        if fa < fb {
            hi = b;
            b = a;
            fb = fa;
            a = hi - ratio * (hi - lo);
            fa = loss(a)?;
        } else {
            lo = a;
            a = b;
            fa = fb;
            b = lo + ratio * (hi - lo);
            fb = loss(b)?;
        }
    }
    Ok(((lo + hi) / 2.0).exp())
}

/// Solves `a x = b` by Gaussian elimination with partial pivoting; a (numerically) singular
/// `a` is an error, never a silent garbage answer.
pub fn solve(mut a: Array2<f64>, mut b: Array1<f64>) -> Result<Array1<f64>> {
    let n = a.nrows();
    let scale = a.iter().fold(0.0f64, |m, v| m.max(v.abs())).max(1e-300);
    for col in 0..n {
        let pivot = (col..n)
            .max_by(|&i, &j| a[[i, col]].abs().total_cmp(&a[[j, col]].abs()))
            .expect("non-empty range");
        if a[[pivot, col]].abs() <= 1e-12 * scale {
            return Err(IclError::InvalidTasks(
                "singular system (too few or collinear context examples)".into(),
            ));
        }
        if pivot != col {
            for k in 0..n {
                a.swap([pivot, k], [col, k]);
            }
            b.swap(pivot, col);
        }
        for row in col + 1..n {
            let f = a[[row, col]] / a[[col, col]];
            if f != 0.0 {
                for k in col..n {
                    a[[row, k]] -= f * a[[col, k]];
                }
                b[row] -= f * b[col];
            }
        }
    }
    let mut x = Array1::zeros(n);
    for row in (0..n).rev() {
        let s: f64 = (row + 1..n).map(|k| a[[row, k]] * x[k]).sum();
        x[row] = (b[row] - s) / a[[row, row]];
    }
    Ok(x)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn solve_inverts_a_small_system() {
        let a = array![[2.0, 1.0], [1.0, 3.0]];
        let x = solve(a, array![3.0, 5.0]).unwrap();
        assert!((x[0] - 0.8).abs() < 1e-12 && (x[1] - 1.4).abs() < 1e-12);
    }

    #[test]
    fn solve_refuses_a_singular_system() {
        assert!(solve(array![[1.0, 2.0], [2.0, 4.0]], array![1.0, 2.0]).is_err());
    }
}
