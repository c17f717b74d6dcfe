//! The fingerprint's parts: what a model predicts, how its prediction responds to the query,
//! the linear map it implies, and what a linear probe reads from its activations.

use dfdx::prelude::*;
use mesa_nn::{CacheFilter, HookPoint, Hooks, TapedLogits, TapedScalar, Transformer};
use ndarray::{s, Array1, Array2, Axis};
use rand::rngs::StdRng;
use rand_distr::{Distribution, StandardNormal};

use crate::error::{GdfpError, Result};
use crate::tasks::RegressionTasks;

fn check_width(model: &Transformer, tasks: &RegressionTasks) -> Result<()> {
    let want = model.config().d_in();
    if want != tasks.dim() + 1 || model.config().d_out == 0 {
        return Err(GdfpError::InvalidTasks(format!(
            "the model reads tokens of width {want}, tasks of dimension {} make width {}",
            tasks.dim(),
            tasks.dim() + 1
        )));
    }
    Ok(())
}

/// The model's prediction `y_hat` at the query of each task `[T]`.
pub fn predictions(model: &Transformer, tasks: &RegressionTasks) -> Result<Array1<f64>> {
    check_width(model, tasks)?;
    let logits = model.forward(&tasks.encode())?;
    let last = logits.shape()[1] - 1;
    Ok(logits.slice(s![.., last, 0]).mapv(f64::from))
}

/// `d y_hat / d x_q` per task `[T, d]`, by dfdx gradients through the model: the gradient
/// with respect to the embedding at the query position, mapped back through the (linear)
/// input layer `W_in`.
pub fn sensitivities(model: &Transformer, tasks: &RegressionTasks) -> Result<Array2<f64>> {
    check_width(model, tasks)?;
    let input = tasks.encode();
    let (t, s, d) = (tasks.len(), input.seq_len(), tasks.dim());
    // Each task's prediction depends only on its own sequence, so the gradient of the sum of
    // predictions gives every task's own gradient.
    let objective = move |logits: TapedLogits| -> TapedScalar {
        let dev = logits.device().clone();
        let mask: Tensor<(usize, usize, usize), f32, Cpu> = dev.tensor_from_vec(
            (0..t * s)
                .map(|i| if i % s == s - 1 { 1.0 } else { 0.0 })
                .collect(),
            (t, s, 1),
        );
        (logits.slice((.., .., 0..1)) * mask).sum()
    };
    let (_, grads) =
        model.activation_gradients(&input, &Hooks::new(), &[HookPoint::Embed], objective)?;
    let g = &grads[&HookPoint::Embed]; // [T, pos, d_model]
    let w_in = model
        .named_params()
        .into_iter()
        .find(|(name, _, _)| name == "embed.W_in")
        .ok_or_else(|| GdfpError::InvalidTasks("the model has no vector input layer".into()))?;
    let d_model = w_in.1[1];
    let w_in = Array2::from_shape_vec((w_in.1[0], d_model), w_in.2)
        .map_err(|e| GdfpError::InvalidTasks(e.to_string()))?
        .mapv(f64::from);
    let mut out = Array2::zeros((t, d));
    for b in 0..t {
        let gq = Array1::from_shape_fn(d_model, |k| f64::from(g[[b, s - 1, k]]));
        out.row_mut(b).assign(&w_in.slice(s![..d, ..]).dot(&gq));
    }
    Ok(out)
}

