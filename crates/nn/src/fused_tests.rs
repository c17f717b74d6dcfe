//! Each fused op against the same computation in dfdx's own ops, forward and backward.

use dfdx::prelude::*;

use super::*;

type D3 = (usize, usize, usize);
type D4 = (usize, usize, usize, usize);
type Taped4 = Tensor<D4, f32, Cpu, OwnedTape<f32, Cpu>>;

fn values(n: usize, seed: u32) -> Vec<f32> {
    (0..n)
        .map(|i| (((i as u32).wrapping_mul(2_654_435_761) ^ seed) % 1000) as f32 / 500.0 - 1.0)
        .collect()
}

fn close(ours: &[f32], theirs: &[f32], tol: f32, what: &str) {
    assert_eq!(ours.len(), theirs.len(), "{what}: lengths");
    for (i, (a, b)) in ours.iter().zip(theirs).enumerate() {
        assert!(
            (a - b).abs() <= tol * b.abs().max(1.0),
            "{what}[{i}]: {a} vs {b}"
        );
    }
}

#[test]
fn linear_with_parts_and_gelu_matches_dfdx_matmul_bias_and_fast_gelu() {
    let dev = Cpu::default();
    let (b, s, k) = (3, 5, 7);
    let widths = [4, 6, 3];
    let x: Tensor<D3, f32, Cpu> = dev.tensor_from_vec(values(b * s * k, 1), (b, s, k));
    let ws: Vec<Tensor<(usize, usize), f32, Cpu>> = widths
        .iter()
        .enumerate()
        .map(|(i, &n)| dev.tensor_from_vec(values(k * n, 10 + i as u32), (k, n)))
        .collect();
    let bs: Vec<Tensor<(usize,), f32, Cpu>> = widths
        .iter()
        .enumerate()
        .map(|(i, &n)| dev.tensor_from_vec(values(n, 20 + i as u32), (n,)))
        .collect();
    let n: usize = widths.iter().sum();
    let probe: Tensor<D3, f32, Cpu> = dev.tensor_from_vec(values(b * s * n, 3), (b, s, n));
    for act in [Activation::Identity, Activation::Gelu] {
        let parts: Vec<_> = ws.iter().zip(&bs).collect();
        let ours = linear(x.leaky_trace(), &parts, act);
        // dfdx: one linear per part, concatenated along the last axis through a weighted sum
        // against the matching slice of the probe.
        let mut theirs_out = Vec::new();
        let mut loss_theirs = None;
        let mut col = 0;
        for (w, bias) in ws.iter().zip(&bs) {
            let width = w.shape().1;
            let y = x.leaky_trace().matmul(w.leaky_trace())
                + bias
                    .leaky_trace()
                    .broadcast_like::<_, Axes2<0, 1>>(&(b, s, width));
            let y = if act == Activation::Gelu {
                y.fast_gelu()
            } else {
                y
            };
            theirs_out.push(y.as_vec());
            let p = probe.clone().slice((.., .., col..col + width));
            let part = (y * p).sum::<(), _>();
            loss_theirs = Some(match loss_theirs {
                None => part,
                Some(l) => l + part,
            });
            col += width;
        }
        let ours_v = ours.as_vec();
        for r in 0..b * s {
            let mut col = 0;
            for (part, &width) in theirs_out.iter().zip(&widths) {
                close(
                    &ours_v[r * n + col..r * n + col + width],
                    &part[r * width..(r + 1) * width],
                    1e-5,
                    "forward",
                );
                col += width;
            }
        }
        let g_ours = (ours * probe.clone()).sum().backward();
        let g_theirs = loss_theirs.expect("three parts").backward();
        close(
            &g_ours.get(&x).as_vec(),
            &g_theirs.get(&x).as_vec(),
            1e-4,
            "grad x",
        );
        for (w, bias) in ws.iter().zip(&bs) {
            close(
                &g_ours.get(w).as_vec(),
                &g_theirs.get(w).as_vec(),
                1e-4,
                "grad w",
            );
            close(
                &g_ours.get(bias).as_vec(),
                &g_theirs.get(bias).as_vec(),
                1e-4,
                "grad b",
            );
        }
    }
}

