//! Custom tensor ops with their own backward pass, where dfdx's generic kernels cost most.
//!
//! Profiling a `Small` training step showed a third of the time in glibc's `tanhf` (through
//! `expm1f`) inside dfdx's GELU, forward and backward. This GELU computes the same tanh
//! approximation with `tanh(u) = 1 - 2 / (exp(2u) + 1)` and a polynomial `exp` that
//! vectorises. The rest went to dfdx's generic broadcast kernels and the temporaries they
//! allocate: LayerNorm (seven ops), bias addition, and the scale + mask + softmax of attention
//! are fused here into one op each, with their own backward. (A hand-written attention that
//! read heads straight from the projections was tried and was slower than dfdx's per-head
//! matrix multiplies: 42 against 35 ms of CPU per step.)

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

/// GELU (tanh approximation, as dfdx's `fast_gelu`) with a hand-written backward pass.
pub(crate) fn gelu<S: Shape, T: Tape<f32, Cpu>>(
    x: Tensor<S, f32, Cpu, T>,
) -> Tensor<S, f32, Cpu, T> {
    let x = x.contiguous();
    let (x, mut tape) = x.split_tape();
    let input = dense_values(&x);
    let mut out = vec![0.0f32; input.len()];
    let mut slopes = vec![0.0f32; if T::OWNS_TAPE { input.len() } else { 0 }];
    for (o, &v) in out.iter_mut().zip(&input) {
        let u = SQRT_2_OVER_PI * (v + GELU_CUBIC * v * v * v);
        // tanh(u) = 1 - 2 / (exp(2u) + 1); exp saturates, so t is exactly +-1 far out.
        let t = 1.0 - 2.0 / (fast_exp(2.0 * u) + 1.0);
        *o = 0.5 * v * (1.0 + t);
    }
    if T::OWNS_TAPE {
        for (s, &v) in slopes.iter_mut().zip(&input) {
            let u = SQRT_2_OVER_PI * (v + GELU_CUBIC * v * v * v);
            let t = 1.0 - 2.0 / (fast_exp(2.0 * u) + 1.0);
            let du = SQRT_2_OVER_PI * (1.0 + 3.0 * GELU_CUBIC * v * v);
            *s = 0.5 * (1.0 + t) + 0.5 * v * (1.0 - t * t) * du;
        }
    }
    let out = x.device().tensor_from_vec(out, *x.shape());
    if T::OWNS_TAPE {
        let x_ghost = x.ghost();
        let out_ghost = out.ghost();
        tape.add_backward_op(move |grads| {
            // Borrow the output gradient by moving it out and back: dfdx's public API lends
            // one gradient buffer at a time.
            let grad_out = std::mem::take(&mut **grads.get_or_alloc_mut(&out_ghost)?);
            let grad_in = grads.get_or_alloc_mut(&x_ghost)?;
            for ((gi, go), s) in grad_in.iter_mut().zip(&grad_out).zip(&slopes) {
                *gi += go * s;
            }
            **grads.get_or_alloc_mut(&out_ghost)? = grad_out;
            Ok(())
        });
    }
    out.put_tape(tape)
}

/// Rows of the last axis: `(number of rows, row length)`.
fn rows<S: Shape>(shape: &S) -> (usize, usize) {
    let dims = shape.concrete();
    let n = dims.into_iter().last().unwrap_or(1);
    (shape.num_elements() / n.max(1), n)
}