/// The linear map `y_hat = w.x + c` the model implies for each task's context, fitted by
/// least squares to its predictions at `queries` fresh Gaussian queries (Akyurek et al. 2023).
/// Returns `w` per task `[T, d]`.
pub fn implied_weights(
    model: &Transformer,
    tasks: &RegressionTasks,
    queries: usize,
    rng: &mut StdRng,
) -> Result<Array2<f64>> {
    let (t, d) = (tasks.len(), tasks.dim());
    let mut xq = Vec::with_capacity(queries);
    let mut yhat = Vec::with_capacity(queries);
    for _ in 0..queries {
        let q = Array2::from_shape_fn((t, d), |_| StandardNormal.sample(rng));
        yhat.push(predictions(model, &tasks.with_queries(q.clone())?)?);
        xq.push(q);
    }
    let mut out = Array2::zeros((t, d));
    for b in 0..t {
        let design =
            Array2::from_shape_fn(
                (queries, d + 1),
                |(p, j)| {
                    if j < d {
                        xq[p][[b, j]]
                    } else {
                        1.0
                    }
                },
            );
        let target = Array2::from_shape_fn((queries, 1), |(p, _)| yhat[p][b]);
        let coef = solve(design.t().dot(&design), design.t().dot(&target))
            .ok_or(GdfpError::Singular("implied weights"))?;
        out.row_mut(b).assign(&coef.slice(s![..d, 0]));
    }
    Ok(out)
}

/// `E[(y_hat - y_ref)^2] / E[y_q^2]`: prediction difference against the task's scale.
pub fn prediction_diff(y_hat: &Array1<f64>, y_ref: &Array1<f64>, y_q: &Array1<f64>) -> f64 {
    let diff = (y_hat - y_ref).mapv(|v| v * v).sum();
    diff / y_q.mapv(|v| v * v).sum().max(f64::MIN_POSITIVE)
}

/// Mean over rows of the cosine between `a` and `b` (a zero row counts as cosine 0).
pub fn mean_cosine(a: &Array2<f64>, b: &Array2<f64>) -> f64 {
    let cos = a.outer_iter().zip(b.outer_iter()).map(|(x, y)| {
        let n = (x.dot(&x) * y.dot(&y)).sqrt();
        if n > 0.0 {
            x.dot(&y) / n
        } else {
            0.0
        }
    });
    cos.sum::<f64>() / a.nrows().max(1) as f64
}

/// `E ||w_model - w_ref||^2 / E ||w_ref||^2`: the implied-weights difference (ILWD), relative,
/// so that a model that implies `w = 0` scores 1.
pub fn ilwd(w_model: &Array2<f64>, w_ref: &Array2<f64>) -> f64 {
    let diff = (w_model - w_ref).mapv(|v| v * v).sum();
    diff / w_ref.mapv(|v| v * v).sum().max(f64::MIN_POSITIVE)
}

/// Activations at the query position: `resid_post` of every layer, concatenated
/// `[T, n_layers * d_model]`.
pub fn query_features(model: &Transformer, tasks: &RegressionTasks) -> Result<Array2<f64>> {
    check_width(model, tasks)?;
    let layers = model.config().n_layers;
    let points: Vec<HookPoint> = (0..layers).map(HookPoint::resid_post).collect();
    let (_, cache) = model.run_with_cache(&tasks.encode(), &CacheFilter::Only(points.clone()))?;
    let mut blocks = Vec::with_capacity(layers);
    for p in points {
        let a = cache.array3(p)?;
        let last = a.shape()[1] - 1;
        blocks.push(a.slice(s![.., last, ..]).mapv(f64::from));
    }
    let views: Vec<_> = blocks.iter().map(|b| b.view()).collect();
    ndarray::concatenate(Axis(1), &views).map_err(|e| GdfpError::InvalidTasks(e.to_string()))
}

/// A fitted ridge probe `Y ~ (F - mean_F) B + mean_Y`.
#[derive(Clone, Debug)]
pub struct RidgeProbe {
    mean_f: Array1<f64>,
    mean_y: Array1<f64>,
    coef: Array2<f64>,
}

impl RidgeProbe {
    /// Fits with penalty `lambda` times the mean feature variance (so one grid of lambdas
    /// fits activations of any scale).
    pub fn fit(features: &Array2<f64>, targets: &Array2<f64>, lambda: f64) -> Result<Self> {
        let mean_f = features
            .mean_axis(Axis(0))
            .ok_or(GdfpError::Singular("probe (no rows)"))?;
        let mean_y = targets
            .mean_axis(Axis(0))
            .ok_or(GdfpError::Singular("probe (no rows)"))?;
        let f = features - &mean_f;
        let y = targets - &mean_y;
        let mut gram = f.t().dot(&f);
        let p = gram.nrows();
        let scale = (0..p).map(|i| gram[[i, i]]).sum::<f64>() / p.max(1) as f64;
        for i in 0..p {
            gram[[i, i]] += lambda * scale.max(1e-12);
        }
        let coef = solve(gram, f.t().dot(&y)).ok_or(GdfpError::Singular("ridge probe"))?;
        Ok(Self {
            mean_f,
            mean_y,
            coef,
        })
    }

