//! The unfused reference: the same transformer written with dfdx's own ops only (per-batch
//! matmuls, broadcast bias adds, dfdx's softmax, GELU and normalize), built from a model's
//! named parameters. Tests hold the fused forward pass, loss and every parameter gradient of
//! the training step against it.

use std::collections::BTreeMap;

use dfdx::prelude::*;

use crate::config::{AttentionKind, InputFront};
use crate::model::{Input, Transformer};
use crate::train::{loss_on, Targets};

type T3 = Tensor<(usize, usize, usize), f32, Cpu, OwnedTape<f32, Cpu>>;

/// Leaf tensors of the reference model, by checkpoint name, and their gradients.
pub(crate) struct Reference {
    dev: Cpu,
    params: BTreeMap<String, (Vec<usize>, Vec<f32>)>,
}

/// A traced leaf: 1-D or 2-D, kept as `Vec` shapes so one map holds both.
enum Leaf {
    V(Tensor<(usize,), f32, Cpu>),
    M(Tensor<(usize, usize), f32, Cpu>),
}

impl Reference {
    pub fn new(model: &Transformer) -> Self {
        Self {
            dev: Cpu::default(),
            params: model
                .named_params()
                .into_iter()
                .map(|(n, s, v)| (n, (s, v)))
                .collect(),
        }
    }