/// `x + b` with `b` broadcast over every row of the last axis.
pub(crate) fn add_bias<S: Shape, T: Tape<f32, Cpu>>(
    x: Tensor<S, f32, Cpu, T>,
    b: &Tensor<(usize,), f32, Cpu>,
) -> Tensor<S, f32, Cpu, T> {
    let x = x.contiguous();
    let (x, mut tape) = x.split_tape();
    let (_, n) = rows(x.shape());
    assert_eq!(n, b.shape().0, "bias length matches the last axis");
    let bias = dense_values(b);
    let mut out = dense_values(&x);
    for row in out.chunks_exact_mut(n) {
        for (o, b) in row.iter_mut().zip(&bias) {
            *o += b;
        }
    }
    let out = x.device().tensor_from_vec(out, *x.shape());
    if T::OWNS_TAPE {
        let (x_ghost, b_ghost, out_ghost) = (x.ghost(), b.ghost(), out.ghost());
        tape.add_backward_op(move |grads| {
            let grad_out = std::mem::take(&mut **grads.get_or_alloc_mut(&out_ghost)?);
            for (gi, go) in grads.get_or_alloc_mut(&x_ghost)?.iter_mut().zip(&grad_out) {
                *gi += go;
            }
            let grad_b = grads.get_or_alloc_mut(&b_ghost)?;
            for row in grad_out.chunks_exact(n) {
                for (gb, go) in grad_b.iter_mut().zip(row) {
                    *gb += go;
                }
            }
            **grads.get_or_alloc_mut(&out_ghost)? = grad_out;
            Ok(())
        });
    }
    out.put_tape(tape)
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

/// Causal softmax attention pattern from raw scores `[batch, head, q, k]`:
/// `softmax_k(scale * scores[q, k])` over `k <= q`, exactly 0 for `k > q`.
pub(crate) fn causal_softmax<T: Tape<f32, Cpu>>(
    scores: Tensor<(usize, usize, usize, usize), f32, Cpu, T>,
    scale: f32,
) -> Tensor<(usize, usize, usize, usize), f32, Cpu, T> {
    let scores = scores.contiguous();
    let (scores, mut tape) = scores.split_tape();
    let s = scores.shape().3;
    let input = dense_values(&scores);
    let mut out = vec![0.0f32; input.len()];
    for (r, (row, o)) in input
        .chunks_exact(s)
        .zip(out.chunks_exact_mut(s))
        .enumerate()
    {
        let q = r % s;
        let max = row[..=q]
            .iter()
            .fold(f32::NEG_INFINITY, |a, &b| a.max(b * scale));
        let mut total = 0.0f32;
        for k in 0..=q {
            let e = (row[k] * scale - max).exp();
            o[k] = e;
            total += e;
        }
        for v in &mut o[..=q] {
            *v /= total;
        }
    }
    let out = scores.device().tensor_from_vec(out, *scores.shape());
    if T::OWNS_TAPE {
        let pattern = dense_values(&out);
        let (in_ghost, out_ghost) = (scores.ghost(), out.ghost());
        tape.add_backward_op(move |grads| {
            let grad_out = std::mem::take(&mut **grads.get_or_alloc_mut(&out_ghost)?);
            let grad_in = grads.get_or_alloc_mut(&in_ghost)?;
            for (r, ((p, go), gi)) in pattern
                .chunks_exact(s)
                .zip(grad_out.chunks_exact(s))
                .zip(grad_in.chunks_exact_mut(s))
                .enumerate()
            {
                let q = r % s;
                let dot: f32 = (0..=q).map(|k| p[k] * go[k]).sum();
                for k in 0..=q {
                    gi[k] += scale * p[k] * (go[k] - dot);
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
    fn add_bias_matches_dfdx_broadcast_add() {
        let dev = Cpu::default();
        let x: Tensor<(usize, usize, usize), f32, Cpu> =
            dev.tensor_from_vec(sample(&dev, 2 * 3 * 4, 1), (2, 3, 4));
        let b: Tensor<(usize,), f32, Cpu> = dev.tensor_from_vec(sample(&dev, 4, 2), (4,));
        let w: Tensor<(usize, usize, usize), f32, Cpu> =
            dev.tensor_from_vec(sample(&dev, 24, 3), (2, 3, 4));
        let ours = add_bias(x.leaky_trace(), &b);
        let theirs = x.leaky_trace() + b.leaky_trace().broadcast_like::<_, Axes2<0, 1>>(&(2, 3, 4));
        assert_eq!(ours.as_vec(), theirs.as_vec());
        let g1 = (ours * w.clone()).sum().backward();
        let g2 = (theirs * w).sum().backward();
        assert_eq!(g1.get(&x).as_vec(), g2.get(&x).as_vec());
        for (a, c) in g1.get(&b).as_vec().iter().zip(g2.get(&b).as_vec()) {
            assert!((a - c).abs() < 1e-5);
        }
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

    #[test]
    fn causal_softmax_matches_masked_dfdx_softmax() {
        let dev = Cpu::default();
        let shape = (2usize, 2usize, 5usize, 5usize);
        let x: Tensor<(usize, usize, usize, usize), f32, Cpu> =
            dev.tensor_from_vec(sample(&dev, 100, 9), shape);
        let w: Tensor<(usize, usize, usize, usize), f32, Cpu> =
            dev.tensor_from_vec(sample(&dev, 100, 10), shape);
        let mask: Vec<f32> = (0..25)
            .map(|i| {
                if i % 5 <= i / 5 {
                    0.0
                } else {
                    f32::NEG_INFINITY
                }
            })
            .collect();
        let mask: Tensor<(usize, usize), f32, Cpu> = dev.tensor_from_vec(mask, (5, 5));
        let ours = causal_softmax(x.leaky_trace(), 0.5);
        let theirs = (x.leaky_trace() * 0.5 + mask.broadcast_like::<_, Axes2<0, 1>>(&shape))
            .softmax::<Axis<3>>();
        for (a, c) in ours.as_vec().iter().zip(theirs.as_vec()) {
            assert!((a - c).abs() < 1e-6, "forward {a} vs {c}");
        }
        let g1 = (ours * w.clone()).sum().backward();
        let g2 = (theirs * w).sum().backward();
        for (a, c) in g1.get(&x).as_vec().iter().zip(g2.get(&x).as_vec()) {
            assert!((a - c).abs() < 1e-5, "grad {a} vs {c}");
        }
    }

    #[test]
    fn gelu_matches_dfdx_fast_gelu_forward_and_backward() {
        let dev = Cpu::default();
        let values: Vec<f32> = (-40..=40).map(|i| i as f32 * 0.25).collect();
        let x: Tensor<(usize,), f32, Cpu> = dev.tensor_from_vec(values.clone(), (values.len(),));
        let ours = gelu(x.leaky_trace());
        let theirs = x.leaky_trace().fast_gelu();
        for (a, b) in ours.as_vec().iter().zip(theirs.as_vec()) {
            assert!((a - b).abs() < 1e-5, "forward {a} vs {b}");
        }
        let g_ours = (ours * 1.0).sum().backward();
        let g_theirs = theirs.sum().backward();
        for (a, b) in g_ours
            .get(&x)
            .as_vec()
            .iter()
            .zip(g_theirs.get(&x).as_vec())
        {
            assert!((a - b).abs() < 1e-4, "gradient {a} vs {b}");
        }
    }
}
