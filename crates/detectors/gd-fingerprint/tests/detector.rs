//! The fingerprint through the `mesa-detect` contract.

use mesa_detect::{fit_model, score_model, AuditContext, DetectorSpec, PromptSet, Registry};
use mesa_gdfp::{GdFingerprintParams, RegressionTasks};
use mesa_nn::{AttentionKind, HookPoint, InputFront, ModelConfig, Transformer};
use ndarray::{Array1, Array2, Array3};
use rand::{rngs::StdRng, Rng, SeedableRng};
use rand_distr::StandardNormal;

/// `t` tasks whose query targets are exactly one-step GD with learning rate `eta`.
fn gd_tasks(t: usize, n: usize, d: usize, eta: f64, seed: u64) -> RegressionTasks {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut g = || f64::from(rng.sample::<f32, _>(StandardNormal));
    let xs = Array3::from_shape_fn((t, n, d), |_| g());
    let ys = Array2::from_shape_fn((t, n), |_| g());
    let xq = Array2::from_shape_fn((t, d), |_| g());
    let tasks = RegressionTasks::new(xs, ys, xq, Array1::zeros(t)).expect("tasks");
    let y_q = (&tasks.xty() * &tasks.x_q).sum_axis(ndarray::Axis(1)) * eta;
    RegressionTasks::new(tasks.xs, tasks.ys, tasks.x_q, y_q).expect("tasks")
}

fn model(seed: u64) -> Transformer {
    let config = ModelConfig {
        preset: "custom".into(),
        input: InputFront::Vectors { dim: 4 },
        d_out: 1,
        d_model: 8,
        n_heads: 2,
        d_head: 4,
        n_layers: 1,
        d_mlp: 16,
        max_seq: 0,
        attention: AttentionKind::Softmax,
        layer_norm: true,
    };
    Transformer::new(config, seed).expect("model")
}

#[test]
fn tasks_survive_the_model_input_format_and_the_line_search_finds_the_rate() {
    let tasks = gd_tasks(20, 6, 3, 0.7, 1);
    let back = RegressionTasks::from_inputs(&[tasks.encode()], tasks.y_q.as_slice().unwrap())
        .expect("decoded");
    assert_eq!(back, tasks, "f32-exact tasks come back unchanged");
    let eta = back.line_search_gd1().expect("eta");
    assert!((eta - 0.7).abs() < 1e-9, "eta {eta}");
    assert!(RegressionTasks::from_inputs(&[tasks.encode()], &[1.0]).is_err());
}

#[test]
fn the_registered_fingerprint_equals_the_direct_measurement() {
    let (fit, eval) = (gd_tasks(24, 6, 3, 0.5, 2), gd_tasks(24, 6, 3, 0.5, 3));
    let (fit_in, eval_in) = ([fit.encode()], [eval.encode()]);
    let (audited, baseline) = (model(4), model(5));
    let clean = [&baseline];
    let context = AuditContext {
        prompts: PromptSet {
            inputs: &fit_in,
            targets: fit.y_q.as_slice(),
        },
        held_out: PromptSet {
            inputs: &eval_in,
            targets: eval.y_q.as_slice(),
        },
        clean_references: &clean,
        ..AuditContext::default()
    };
    let mut registry = Registry::new();
    mesa_gdfp::register(&mut registry).expect("register");
    let spec = DetectorSpec {
        seed: 9,
        hook: HookPoint::Embed,
    };
    let detector = registry.model("gd-fingerprint", &spec).expect("built");
    let fitted = fit_model(detector.as_ref(), &context).expect("fit");
    let verdict = score_model(fitted.as_ref(), &audited, &context).expect("verdict");
    let direct = GdFingerprintParams::default()
        .seed(9)
        .check()
        .expect("params")
        .measure(&audited, &baseline, &fit, &eval, &(eval.xty() * 0.5))
        .expect("measured");
    assert!((verdict.score - direct.score).abs() < 1e-9);
    assert!((verdict.evidence.metrics["sens_cos"] - direct.sens_cos).abs() < 1e-9);
    // Without targets, or without a reference of its architecture, it refuses.
    let no_targets = AuditContext {
        prompts: PromptSet::new(&fit_in),
        ..context
    };
    assert!(fit_model(detector.as_ref(), &no_targets).is_err());
    let other = Transformer::new(
        ModelConfig {
            d_model: 12,
            d_head: 6,
            ..audited.config().clone()
        },
        1,
    )
    .expect("model");
    let wrong = [&other];
    let wrong_refs = AuditContext {
        clean_references: &wrong,
        ..context
    };
    assert!(score_model(fitted.as_ref(), &audited, &wrong_refs).is_err());
}