/// dfdx's attention on a fused Q/K/V tensor: split, per-head permutes, matmuls, masked softmax
/// (or the linear pattern), and `z` permuted back to `[batch, seq, head, d_head]`.
fn dfdx_attention(
    qkv: Tensor<D3, f32, Cpu, OwnedTape<f32, Cpu>>,
    h: usize,
    dh: usize,
    kind: AttentionKind,
) -> (Taped4, Taped4) {
    let (b, s, _) = *qkv.shape();
    let hd = h * dh;
    let (qkv, tape) = qkv.split_tape();
    let q = qkv
        .clone()
        .put_tape(tape)
        .slice((.., .., 0..hd))
        .reshape_like(&(b, s, h, dh))
        .permute::<_, Axes4<0, 2, 1, 3>>();
    let k = qkv
        .clone()
        .retaped::<OwnedTape<f32, Cpu>>()
        .slice((.., .., hd..2 * hd))
        .reshape_like(&(b, s, h, dh))
        .permute::<_, Axes4<0, 2, 3, 1>>();
    let v = qkv
        .retaped::<OwnedTape<f32, Cpu>>()
        .slice((.., .., 2 * hd..3 * hd))
        .reshape_like(&(b, s, h, dh))
        .permute::<_, Axes4<0, 2, 1, 3>>();
    let scores = q.matmul(k);
    let dev = Cpu::default();
    let pattern = match kind {
        AttentionKind::Softmax => {
            let mask: Vec<f32> = (0..s * s)
                .map(|i| {
                    if i % s <= i / s {
                        0.0
                    } else {
                        f32::NEG_INFINITY
                    }
                })
                .collect();
            let mask: Tensor<(usize, usize), f32, Cpu> = dev.tensor_from_vec(mask, (s, s));
            (scores * (1.0 / (dh as f32).sqrt())
                + mask.broadcast_like::<_, Axes2<0, 1>>(&(b, h, s, s)))
            .softmax::<Axis<3>>()
        }
        AttentionKind::Linear => {
            let mask: Vec<f32> = (0..s * s)
                .map(|i| {
                    if i % s <= i / s {
                        1.0 / (i / s + 1) as f32
                    } else {
                        0.0
                    }
                })
                .collect();
            let mask: Tensor<(usize, usize), f32, Cpu> = dev.tensor_from_vec(mask, (s, s));
            scores * mask.broadcast_like::<_, Axes2<0, 1>>(&(b, h, s, s))
        }
    };
    let (pattern, tape) = pattern.split_tape();
    let z = pattern
        .clone()
        .put_tape(tape)
        .matmul(v)
        .permute::<_, Axes4<0, 2, 1, 3>>();
    (pattern.retaped::<OwnedTape<f32, Cpu>>(), z)
}

#[test]
fn attention_pattern_and_attend_match_dfdx_per_head_attention() {
    let dev = Cpu::default();
    let (b, s, h, dh) = (2, 6, 3, 4);
    let w = 3 * h * dh;
    let qkv: Tensor<D3, f32, Cpu> = dev.tensor_from_vec(values(b * s * w, 5), (b, s, w));
    let probe_p: Tensor<D4, f32, Cpu> = dev.tensor_from_vec(values(b * h * s * s, 6), (b, h, s, s));
    let probe_z: Tensor<D4, f32, Cpu> =
        dev.tensor_from_vec(values(b * s * h * dh, 7), (b, s, h, dh));
    for kind in [AttentionKind::Softmax, AttentionKind::Linear] {
        let (qkv_t, tape) = qkv.leaky_trace().split_tape();
        let pattern = attention_pattern(qkv_t.clone().put_tape(tape), h, dh, kind);
        let (pattern, tape) = pattern.split_tape();
        let z = attend(
            pattern.clone().put_tape(tape),
            qkv_t.retaped::<OwnedTape<f32, Cpu>>(),
        );
        let (ref_pattern, ref_z) = dfdx_attention(qkv.leaky_trace(), h, dh, kind);
        close(&pattern.as_vec(), &ref_pattern.as_vec(), 1e-6, "pattern");
        close(&z.as_vec(), &ref_z.as_vec(), 1e-5, "z");
        // The loss reads both the pattern (as a hook point may) and z.
        let ours = (pattern.retaped::<OwnedTape<f32, Cpu>>() * probe_p.clone()).sum::<(), _>()
            + (z * probe_z.clone()).sum::<(), _>();
        let theirs = (ref_pattern * probe_p.clone()).sum::<(), _>()
            + (ref_z * probe_z.clone()).sum::<(), _>();
        let (g_ours, g_theirs) = (ours.backward(), theirs.backward());
        close(
            &g_ours.get(&qkv).as_vec(),
            &g_theirs.get(&qkv).as_vec(),
            1e-4,
            "grad qkv",
        );
    }
}
