//! The fused ops of a block, each one custom dfdx op with its own backward pass.
//!
//! Batch and sequence are folded into one `(batch * seq) x d` matrix, so a `Linear` is one
//! matrix product forward (above `gemm`'s threading threshold) and two backward, the weight
//! gradient with inner size `batch * seq`; dfdx's matmul on a `(batch, seq, d)` tensor makes
//! one small call per batch element instead. Q, K and V are one product against the three
//! weights side by side; the bias is the product's starting value (no zero-filled output, no
//! separate add); GELU is applied on the product's output in the same op. Attention reads the
//! heads straight out of the fused Q/K/V output and writes `z` in the layout `W_O` reads, so
//! no head is permuted or copied; its products are one strided `gemm` call per (batch, head).

use dfdx::prelude::*;

use crate::config::AttentionKind;
use crate::kernels::{matmul, View};
use crate::ops::gelu_with_slope;
use crate::params::{dense_values, Matrix, Vector};

type T3<T> = Tensor<(usize, usize, usize), f32, Cpu, T>;
type T4<T> = Tensor<(usize, usize, usize, usize), f32, Cpu, T>;

/// What is applied to a linear layer's output in the same op.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Activation {
    Identity,
    /// GELU, tanh approximation (dfdx's `fast_gelu`).
    Gelu,
}

/// `act(x W + b)` for `x` `[batch, seq, k]`, with the weights of `parts` side by side: the
/// output's columns are part 0's, then part 1's, and so on.
pub(crate) fn linear<T: Tape<f32, Cpu>>(
    x: T3<T>,
    parts: &[(&Matrix, &Vector)],
    act: Activation,
) -> T3<T> {
    let x = x.contiguous();
    let (x, mut tape) = x.split_tape();
    let (b, s, k) = *x.shape();
    let m = b * s;
    let widths: Vec<usize> = parts.iter().map(|(w, _)| w.shape().1).collect();
    let n: usize = widths.iter().sum();
    for ((w, bias), &width) in parts.iter().zip(&widths) {
        assert_eq!(w.shape().0, k, "weight rows match the input width");
        assert_eq!(
            bias.shape().0,
            width,
            "bias length matches the weight's columns"
        );
    }
    let (weight, bias) = if parts.len() == 1 {
        (dense_values(parts[0].0), dense_values(parts[0].1))
    } else {
        let mut weight = Vec::with_capacity(k * n);
        let values: Vec<Vec<f32>> = parts.iter().map(|(w, _)| dense_values(*w)).collect();
        for r in 0..k {
            for (v, &width) in values.iter().zip(&widths) {
                weight.extend_from_slice(&v[r * width..(r + 1) * width]);
            }
        }
        let bias = parts.iter().flat_map(|(_, b)| dense_values(*b)).collect();
        (weight, bias)
    };
    let input = dense_values(&x);
    let mut out = Vec::with_capacity(m * n);
    for _ in 0..m {
        out.extend_from_slice(&bias);
    }
    matmul(
        &mut out,
        0,
        n,
        1,
        View::dense(&input, m, k),
        View::dense(&weight, k, n),
        true,
    );
    let slopes = match act {
        Activation::Identity => Vec::new(),
        Activation::Gelu if T::OWNS_TAPE => out
            .iter_mut()
            .map(|v| {
                let (y, slope) = gelu_with_slope(*v);
                *v = y;
                slope
            })
            .collect(),
        Activation::Gelu => {
            for v in &mut out {
                *v = gelu_with_slope(*v).0;
            }
            Vec::new()
        }
    };
    let out = x.device().tensor_from_vec(out, (b, s, n));
    if T::OWNS_TAPE {
        let x_ghost = x.ghost();
        let out_ghost = out.ghost();
        let ghosts: Vec<_> = parts.iter().map(|(w, b)| (w.ghost(), b.ghost())).collect();
        tape.add_backward_op(move |grads| {
            // Borrow the output gradient by moving it out and back: dfdx's public API lends
            // one gradient buffer at a time.
            let grad_out = std::mem::take(&mut **grads.get_or_alloc_mut(&out_ghost)?);
            let g = if act == Activation::Gelu {
                grad_out.iter().zip(&slopes).map(|(g, s)| g * s).collect()
            } else {
                Vec::new()
            };
            let g = if act == Activation::Gelu {
                &g
            } else {
                &grad_out
            };
            let g_view = View::dense(g, m, n);
            matmul(
                grads.get_or_alloc_mut(&x_ghost)?,
                0,
                k,
                1,
                g_view,
                View::dense(&weight, k, n).t(),
                true,
            );
            let mut col = 0;
            for ((w_ghost, b_ghost), &width) in ghosts.iter().zip(&widths) {
                let g_part = View {
                    offset: col,
                    cols: width,
                    ..g_view
                };
                let grad_w = grads.get_or_alloc_mut(w_ghost)?;
                matmul(
                    grad_w,
                    0,
                    width,
                    1,
                    View::dense(&input, m, k).t(),
                    g_part,
                    true,
                );
                let grad_b = grads.get_or_alloc_mut(b_ghost)?;
                for row in g.chunks_exact(n) {
                    for (gb, go) in grad_b.iter_mut().zip(&row[col..col + width]) {
                        *gb += go;
                    }
                }
                col += width;
            }
            **grads.get_or_alloc_mut(&out_ghost)? = grad_out;
            Ok(())
        });
    }
    out.put_tape(tape)
}

