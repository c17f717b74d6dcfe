//! The fingerprint's parts on models whose answers are known.

use mesa_gdfp::metrics::{ilwd, mean_cosine, predictions, sensitivities, RidgeProbe};
use mesa_gdfp::RegressionTasks;
use mesa_nn::{AttentionKind, InputFront, ModelConfig, Transformer};
use ndarray::{array, Array1, Array2, Array3};
use rand::{rngs::StdRng, Rng, SeedableRng};
use rand_distr::StandardNormal;

fn tasks(t: usize, n: usize, d: usize, seed: u64) -> RegressionTasks {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut g = || rng.sample::<f64, _>(StandardNormal);
    let xs = Array3::from_shape_fn((t, n, d), |_| g());
    let ys = Array2::from_shape_fn((t, n), |_| g());
    let xq = Array2::from_shape_fn((t, d), |_| g());
    RegressionTasks::new(xs, ys, xq, Array1::zeros(t)).unwrap()
}

#[test]
fn model_sensitivity_matches_finite_differences() {
    let config = ModelConfig {
        preset: "custom".into(),
        input: InputFront::Vectors { dim: 4 },
        d_out: 1,
        d_model: 8,
        n_heads: 2,
        d_head: 4,
        n_layers: 2,
        d_mlp: 16,
        max_seq: 0,
        attention: AttentionKind::Softmax,
        layer_norm: true,
    };
    let model = Transformer::new(config, 3).unwrap();
    let t = tasks(3, 5, 3, 1);
    let grad = sensitivities(&model, &t).unwrap();
    let eps = 1e-2;
    for (task, dim) in [(0, 0), (1, 2), (2, 1)] {
        let shifted = |delta: f64| {
            let mut xq = t.x_q.clone();
            xq[[task, dim]] += delta;
            predictions(&model, &t.with_queries(xq).unwrap()).unwrap()[task]
        };
        let fd = (shifted(eps) - shifted(-eps)) / (2.0 * eps);
        let g = grad[[task, dim]];
        assert!(
            (fd - g).abs() <= 0.05 * g.abs().max(1e-4),
            "task {task} dim {dim}: fd {fd}, grad {g}"
        );
    }
}

#[test]
fn cosine_and_ilwd_are_one_and_zero_for_identical_weights() {
    let w = array![[1.0, 2.0], [0.5, -1.0]];
    assert!((mean_cosine(&w, &w) - 1.0).abs() < 1e-12);
    assert!(ilwd(&w, &w).abs() < 1e-12);
    assert!((ilwd(&Array2::zeros((2, 2)), &w) - 1.0).abs() < 1e-12);
}

#[test]
fn ridge_probe_recovers_a_planted_linear_map() {
    let mut rng = StdRng::seed_from_u64(5);
    let f = Array2::from_shape_fn((200, 6), |_| rng.sample::<f64, _>(StandardNormal));
    let b = Array2::from_shape_fn((6, 2), |_| rng.sample::<f64, _>(StandardNormal));
    let y = f.dot(&b);
    let probe = RidgeProbe::fit(&f, &y, 1e-8).unwrap();
    assert!(probe.r2(&f, &y) > 0.999999);
}
