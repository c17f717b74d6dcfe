//! Elementwise kernels with their own backward pass, where dfdx's generic kernels cost most.
//!
//! Profiling a `Small` training step showed a third of the time in glibc's `tanhf` (through
//! `expm1f`) inside dfdx's GELU, forward and backward. This GELU computes the same tanh
//! approximation with `tanh(u) = 1 - 2 / (exp(2u) + 1)` and a polynomial `exp` that
//! vectorises; `fused::linear` applies it to a product's output in the same op. LayerNorm
//! (seven dfdx ops) is one op here, with its own backward. The matrix-product ops (linear
//! layers, fused Q/K/V, attention) are in `fused.rs`.

use dfdx::prelude::*;

use crate::params::dense_values;

const SQRT_2_OVER_PI: f32 = 0.797_884_6;
const GELU_CUBIC: f32 = 0.044_715;

/// `exp(x)` to about 2 ulp, branch-free so that loops over slices vectorise: `x = n ln2 + r`,
/// a degree-6 polynomial for `exp(r)` on `|r| <= ln2 / 2`, and `2^n` put into the exponent bits.
#[inline]
fn fast_exp(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    const LN2_HI: f32 = 0.693_145_75;
    const LN2_LO: f32 = 1.428_606_8e-6;
    let x = x.clamp(-87.0, 88.0);
    let n = (x * LOG2E).round();
    let r = x - n * LN2_HI - n * LN2_LO;
    let p = 1.0
        + r * (1.0
            + r * (0.5
                + r * (1.0 / 6.0 + r * (1.0 / 24.0 + r * (1.0 / 120.0 + r * (1.0 / 720.0))))));
    p * f32::from_bits(((n as i32 + 127) as u32) << 23)
}

/// GELU (tanh approximation, as dfdx's `fast_gelu`) of `v`, and its derivative there.
#[inline]
pub(crate) fn gelu_with_slope(v: f32) -> (f32, f32) {
    let u = SQRT_2_OVER_PI * (v + GELU_CUBIC * v * v * v);
    // tanh(u) = 1 - 2 / (exp(2u) + 1); exp saturates, so t is exactly +-1 far out.
    let t = 1.0 - 2.0 / (fast_exp(2.0 * u) + 1.0);
    let du = SQRT_2_OVER_PI * (1.0 + 3.0 * GELU_CUBIC * v * v);
    (
        0.5 * v * (1.0 + t),
        0.5 * (1.0 + t) + 0.5 * v * (1.0 - t * t) * du,
    )
}

/// Rows of the last axis: `(number of rows, row length)`.
fn rows<S: Shape>(shape: &S) -> (usize, usize) {
    let dims = shape.concrete();
    let n = dims.into_iter().last().unwrap_or(1);
    (shape.num_elements() / n.max(1), n)
}

