//! The inspection API: caches, hooks, patching, ablation and gradients through hooks.

use mesa_nn::{
    AttentionKind, CacheFilter, Hook, HookPoint, Hooks, Input, InputFront, Intervention,
    ModelConfig, Preset, Tiny, Transformer,
};
use ndarray::{Array1, Array3, ArrayD, IxDyn};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const VOCAB: usize = 11;

fn model() -> Transformer {
    Transformer::new(Tiny::language_model(VOCAB, 12), 5).unwrap()
}

fn batch(seed: u64, b: usize, s: usize) -> Input {
    let mut rng = StdRng::seed_from_u64(seed);
    let seqs: Vec<Vec<usize>> = (0..b)
        .map(|_| (0..s).map(|_| rng.gen_range(0..VOCAB)).collect())
        .collect();
    Input::tokens(&seqs).unwrap()
}

#[test]
fn hooked_run_without_hooks_equals_plain_forward_exactly() {
    let m = model();
    let x = batch(1, 3, 7);
    let plain = m.forward(&x).unwrap();
    let (cached, _) = m.run_with_cache(&x, &CacheFilter::All).unwrap();
    let observe_only = Hooks::new().with(Hook::new(
        HookPoint::resid_mid(1),
        Intervention::Custom(Box::new(|_, _| None)),
    ));
    let hooked = m.run_with_hooks(&x, &observe_only).unwrap();
    assert_eq!(plain, cached);
    assert_eq!(plain, hooked);
}

#[test]
fn patching_every_activation_with_itself_changes_nothing() {
    let m = model();
    let x = batch(2, 2, 9);
    let (clean, cache) = m.run_with_cache(&x, &CacheFilter::All).unwrap();
    let mut hooks = Hooks::new();
    for point in HookPoint::all(m.config()) {
        hooks.push(Hook::new(
            point,
            Intervention::Patch(cache.array(point).unwrap()),
        ));
    }
    let patched = m.run_with_hooks(&x, &hooks).unwrap();
    assert_eq!(clean, patched);
}

#[test]
fn zero_ablating_attention_output_equals_removing_the_term_by_hand() {
    let m = model();
    let x = batch(3, 2, 8);
    let (clean, cache) = m.run_with_cache(&x, &CacheFilter::All).unwrap();
    let ablated = m
        .run_with_hooks(
            &x,
            &Hooks::new().with(Hook::new(HookPoint::attn_out(0), Intervention::Zero)),
        )
        .unwrap();
    // resid_mid = resid_pre + attn_out; without the attention term it is resid_pre itself.
    let by_hand = m
        .run_with_hooks(
            &x,
            &Hooks::new().with(Hook::new(
                HookPoint::resid_mid(0),
                Intervention::Patch(cache.array(HookPoint::resid_pre(0)).unwrap()),
            )),
        )
        .unwrap();
    assert_eq!(ablated, by_hand);
    assert_ne!(
        ablated, clean,
        "attention must matter for this test to mean anything"
    );
}

#[test]
fn ablation_restricted_to_positions_and_heads_leaves_the_rest_alone() {
    let m = model();
    let x = batch(4, 2, 8);
    let (clean, _) = m.run_with_cache(&x, &CacheFilter::All).unwrap();
    // Zeroing head 0's output at position 5 of the last block cannot change earlier positions.
    let hooks = Hooks::new().with(
        Hook::new(HookPoint::attn_z(1), Intervention::Zero)
            .at_heads(vec![0])
            .at_positions(vec![5]),
    );
    let (ablated, cache) = m
        .run_with_hooks_and_cache(&x, &hooks, &CacheFilter::All)
        .unwrap();
    for p in 0..5 {
        assert_eq!(
            clean.slice(ndarray::s![.., p, ..]),
            ablated.slice(ndarray::s![.., p, ..])
        );
    }
    assert_ne!(
        clean.slice(ndarray::s![.., 5, ..]),
        ablated.slice(ndarray::s![.., 5, ..])
    );
    let z = cache.array(HookPoint::attn_z(1)).unwrap();
    assert!(z.slice(ndarray::s![.., 5, 0, ..]).iter().all(|&v| v == 0.0));
    assert!(z.slice(ndarray::s![.., 5, 1, ..]).iter().any(|&v| v != 0.0));
}

#[test]
fn cache_has_every_name_with_the_promised_shape() {
    let m = model();
    let (b, s) = (3, 6);
    let (_, cache) = m
        .run_with_cache(&batch(5, b, s), &CacheFilter::All)
        .unwrap();
    let all = HookPoint::all(m.config());
    assert_eq!(cache.len(), all.len());
    for point in all {
        let name = point.to_string();
        assert_eq!(
            name.parse::<HookPoint>().unwrap(),
            point,
            "{name} round-trips"
        );
        let got = cache
            .get(point)
            .unwrap_or_else(|| panic!("{name} cached"))
            .shape();
        assert_eq!(got, point.shape(m.config(), b, s), "{name}");
    }
    let names: Vec<String> = cache.points().map(|p| p.to_string()).collect();
    for expected in [
        "hook_embed",
        "hook_pos_embed",
        "blocks.0.hook_resid_pre",
        "blocks.0.attn.hook_pattern",
        "blocks.0.hook_attn_out",
        "blocks.0.hook_resid_mid",
        "blocks.0.hook_mlp_out",
        "blocks.1.hook_resid_post",
        "ln_final.hook_normalized",
    ] {
        assert!(names.iter().any(|n| n == expected), "{expected} missing");
    }
    assert!("blocks.0.hook_resid_prex".parse::<HookPoint>().is_err());
}

