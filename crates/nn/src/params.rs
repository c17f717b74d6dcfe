//! Parameter storage shared by the model, the optimizer and checkpoints.

use dfdx::prelude::*;
use rand::Rng;
use rand_distr::{Distribution, Normal};

/// A vector parameter (bias, LayerNorm gain).
pub type Vector = Tensor<(usize,), f32, Cpu>;
/// A matrix parameter, stored `[in, out]` so that `x.matmul(w)` applies it.
pub type Matrix = Tensor<(usize, usize), f32, Cpu>;

/// A mutable view of one parameter, whatever its rank.
pub enum ParamMut<'a> {
    Vector(&'a mut Vector),
    Matrix(&'a mut Matrix),
}

impl ParamMut<'_> {
    pub fn dims(&self) -> Vec<usize> {
        match self {
            ParamMut::Vector(t) => vec![t.shape().0],
            ParamMut::Matrix(t) => vec![t.shape().0, t.shape().1],
        }
    }
    pub fn values(&self) -> Vec<f32> {
        match self {
            ParamMut::Vector(t) => dense_values(*t),
            ParamMut::Matrix(t) => dense_values(*t),
        }
    }
    pub fn set_values(&mut self, values: &[f32]) {
        match self {
            ParamMut::Vector(t) => t.copy_from(values),
            ParamMut::Matrix(t) => t.copy_from(values),
        }
    }
    /// Gradient of this parameter; zeros if it took no part in the backward pass.
    pub fn gradient(&self, grads: &mut Gradients<f32, Cpu>) -> Vec<f32> {
        // Allocating first makes the lookup total: an unused parameter gets a zero gradient
        // instead of a panic inside dfdx.
        match self {
            ParamMut::Vector(t) => {
                let _ = grads.try_alloc_for(*t);
                dense_values(&grads.get(*t))
            }
            ParamMut::Matrix(t) => {
                let _ = grads.try_alloc_for(*t);
                dense_values(&grads.get(*t))
            }
        }
    }
}

/// The values of a contiguous tensor, by one `memcpy`. dfdx's `as_vec` walks a strided
/// iterator element by element, which cost a fifth of a forward pass. Every tensor this crate
/// reads is contiguous (hook sites and custom ops make it so); a broadcast view would have fewer
/// stored values than elements and panic here rather than be misread.
pub(crate) fn dense_values<S: Shape, T>(t: &Tensor<S, f32, Cpu, T>) -> Vec<f32> {
    let mut values = vec![0.0; t.shape().num_elements()];
    t.copy_into(&mut values);
    values
}

pub(crate) fn normal_matrix(
    dev: &Cpu,
    rng: &mut impl Rng,
    rows: usize,
    cols: usize,
    std: f32,
) -> Matrix {
    let normal = Normal::new(0.0f32, std).expect("std is positive");
    let data = (0..rows * cols).map(|_| normal.sample(rng)).collect();
    dev.tensor_from_vec(data, (rows, cols))
}

pub(crate) fn constant_vector(dev: &Cpu, len: usize, value: f32) -> Vector {
    dev.tensor_from_vec(vec![value; len], (len,))
}