/// LayerNorm over the last axis: `(x - mean) / sqrt(var + eps) * w + b`, biased variance as
/// PyTorch and TransformerLens compute it.
pub(crate) fn layer_norm<S: Shape, T: Tape<f32, Cpu>>(
    x: Tensor<S, f32, Cpu, T>,
    w: &Tensor<(usize,), f32, Cpu>,
    b: &Tensor<(usize,), f32, Cpu>,
    eps: f32,
) -> Tensor<S, f32, Cpu, T> {
    let x = x.contiguous();
    let (x, mut tape) = x.split_tape();
    let (m, n) = rows(x.shape());
    let (gain, bias) = (dense_values(w), dense_values(b));
    let input = dense_values(&x);
    let mut normalized = vec![0.0f32; input.len()];
    let mut inv_std = vec![0.0f32; m];
    let mut out = vec![0.0f32; input.len()];
    for r in 0..m {
        let row = &input[r * n..(r + 1) * n];
        let mean = row.iter().sum::<f32>() / n as f32;
        let var = row.iter().map(|v| (v - mean) * (v - mean)).sum::<f32>() / n as f32;
        let istd = 1.0 / (var + eps).sqrt();
        inv_std[r] = istd;
        for j in 0..n {
            let xh = (row[j] - mean) * istd;
            normalized[r * n + j] = xh;
            out[r * n + j] = xh * gain[j] + bias[j];
        }
    }
    let out = x.device().tensor_from_vec(out, *x.shape());
    if T::OWNS_TAPE {
        let (x_ghost, w_ghost, b_ghost, out_ghost) = (x.ghost(), w.ghost(), b.ghost(), out.ghost());
        tape.add_backward_op(move |grads| {
            let grad_out = std::mem::take(&mut **grads.get_or_alloc_mut(&out_ghost)?);
            {
                let grad_w = grads.get_or_alloc_mut(&w_ghost)?;
                for r in 0..m {
                    for j in 0..n {
                        grad_w[j] += grad_out[r * n + j] * normalized[r * n + j];
                    }
                }
            }
            {
                let grad_b = grads.get_or_alloc_mut(&b_ghost)?;
                for row in grad_out.chunks_exact(n) {
                    for (gb, go) in grad_b.iter_mut().zip(row) {
                        *gb += go;
                    }
                }
            }
            let grad_x = grads.get_or_alloc_mut(&x_ghost)?;
            let mut g_hat = vec![0.0f32; n];
            for r in 0..m {
                let xh = &normalized[r * n..(r + 1) * n];
                let mut mean_g = 0.0f32;
                let mut mean_gx = 0.0f32;
                for j in 0..n {
                    g_hat[j] = grad_out[r * n + j] * gain[j];
                    mean_g += g_hat[j];
                    mean_gx += g_hat[j] * xh[j];
                }
                mean_g /= n as f32;
                mean_gx /= n as f32;
                for j in 0..n {
                    grad_x[r * n + j] += inv_std[r] * (g_hat[j] - mean_g - xh[j] * mean_gx);
                }
            }
            **grads.get_or_alloc_mut(&out_ghost)? = grad_out;
            Ok(())
        });
    }
    out.put_tape(tape)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fast_exp_is_accurate_over_the_range_used() {
        for i in -4000..=4000 {
            let x = i as f32 * 0.02;
            let (ours, exact) = (fast_exp(x), (x as f64).exp());
            assert!(
                ((ours as f64 - exact) / exact).abs() < 1e-6,
                "exp({x}): {ours} vs {exact}"
            );
        }
        // Far outside the range the input is clamped: tiny and huge, never 0 * inf or NaN.
        assert!(fast_exp(-200.0) > 0.0 && fast_exp(-200.0) < 1e-37);
        assert!(fast_exp(200.0).is_finite() && fast_exp(200.0) > 1e38);
    }

    fn sample(dev: &Cpu, n: usize, seed: u32) -> Vec<f32> {
        let _ = dev;
        (0..n)
            .map(|i| (((i as u32).wrapping_mul(2_654_435_761) ^ seed) % 1000) as f32 / 250.0 - 2.0)
            .collect()
    }

    #[test]
    fn layer_norm_matches_dfdx_normalize_forward_and_backward() {
        let dev = Cpu::default();
        let shape = (2usize, 3usize, 8usize);
        let x: Tensor<(usize, usize, usize), f32, Cpu> =
            dev.tensor_from_vec(sample(&dev, 48, 5), shape);
        let g: Tensor<(usize,), f32, Cpu> = dev.tensor_from_vec(sample(&dev, 8, 6), (8,));
        let b: Tensor<(usize,), f32, Cpu> = dev.tensor_from_vec(sample(&dev, 8, 7), (8,));
        let w: Tensor<(usize, usize, usize), f32, Cpu> =
            dev.tensor_from_vec(sample(&dev, 48, 8), shape);
        let ours = layer_norm(x.leaky_trace(), &g, &b, 1e-5);
        let theirs = x.leaky_trace().normalize::<Axis<2>>(1e-5)
            * g.leaky_trace().broadcast_like::<_, Axes2<0, 1>>(&shape)
            + b.leaky_trace().broadcast_like::<_, Axes2<0, 1>>(&shape);
        for (a, c) in ours.as_vec().iter().zip(theirs.as_vec()) {
            assert!((a - c).abs() < 1e-5, "forward {a} vs {c}");
        }
        let g1 = (ours * w.clone()).sum().backward();
        let g2 = (theirs * w).sum().backward();
        for t in [g1
            .get(&x)
            .as_vec()
            .into_iter()
            .zip(g2.get(&x).as_vec())
            .collect::<Vec<_>>()]
        {
            for (a, c) in t {
                assert!((a - c).abs() < 1e-4, "grad x {a} vs {c}");
            }
        }
        for (a, c) in g1.get(&g).as_vec().iter().zip(g2.get(&g).as_vec()) {
            assert!((a - c).abs() < 1e-4, "grad gain {a} vs {c}");
        }
    }
}