/// Where each head's queries, keys and values sit in a fused Q/K/V output `[batch, seq,
/// 3 * heads * d_head]` (queries of every head, then keys, then values).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Heads {
    pub seq: usize,
    pub heads: usize,
    pub d_head: usize,
}

impl Heads {
    fn width(&self) -> usize {
        3 * self.heads * self.d_head
    }

    /// The `seq x d_head` view of `part` (0 = Q, 1 = K, 2 = V) of head `h` of batch row `b`.
    fn view<'a>(&self, data: &'a [f32], part: usize, b: usize, h: usize) -> View<'a> {
        View {
            data,
            offset: b * self.seq * self.width() + (part * self.heads + h) * self.d_head,
            rows: self.seq,
            cols: self.d_head,
            rs: self.width(),
            cs: 1,
        }
    }

    fn offset(&self, part: usize, b: usize, h: usize) -> usize {
        b * self.seq * self.width() + (part * self.heads + h) * self.d_head
    }
}

/// The causal attention pattern `[batch, head, q, k]` from a fused Q/K/V output: softmax over
/// `k <= q` of `q.k / sqrt(d_head)` (exactly 0 for `k > q`), or for linear attention the raw
/// score `q.k / (q + 1)` for `k <= q` and 0 after.
pub(crate) fn attention_pattern<T: Tape<f32, Cpu>>(
    qkv: T3<T>,
    heads: usize,
    d_head: usize,
    kind: AttentionKind,
) -> T4<T> {
    let qkv = qkv.contiguous();
    let (qkv, mut tape) = qkv.split_tape();
    let (batch, seq, width) = *qkv.shape();
    let layout = Heads { seq, heads, d_head };
    assert_eq!(width, layout.width(), "fused Q/K/V width");
    let values = dense_values(&qkv);
    let mut pattern = vec![0.0f32; batch * heads * seq * seq];
    let scale = 1.0 / (d_head as f32).sqrt();
    for b in 0..batch {
        for h in 0..heads {
            let at = (b * heads + h) * seq * seq;
            let q = layout.view(&values, 0, b, h);
            let k = layout.view(&values, 1, b, h);
            matmul(&mut pattern, at, seq, 1, q, k.t(), false);
            for (i, row) in pattern[at..at + seq * seq]
                .chunks_exact_mut(seq)
                .enumerate()
            {
                match kind {
                    AttentionKind::Softmax => softmax_prefix(row, i + 1, scale),
                    AttentionKind::Linear => {
                        let inv = 1.0 / (i + 1) as f32;
                        row[..=i].iter_mut().for_each(|v| *v *= inv);
                        row[i + 1..].iter_mut().for_each(|v| *v = 0.0);
                    }
                }
            }
        }
    }
    let saved = if T::OWNS_TAPE && kind == AttentionKind::Softmax {
        pattern.clone()
    } else {
        Vec::new()
    };
    let out = qkv
        .device()
        .tensor_from_vec(pattern, (batch, heads, seq, seq));
    if T::OWNS_TAPE {
        let (in_ghost, out_ghost) = (qkv.ghost(), out.ghost());
        tape.add_backward_op(move |grads| {
            // Gradient with respect to the raw scores q.k, row by row (a copy: the pattern's
            // own gradient stays readable, e.g. at its hook point).
            let mut grad_scores = grads.get_or_alloc_mut(&out_ghost)?.to_vec();
            for (r, go) in grad_scores.chunks_exact_mut(seq).enumerate() {
                let i = r % seq;
                match kind {
                    AttentionKind::Softmax => {
                        let p = &saved[r * seq..(r + 1) * seq];
                        let dot: f32 = (0..=i).map(|j| p[j] * go[j]).sum();
                        for j in 0..=i {
                            go[j] = scale * p[j] * (go[j] - dot);
                        }
                    }
                    AttentionKind::Linear => {
                        let inv = 1.0 / (i + 1) as f32;
                        go[..=i].iter_mut().for_each(|v| *v *= inv);
                    }
                }
                go[i + 1..].iter_mut().for_each(|v| *v = 0.0);
            }
            let grad_qkv = grads.get_or_alloc_mut(&in_ghost)?;
            let w = layout.width();
            for b in 0..batch {
                for h in 0..heads {
                    let gs = square(&grad_scores, (b * heads + h) * seq * seq, seq);
                    let q = layout.view(&values, 0, b, h);
                    let k = layout.view(&values, 1, b, h);
                    matmul(grad_qkv, layout.offset(0, b, h), w, 1, gs, k, true);
                    matmul(grad_qkv, layout.offset(1, b, h), w, 1, gs.t(), q, true);
                }
            }
            Ok(())
        });
    }
    out.put_tape(tape)
}