    /// The training loss on `(input, targets)` and the gradient of every parameter, by name.
    pub fn loss_and_gradients(
        &self,
        model: &Transformer,
        input: &Input,
        targets: &Targets,
    ) -> (f32, BTreeMap<String, Vec<f32>>) {
        let leaves: BTreeMap<String, Leaf> = self
            .params
            .iter()
            .map(|(name, (shape, values))| {
                let leaf = match shape[..] {
                    [n] => Leaf::V(self.dev.tensor_from_vec(values.clone(), (n,))),
                    [r, c] => Leaf::M(self.dev.tensor_from_vec(values.clone(), (r, c))),
                    _ => unreachable!("parameters are vectors or matrices"),
                };
                (name.clone(), leaf)
            })
            .collect();
        let v = |name: &str| match &leaves[name] {
            Leaf::V(t) => t.leaky_trace(),
            Leaf::M(_) => panic!("{name} is a matrix"),
        };
        let m = |name: &str| match &leaves[name] {
            Leaf::M(t) => t.leaky_trace(),
            Leaf::V(_) => panic!("{name} is a vector"),
        };
        let has = |name: &str| leaves.contains_key(name);
        let c = model.config();
        let (b, s, d) = (input.batch(), input.seq_len(), c.d_model);
        let (h, dh) = (c.n_heads, c.d_head);
        let bias = |name: &str, shape: (usize, usize, usize)| {
            v(name).broadcast_like::<_, Axes2<0, 1>>(&shape)
        };
        let linear = |x: T3, w: &str, bn: &str| -> T3 {
            let out = x.matmul(m(w));
            let shape = *out.shape();
            out + bias(bn, shape)
        };
        let ln = |x: T3, prefix: &str| -> T3 {
            let shape = *x.shape();
            x.normalize::<Axis<2>>(1e-5) * bias(&format!("{prefix}.w"), shape)
                + bias(&format!("{prefix}.b"), shape)
        };
        let mut x: T3 = match (input, c.input) {
            (Input::Tokens(ids), InputFront::Tokens { .. }) => {
                let idx: Tensor<(usize, usize), usize, Cpu> = self
                    .dev
                    .tensor_from_vec(ids.iter().copied().collect(), (b, s));
                m("embed.W_E").gather(idx)
            }
            (Input::Vectors(vs), InputFront::Vectors { dim }) => {
                let x: Tensor<(usize, usize, usize), f32, Cpu> = self
                    .dev
                    .tensor_from_vec(vs.iter().copied().collect(), (b, s, dim));
                linear(x.leaky_trace(), "embed.W_in", "embed.b_in")
            }
            _ => panic!("input kind matches the model"),
        };
        if has("pos_embed.W_pos") {
            x = x + m("pos_embed.W_pos")
                .slice((0..s, ..))
                .broadcast_like::<_, Axis<0>>(&(b, s, d));
        }
        for layer in 0..c.n_layers {
            let p = |n: &str| format!("blocks.{layer}.{n}");
            let (resid, tape) = x.split_tape();
            let normed = if has(&p("ln1.w")) {
                ln(resid.clone().put_tape(tape), &p("ln1"))
            } else {
                resid.clone().put_tape(tape)
            };
            let (normed, tape) = normed.split_tape();
            let q = linear(
                normed.clone().put_tape(tape),
                &p("attn.W_Q"),
                &p("attn.b_Q"),
            )
            .reshape_like(&(b, s, h, dh))
            .permute::<_, Axes4<0, 2, 1, 3>>();
            let k = linear(
                normed.clone().retaped::<OwnedTape<f32, Cpu>>(),
                &p("attn.W_K"),
                &p("attn.b_K"),
            )
            .reshape_like(&(b, s, h, dh))
            .permute::<_, Axes4<0, 2, 3, 1>>();
            let vv = linear(
                normed.retaped::<OwnedTape<f32, Cpu>>(),
                &p("attn.W_V"),
                &p("attn.b_V"),
            )
            .reshape_like(&(b, s, h, dh))
            .permute::<_, Axes4<0, 2, 1, 3>>();
            let scores = q.matmul(k);
            let pattern = match c.attention {
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
                    let mask: Tensor<(usize, usize), f32, Cpu> =
                        self.dev.tensor_from_vec(mask, (s, s));
                    (scores * (1.0 / (dh as f32).sqrt())
                        + mask.broadcast_like::<_, Axes2<0, 1>>(&(b, h, s, s)))
                    .softmax::<Axis<3>>()
                }
                AttentionKind::Linear => {
                    let mask: Vec<f32> = (0..s * s)
                        .map(|i| {
                            let (q, k) = (i / s, i % s);
                            if k <= q {
                                1.0 / (q + 1) as f32
                            } else {
                                0.0
                            }
                        })
                        .collect();
                    let mask: Tensor<(usize, usize), f32, Cpu> =
                        self.dev.tensor_from_vec(mask, (s, s));
                    scores * mask.broadcast_like::<_, Axes2<0, 1>>(&(b, h, s, s))
                }
            };
            let z = pattern
                .matmul(vv)
                .permute::<_, Axes4<0, 2, 1, 3>>()
                .reshape_like(&(b, s, h * dh));
            let attn_out = linear(z, &p("attn.W_O"), &p("attn.b_O"));
            let mid = resid.retaped::<OwnedTape<f32, Cpu>>() + attn_out;
            x = if has(&p("mlp.W_in")) {
                let (mid, tape) = mid.split_tape();
                let normed = if has(&p("ln2.w")) {
                    ln(mid.clone().put_tape(tape), &p("ln2"))
                } else {
                    mid.clone().put_tape(tape)
                };
                let hidden = linear(normed, &p("mlp.W_in"), &p("mlp.b_in")).fast_gelu();
                mid.retaped::<OwnedTape<f32, Cpu>>()
                    + linear(hidden, &p("mlp.W_out"), &p("mlp.b_out"))
            } else {
                mid
            };
        }
        if has("ln_final.w") {
            x = ln(x, "ln_final");
        }
        let logits = linear(x, "unembed.W_U", "unembed.b_U");
        let loss = loss_on(logits, targets).expect("targets match the model");
        let value = loss.array();
        let grads = loss.backward();
        let gradients = leaves
            .iter()
            .map(|(name, leaf)| {
                let g = match leaf {
                    Leaf::V(t) => grads.get(t).as_vec(),
                    Leaf::M(t) => grads.get(t).as_vec(),
                };
                (name.clone(), g)
            })
            .collect();
        (value, gradients)
    }
}

