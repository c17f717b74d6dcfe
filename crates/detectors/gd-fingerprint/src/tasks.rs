//! The regression tasks a fingerprint is measured on, as plain arrays: the detector knows no
//! organism, only the in-context regression format.

use mesa_nn::Input;
use ndarray::{s, Array1, Array2, Array3, Axis};

use crate::error::{GdfpError, Result};

/// `T` regression tasks: contexts `xs [T, N, d]`, `ys [T, N]`, queries `x_q [T, d]`,
/// targets `y_q [T]`.
///
/// The model is shown each task as the token sequence `(x_1, y_1), ..., (x_N, y_N), (x_q, 0)`
/// (tokens of width `d + 1`) and its prediction is read at the last position, output 0: the
/// format of von Oswald et al. (2023) and of `mesa-icl`.
#[derive(Clone, Debug, PartialEq)]
pub struct RegressionTasks {
    pub xs: Array3<f64>,
    pub ys: Array2<f64>,
    pub x_q: Array2<f64>,
    pub y_q: Array1<f64>,
}

impl RegressionTasks {
    /// Checks the shapes agree and the values are finite.
    pub fn new(
        xs: Array3<f64>,
        ys: Array2<f64>,
        x_q: Array2<f64>,
        y_q: Array1<f64>,
    ) -> Result<Self> {
        let (t, n, d) = xs.dim();
        if t == 0 || n == 0 || d == 0 {
            return Err(GdfpError::InvalidTasks(format!(
                "empty task set: xs has shape [{t}, {n}, {d}]"
            )));
        }
        if ys.dim() != (t, n) || x_q.dim() != (t, d) || y_q.len() != t {
            return Err(GdfpError::InvalidTasks(format!(
                "xs [{t}, {n}, {d}] needs ys [{t}, {n}], x_q [{t}, {d}], y_q [{t}]; got {:?}, {:?}, [{}]",
                ys.dim(),
                x_q.dim(),
                y_q.len()
            )));
        }
        let finite = xs
            .iter()
            .chain(&ys)
            .chain(&x_q)
            .chain(&y_q)
            .all(|v| v.is_finite());
        if !finite {
            return Err(GdfpError::InvalidTasks("NaN or inf in the tasks".into()));
        }
        Ok(Self { xs, ys, x_q, y_q })
    }

    pub fn len(&self) -> usize {
        self.xs.dim().0
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn dim(&self) -> usize {
        self.xs.dim().2
    }

    /// `X^T y / N` per task `[T, d]`: the one-step-GD direction from `w = 0`.
    pub fn xty(&self) -> Array2<f64> {
        let (t, n, d) = self.xs.dim();
        let mut out = Array2::zeros((t, d));
        for i in 0..t {
            let x = self.xs.index_axis(Axis(0), i);
            out.row_mut(i)
                .assign(&(x.t().dot(&self.ys.row(i)) / n as f64));
        }
        out
    }

    /// The same contexts with other queries `[T, d]` (targets unknown, set to 0).
    pub fn with_queries(&self, x_q: Array2<f64>) -> Result<Self> {
        let t = self.len();
        Self::new(self.xs.clone(), self.ys.clone(), x_q, Array1::zeros(t))
    }

    /// The tasks back from model inputs in this format (batches `[T_i, N + 1, d + 1]`, the
    /// query's `y` slot ignored), with the query targets `y_q` the caller knows. Values are
    /// the inputs' `f32`s.
    pub fn from_inputs(inputs: &[Input], y_q: &[f64]) -> Result<Self> {
        let mut batches = Vec::with_capacity(inputs.len());
        for input in inputs {
            match input {
                Input::Vectors(v) => batches.push(v.view()),
                Input::Tokens(_) => {
                    return Err(GdfpError::InvalidTasks(
                        "regression tasks are vectors, got tokens".into(),
                    ))
                }
            }
        }
        let v = ndarray::concatenate(Axis(0), &batches)
            .map_err(|e| GdfpError::InvalidTasks(format!("batches of unequal shape: {e}")))?;
        let (t, s, w) = v.dim();
        if s < 2 || w < 2 {
            return Err(GdfpError::InvalidTasks(format!(
                "inputs [{t}, {s}, {w}] hold no context example and query"
            )));
        }
        if y_q.len() != t {
            return Err(GdfpError::InvalidTasks(format!(
                "{} targets for {t} tasks",
                y_q.len()
            )));
        }
        let (n, d) = (s - 1, w - 1);
        let v = v.mapv(f64::from);
        Self::new(
            v.slice(s![.., ..n, ..d]).to_owned(),
            v.slice(s![.., ..n, d]).to_owned(),
            v.slice(s![.., n, ..d]).to_owned(),
            Array1::from(y_q.to_vec()),
        )
    }

    /// The line-searched learning rate of one-step GD from `w = 0` on these tasks (closed form:
    /// the least-squares scale of `x_q . X^T y / N` against `y_q`).
    pub fn line_search_gd1(&self) -> Result<f64> {
        let a = (&self.xty() * &self.x_q).sum_axis(Axis(1));
        let aa = a.dot(&a);
        if aa <= 0.0 {
            return Err(GdfpError::InvalidTasks(
                "all one-step GD predictions are zero; the learning rate is undetermined".into(),
            ));
        }
        Ok(a.dot(&self.y_q) / aa)
    }

    /// The model input `[T, N + 1, d + 1]`.
    pub fn encode(&self) -> Input {
        let (t, n, d) = self.xs.dim();
        let mut v = Array3::<f32>::zeros((t, n + 1, d + 1));
        v.slice_mut(s![.., ..n, ..d])
            .assign(&self.xs.mapv(|x| x as f32));
        v.slice_mut(s![.., ..n, d])
            .assign(&self.ys.mapv(|x| x as f32));
        v.slice_mut(s![.., n, ..d])
            .assign(&self.x_q.mapv(|x| x as f32));
        Input::Vectors(v)
    }
}