/// The dense `seq x seq` matrix at `offset`.
fn square(data: &[f32], offset: usize, seq: usize) -> View<'_> {
    View {
        data,
        offset,
        rows: seq,
        cols: seq,
        rs: seq,
        cs: 1,
    }
}

/// `row[..len] = softmax(scale * row[..len])`, `row[len..] = 0`.
fn softmax_prefix(row: &mut [f32], len: usize, scale: f32) {
    let max = row[..len]
        .iter()
        .fold(f32::NEG_INFINITY, |a, &b| a.max(b * scale));
    let mut total = 0.0f32;
    for v in &mut row[..len] {
        *v = (*v * scale - max).exp();
        total += *v;
    }
    let inv = 1.0 / total;
    row[..len].iter_mut().for_each(|v| *v *= inv);
    row[len..].iter_mut().for_each(|v| *v = 0.0);
}

/// `z[b, q, h, :] = sum_k pattern[b, h, q, k] * v[b, k, h, :]`, with `v` read from the fused
/// Q/K/V output; `z` is `[batch, seq, heads, d_head]`, so `[batch, seq, heads * d_head]` is a
/// reshape without a copy.
pub(crate) fn attend<T: Tape<f32, Cpu>>(pattern: T4<T>, qkv: T3<T>) -> T4<T> {
    let pattern = pattern.contiguous();
    let qkv = qkv.contiguous();
    let (pattern, ptape) = pattern.split_tape();
    let (qkv, vtape) = qkv.split_tape();
    let mut tape = ptape.merge(vtape);
    let (batch, heads, seq, _) = *pattern.shape();
    let width = qkv.shape().2;
    let d_head = width / (3 * heads);
    let layout = Heads { seq, heads, d_head };
    assert_eq!(width, layout.width(), "fused Q/K/V width");
    assert_eq!(
        qkv.shape().1,
        seq,
        "pattern and values cover the same positions"
    );
    let p_values = dense_values(&pattern);
    let values = dense_values(&qkv);
    let zw = heads * d_head;
    let mut z = vec![0.0f32; batch * seq * zw];
    for b in 0..batch {
        for h in 0..heads {
            let v = layout.view(&values, 2, b, h);
            matmul(
                &mut z,
                b * seq * zw + h * d_head,
                zw,
                1,
                square(&p_values, (b * heads + h) * seq * seq, seq),
                v,
                false,
            );
        }
    }
    let out = qkv.device().tensor_from_vec(z, (batch, seq, heads, d_head));
    if T::OWNS_TAPE {
        let (p_ghost, v_ghost, out_ghost) = (pattern.ghost(), qkv.ghost(), out.ghost());
        tape.add_backward_op(move |grads| {
            let grad_z = std::mem::take(&mut **grads.get_or_alloc_mut(&out_ghost)?);
            let gz = |b: usize, h: usize| View {
                data: &grad_z,
                offset: b * seq * zw + h * d_head,
                rows: seq,
                cols: d_head,
                rs: zw,
                cs: 1,
            };
            let grad_p = grads.get_or_alloc_mut(&p_ghost)?;
            for b in 0..batch {
                for h in 0..heads {
                    let v = layout.view(&values, 2, b, h);
                    matmul(
                        grad_p,
                        (b * heads + h) * seq * seq,
                        seq,
                        1,
                        gz(b, h),
                        v.t(),
                        true,
                    );
                }
            }
            let grad_qkv = grads.get_or_alloc_mut(&v_ghost)?;
            let w = layout.width();
            for b in 0..batch {
                for h in 0..heads {
                    let p = square(&p_values, (b * heads + h) * seq * seq, seq);
                    matmul(
                        grad_qkv,
                        layout.offset(2, b, h),
                        w,
                        1,
                        p.t(),
                        gz(b, h),
                        true,
                    );
                }
            }
            **grads.get_or_alloc_mut(&out_ghost)? = grad_z;
            Ok(())
        });
    }
    out.put_tape(tape)
}

#[cfg(test)]
#[path = "fused_tests.rs"]
mod tests;