#[cfg(test)]
mod tests {
    use ndarray::{Array2, Array3};

    use super::*;
    use crate::config::ModelConfig;
    use crate::train::loss_and_gradients;
    use crate::{Preset, Small, Tiny};

    fn tokens(b: usize, s: usize, vocab: usize, salt: usize) -> Array2<usize> {
        Array2::from_shape_fn((b, s), |(i, j)| (i * 7 + j * 3 + salt + i * j) % vocab)
    }

    /// The fused step's loss and every parameter gradient against the unfused reference: the
    /// L2 error of each gradient below 1e-4 of its norm (the fused products sum in another
    /// order), or of 1e-3 of the largest gradient norm where that is larger: the key bias's
    /// gradient is exactly 0 under softmax (it shifts every score of a query equally), so both
    /// sides hold only rounding noise there.
    fn check(config: ModelConfig, input: Input, targets: Targets) {
        let model = Transformer::new(config, 11).expect("valid config");
        let (loss, mut grads) = loss_and_gradients(&model, &input, &targets).expect("runs");
        let (ref_loss, ref_grads) =
            Reference::new(&model).loss_and_gradients(&model, &input, &targets);
        assert!(
            (loss - ref_loss).abs() <= 1e-5 * ref_loss.abs().max(1.0),
            "loss {loss} vs reference {ref_loss}"
        );
        let norm = |v: &[f32]| v.iter().map(|x| (*x as f64).powi(2)).sum::<f64>().sqrt();
        let largest = ref_grads.values().map(|g| norm(g)).fold(0.0, f64::max);
        assert!(largest > 0.0, "the reference gradient is zero");
        let mut seen = 0;
        model.clone().visit_params_mut(&mut |name, p| {
            let ours = p.gradient(&mut grads);
            let theirs = &ref_grads[name];
            let diff: Vec<f32> = ours.iter().zip(theirs).map(|(a, b)| a - b).collect();
            let scale = norm(theirs).max(1e-3 * largest);
            let rel = norm(&diff) / scale;
            assert!(rel < 1e-4, "{name}: relative gradient error {rel:e}");
            seen += 1;
        });
        assert_eq!(seen, ref_grads.len());
    }

    fn classes(b: usize, s: usize, vocab: usize) -> Targets {
        Targets::Classes {
            ids: tokens(b, s, vocab, 5),
            weights: Array2::from_shape_fn((b, s), |(i, j)| ((i + j) % 3 != 0) as u8 as f32),
        }
    }

    #[test]
    fn tiny_language_model_step_matches_the_unfused_reference() {
        let input = Input::Tokens(tokens(3, 7, 13, 0));
        check(Tiny::language_model(13, 9), input, classes(3, 7, 13));
    }

    #[test]
    fn small_language_model_step_matches_the_unfused_reference() {
        let input = Input::Tokens(tokens(4, 12, 17, 1));
        check(Small::language_model(17, 12), input, classes(4, 12, 17));
    }

    #[test]
    fn linear_attention_regression_step_matches_the_unfused_reference() {
        // The in-context regression organism's shape: vector input, linear attention, no
        // LayerNorm, no MLP, no positional embedding, one output.
        let config = ModelConfig {
            preset: "custom".into(),
            input: InputFront::Vectors { dim: 5 },
            d_out: 1,
            d_model: 12,
            n_heads: 2,
            d_head: 6,
            n_layers: 2,
            d_mlp: 0,
            max_seq: 0,
            attention: AttentionKind::Linear,
            layer_norm: false,
        };
        let (b, s) = (3, 6);
        let x = Array3::from_shape_fn((b, s, 5), |(i, j, k)| {
            ((i * 5 + j * 3 + k) % 7) as f32 / 3.0 - 1.0
        });
        let targets = Targets::Values {
            values: Array3::from_shape_fn((b, s, 1), |(i, j, _)| (i as f32 - j as f32) / 4.0),
            weights: Array2::ones((b, s)),
        };
        check(config, Input::Vectors(x), targets);
    }
}