    pub fn predict(&self, features: &Array2<f64>) -> Array2<f64> {
        (features - &self.mean_f).dot(&self.coef) + &self.mean_y
    }

    /// `1 - SSE / SST`, pooled over outputs, with `SST` around the probe's training mean.
    pub fn r2(&self, features: &Array2<f64>, targets: &Array2<f64>) -> f64 {
        let sse = (self.predict(features) - targets).mapv(|v| v * v).sum();
        let sst = (targets - &self.mean_y).mapv(|v| v * v).sum();
        1.0 - sse / sst.max(f64::MIN_POSITIVE)
    }
}

/// Fits ridge probes over `lambdas` on the first part of `(features, targets)`, picks the
/// lambda with the best R^2 on the rest (validation), and refits on all of it.
pub fn fit_probe_validated(
    features: &Array2<f64>,
    targets: &Array2<f64>,
    lambdas: &[f64],
    validation_fraction: f64,
) -> Result<RidgeProbe> {
    let n = features.nrows();
    let n_val = ((n as f64) * validation_fraction).round() as usize;
    let n_fit = n - n_val;
    if n_fit < 2 || n_val < 2 {
        return Err(GdfpError::InvalidTasks(format!(
            "{n} fit tasks are too few to split into fit and validation"
        )));
    }
    let (ff, fv) = (
        features.slice(s![..n_fit, ..]).to_owned(),
        features.slice(s![n_fit.., ..]).to_owned(),
    );
    let (yf, yv) = (
        targets.slice(s![..n_fit, ..]).to_owned(),
        targets.slice(s![n_fit.., ..]).to_owned(),
    );
    let mut best = (f64::NEG_INFINITY, lambdas[0]);
    for &l in lambdas {
        let r2 = RidgeProbe::fit(&ff, &yf, l)?.r2(&fv, &yv);
        if r2 > best.0 {
            best = (r2, l);
        }
    }
    RidgeProbe::fit(features, targets, best.1)
}

/// Solves `a x = b` (several right-hand sides) by Gaussian elimination with partial pivoting;
/// `None` when `a` is numerically singular.
pub fn solve(mut a: Array2<f64>, mut b: Array2<f64>) -> Option<Array2<f64>> {
    let n = a.nrows();
    let scale = a.iter().fold(0.0f64, |m, v| m.max(v.abs())).max(1e-300);
    for col in 0..n {
        let pivot = (col..n).max_by(|&i, &j| a[[i, col]].abs().total_cmp(&a[[j, col]].abs()))?;
        if a[[pivot, col]].abs() <= 1e-12 * scale {
            return None;
        }
        if pivot != col {
            for k in 0..n {
                a.swap([pivot, k], [col, k]);
            }
            for k in 0..b.ncols() {
                b.swap([pivot, k], [col, k]);
            }
        }
        for row in col + 1..n {
            let f = a[[row, col]] / a[[col, col]];
            if f != 0.0 {
                for k in col..n {
                    a[[row, k]] -= f * a[[col, k]];
                }
                for k in 0..b.ncols() {
                    b[[row, k]] -= f * b[[col, k]];
                }
            }
        }
    }
    let mut x = Array2::zeros(b.dim());
    for row in (0..n).rev() {
        for c in 0..b.ncols() {
            let s: f64 = (row + 1..n).map(|k| a[[row, k]] * x[[k, c]]).sum();
            x[[row, c]] = (b[[row, c]] - s) / a[[row, row]];
        }
    }
    Some(x)
}