#[test]
fn attention_pattern_is_causal_and_normalised() {
    let m = model();
    let (_, cache) = m
        .run_with_cache(&batch(6, 2, 7), &CacheFilter::All)
        .unwrap();
    let pattern = cache.array(HookPoint::attn_pattern(0)).unwrap();
    for b in 0..2 {
        for h in 0..2 {
            for q in 0..7 {
                let row: f32 = (0..7).map(|k| pattern[[b, h, q, k]]).sum();
                assert!((row - 1.0).abs() < 1e-5);
                for k in q + 1..7 {
                    assert_eq!(pattern[[b, h, q, k]], 0.0);
                }
            }
        }
    }
}

/// Logit of token 3 at the last position, summed over the batch.
fn objective(logits: mesa_nn::TapedLogits) -> mesa_nn::TapedScalar {
    use dfdx::prelude::*;
    let (b, s, v) = *logits.shape();
    let dev = logits.device().clone();
    let mut mask = vec![0.0f32; b * s * v];
    for i in 0..b {
        mask[(i * s + s - 1) * v + 3] = 1.0;
    }
    let mask: Tensor<(usize, usize, usize), f32, Cpu> = dev.tensor_from_vec(mask, (b, s, v));
    (logits * mask).sum::<(), _>()
}

#[test]
fn gradient_through_a_hook_matches_finite_difference() {
    let m = model();
    let x = batch(7, 1, 6);
    let point = HookPoint::resid_mid(0);
    // A steering hook elsewhere: the gradient must flow through hooked runs too.
    let steer = || {
        Hook::new(
            HookPoint::resid_pre(0),
            Intervention::Add {
                vector: ArrayD::from_elem(IxDyn(&[32]), 0.1),
                scale: 1.0,
            },
        )
    };
    let (value, grads) = m
        .activation_gradients(&x, &Hooks::new().with(steer()), &[point], objective)
        .unwrap();
    let grad = &grads[&point];
    assert_eq!(grad.shape(), &[1, 6, 32]);
    let eps = 1e-2f32;
    for (pos, dim) in [(2, 5), (5, 0), (4, 17)] {
        let eval = |delta: f32| -> f32 {
            let mut v = Array1::zeros(32);
            v[dim] = delta;
            let hooks = Hooks::new().with(steer()).with(
                Hook::new(
                    point,
                    Intervention::Add {
                        vector: v.into_dyn(),
                        scale: 1.0,
                    },
                )
                .at_positions(vec![pos]),
            );
            let logits: Array3<f32> = m.run_with_hooks(&x, &hooks).unwrap();
            logits[[0, 5, 3]]
        };
        assert!((eval(0.0) - value).abs() < 1e-5);
        let fd = (eval(eps) - eval(-eps)) / (2.0 * eps);
        let analytic = grad[[0, pos, dim]];
        assert!(
            (fd - analytic).abs() <= 2e-2 * analytic.abs().max(0.05),
            "pos {pos} dim {dim}: finite difference {fd}, autograd {analytic}"
        );
    }
}

#[test]
fn vector_input_linear_attention_model_runs_and_is_causal() {
    let config = ModelConfig {
        preset: "custom".into(),
        input: InputFront::Vectors { dim: 4 },
        d_out: 1,
        d_model: 8,
        n_heads: 1,
        d_head: 8,
        n_layers: 1,
        d_mlp: 0,
        max_seq: 0,
        attention: AttentionKind::Linear,
        layer_norm: false,
    };
    let m = Transformer::new(config, 0).unwrap();
    let mut rng = StdRng::seed_from_u64(0);
    let v = Array3::from_shape_fn((2, 5, 4), |_| rng.gen_range(-1.0..1.0f32));
    let (out, cache) = m
        .run_with_cache(&Input::Vectors(v.clone()), &CacheFilter::All)
        .unwrap();
    assert_eq!(out.shape(), &[2, 5, 1]);
    assert!(cache.get(HookPoint::mlp_out(0)).is_none());
    // Changing the last position leaves earlier outputs untouched.
    let mut v2 = v;
    v2[[0, 4, 1]] += 1.0;
    let out2 = m.forward(&Input::Vectors(v2)).unwrap();
    assert_eq!(
        out.slice(ndarray::s![.., ..4, ..]),
        out2.slice(ndarray::s![.., ..4, ..])
    );
    assert_ne!(out[[0, 4, 0]], out2[[0, 4, 0]]);
}

#[test]
fn bad_inputs_and_hooks_are_refused() {
    let m = model();
    assert!(m.forward(&Input::tokens(&[vec![VOCAB]]).unwrap()).is_err());
    assert!(m.forward(&Input::tokens(&[vec![0; 13]]).unwrap()).is_err());
    assert!(Input::tokens(&[vec![1, 2], vec![1]]).is_err());
    let x = batch(8, 1, 4);
    let wrong_shape = Hooks::new().with(Hook::new(
        HookPoint::resid_post(0),
        Intervention::Patch(ArrayD::zeros(IxDyn(&[1, 5, 32]))),
    ));
    assert!(m.run_with_hooks(&x, &wrong_shape).is_err());
    let no_such_layer = Hooks::new().with(Hook::new(HookPoint::resid_post(7), Intervention::Zero));
    assert!(m.run_with_hooks(&x, &no_such_layer).is_err());
    let heads_on_resid = Hooks::new()
        .with(Hook::new(HookPoint::resid_post(0), Intervention::Zero).at_heads(vec![0]));
    assert!(m.run_with_hooks(&x, &heads_on_resid).is_err());
}
