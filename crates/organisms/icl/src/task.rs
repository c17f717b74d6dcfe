//! In-context linear regression tasks and their token encoding.
//!
//! A task is a weight vector `w`, `N` context pairs `(x_i, y_i = w.x_i + noise)` and a query
//! `x_q` with target `y_q`. The model reads the sequence `e_i = (x_i, y_i)` for `i = 1..N`, then
//! `(x_q, 0)`, each token a vector of width `d + 1`, and is trained to output `y_q` at the
//! query position (von Oswald et al. 2023).

use mesa_nn::{Input, Targets};
use ndarray::{Array1, Array2, Array3};
use rand::Rng;
use rand_distr::{Distribution, StandardNormal};

use crate::config::{TaskConfig, XDist};
use crate::error::{IclError, Result};

/// One regression problem, in f64 (the reference learners are computed exactly).
#[derive(Clone, Debug, PartialEq)]
pub struct Task {
    pub w: Array1<f64>,
    /// Context inputs `[N, d]`.
    pub xs: Array2<f64>,
    /// Context labels `[N]`.
    pub ys: Array1<f64>,
    pub x_q: Array1<f64>,
    pub y_q: f64,
}

/// Where a sequence's weight vector comes from: the one thing that differs between the
/// in-context learner and its controls.
#[derive(Clone, Debug, PartialEq)]
pub enum TaskSource {
    /// A fresh `w ~ N(0, I_d)` per sequence: the model must solve each task in context.
    Fresh,
    /// Always the same `w`: the model can memorise it and ignore the context.
    Fixed(Array1<f64>),
    /// One of a small fixed pool, uniformly: the model can identify the pool member.
    Pool(Vec<Array1<f64>>),
}

impl TaskSource {
    /// The fixed-w control's source: one `w ~ N(0, I_d)` drawn from `rng`.
    pub fn fixed(d: usize, rng: &mut impl Rng) -> Self {
        TaskSource::Fixed(gaussian_vector(d, rng))
    }

    /// The few-tasks control's source: `m` weight vectors drawn from `rng`.
    pub fn pool(d: usize, m: usize, rng: &mut impl Rng) -> Self {
        TaskSource::Pool((0..m).map(|_| gaussian_vector(d, rng)).collect())
    }

    fn draw_w(&self, d: usize, rng: &mut impl Rng) -> Array1<f64> {
        match self {
            TaskSource::Fresh => gaussian_vector(d, rng),
            TaskSource::Fixed(w) => w.clone(),
            TaskSource::Pool(ws) => ws[rng.gen_range(0..ws.len())].clone(),
        }
    }
}

fn gaussian_vector(d: usize, rng: &mut impl Rng) -> Array1<f64> {
    Array1::from_shape_fn(d, |_| StandardNormal.sample(rng))
}

fn draw_x(d: usize, dist: XDist, rng: &mut impl Rng) -> Array1<f64> {
    match dist {
        XDist::Gaussian => gaussian_vector(d, rng),
        XDist::Uniform => {
            let a = 3f64.sqrt();
            Array1::from_shape_fn(d, |_| rng.gen_range(-a..a))
        }
    }
}

/// One task with `n_context` context examples (which may differ from the config's `N`, to
/// measure loss against context length).
pub fn sample_task(
    config: &TaskConfig,
    source: &TaskSource,
    n_context: usize,
    rng: &mut impl Rng,
) -> Task {
    let d = config.d;
    let w = source.draw_w(d, rng);
    let label = |x: &Array1<f64>, rng: &mut _| {
        let noise: f64 = StandardNormal.sample(rng);
        x.dot(&w) + config.noise_std * noise
    };
    let mut xs = Array2::zeros((n_context, d));
    let mut ys = Array1::zeros(n_context);
    for i in 0..n_context {
        let x = draw_x(d, config.x_dist, rng);
        ys[i] = label(&x, rng);
        xs.row_mut(i).assign(&x);
    }
    let x_q = draw_x(d, config.x_dist, rng);
    let y_q = label(&x_q, rng);
    Task {
        w,
        xs,
        ys,
        x_q,
        y_q,
    }
}

/// `count` tasks of `n_context` examples each.
pub fn sample_tasks(
    config: &TaskConfig,
    source: &TaskSource,
    count: usize,
    n_context: usize,
    rng: &mut impl Rng,
) -> Vec<Task> {
    (0..count)
        .map(|_| sample_task(config, source, n_context, rng))
        .collect()
}

/// Shape `(N, d)` shared by all tasks, or an error naming the first mismatch.
pub fn common_shape(tasks: &[Task]) -> Result<(usize, usize)> {
    let first = tasks
        .first()
        .ok_or_else(|| IclError::InvalidTasks("no tasks".into()))?;
    let shape = first.xs.dim();
    for (i, t) in tasks.iter().enumerate() {
        if t.xs.dim() != shape || t.ys.len() != shape.0 || t.x_q.len() != shape.1 {
            return Err(IclError::InvalidTasks(format!(
                "task {i} has shape {:?}, task 0 has {shape:?}",
                t.xs.dim()
            )));
        }
    }
    Ok(shape)
}

/// Model input `[tasks, N + 1, d + 1]`: rows `(x_i, y_i)`, then `(x_q, 0)`.
pub fn encode(tasks: &[Task]) -> Result<Input> {
    let (n, d) = common_shape(tasks)?;
    let mut v = Array3::<f32>::zeros((tasks.len(), n + 1, d + 1));
    for (b, t) in tasks.iter().enumerate() {
        for i in 0..n {
            for j in 0..d {
                v[[b, i, j]] = t.xs[[i, j]] as f32;
            }
            v[[b, i, d]] = t.ys[i] as f32;
        }
        for j in 0..d {
            v[[b, n, j]] = t.x_q[j] as f32;
        }
    }
    Ok(Input::Vectors(v))
}

/// Input and regression targets: `y_q` at the query position, weight 1 there and 0 elsewhere.
pub fn training_batch(tasks: &[Task]) -> Result<(Input, Targets)> {
    let input = encode(tasks)?;
    let (n, _) = common_shape(tasks)?;
    let mut values = Array3::zeros((tasks.len(), n + 1, 1));
    let mut weights = Array2::zeros((tasks.len(), n + 1));
    for (b, t) in tasks.iter().enumerate() {
        values[[b, n, 0]] = t.y_q as f32;
        weights[[b, n]] = 1.0;
    }
    Ok((input, Targets::Values { values, weights }))
}

/// The model's prediction `y_hat` at the query position of each task.
pub fn query_predictions(logits: &Array3<f32>) -> Array1<f64> {
    let last = logits.shape()[1] - 1;
    logits.slice(ndarray::s![.., last, 0]).mapv(f64::from)
}
