//! The reference learners are exact on hand-made tasks.

use mesa_icl::{line_search_gd1, sample_tasks, IclConfig, Learner, Task, TaskSource};
use ndarray::{array, Array1};
use rand::{rngs::StdRng, SeedableRng};

fn hand_task() -> Task {
    // Three examples in two dimensions, y = 2 x_0 - x_1, no noise.
    let xs = array![[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]];
    let w = array![2.0, -1.0];
    let ys = xs.dot(&w);
    Task {
        w,
        xs,
        ys,
        x_q: array![3.0, 4.0],
        y_q: 2.0,
    }
}

#[test]
fn least_squares_recovers_w_without_noise() {
    let t = hand_task();
    let w = Learner::LeastSquares.weights(&t).unwrap().unwrap();
    assert!((&w - &t.w).iter().all(|e| e.abs() < 1e-12), "{w}");
    assert!((Learner::LeastSquares.predict(&t).unwrap() - t.y_q).abs() < 1e-12);
    // And on random tasks with N >= d.
    let config = IclConfig::default();
    let tasks = sample_tasks(
        &config.task,
        &TaskSource::Fresh,
        20,
        15,
        &mut StdRng::seed_from_u64(3),
    );
    assert!(Learner::LeastSquares.mse(&tasks).unwrap() < 1e-16);
}

#[test]
fn one_step_gd_equals_eta_xty_over_n() {
    let t = hand_task();
    let eta = 0.7;
    let w = Learner::Gd1 { eta }.weights(&t).unwrap().unwrap();
    // X^T y = (2 + 1, -1 + 1) = (3, 0); divided by N = 3.
    let expected: Array1<f64> = array![3.0, 0.0] * (eta / 3.0);
    assert!((&w - &expected).iter().all(|e| e.abs() < 1e-12));
    let one = Learner::GdK { eta, steps: 1 }.weights(&t).unwrap().unwrap();
    assert!((&w - &one).iter().all(|e| e.abs() < 1e-12));
    let avg = Learner::Averaging.weights(&t).unwrap().unwrap();
    assert!((&avg - &(array![3.0, 0.0] / 3.0))
        .iter()
        .all(|e| e.abs() < 1e-12));
}

#[test]
fn many_gd_steps_and_small_ridge_converge_to_least_squares() {
    let t = hand_task();
    let gd = Learner::GdK {
        eta: 0.5,
        steps: 2000,
    }
    .weights(&t)
    .unwrap()
    .unwrap();
    let ridge = Learner::Ridge { lambda: 1e-10 }
        .weights(&t)
        .unwrap()
        .unwrap();
    for w in [gd, ridge] {
        assert!((&w - &t.w).iter().all(|e| e.abs() < 1e-8), "{w}");
    }
}

#[test]
fn nearest_neighbour_copies_the_closest_label() {
    let t = hand_task();
    // (3, 4) is closest to (1, 1), whose label is 1.
    assert_eq!(Learner::NearestNeighbour.predict(&t).unwrap(), 1.0);
    assert!(Learner::NearestNeighbour.weights(&t).unwrap().is_none());
}

#[test]
fn line_searched_gd1_rate_is_the_exact_minimiser() {
    let config = IclConfig::default();
    let tasks = sample_tasks(
        &config.task,
        &TaskSource::Fresh,
        500,
        10,
        &mut StdRng::seed_from_u64(4),
    );
    let eta = line_search_gd1(&tasks).unwrap();
    let at = |e: f64| Learner::Gd1 { eta: e }.mse(&tasks).unwrap();
    assert!(at(eta) < at(eta * 1.01) && at(eta) < at(eta * 0.99));
    // Theory for Gaussian x and w: eta* = N / (N + d + 1) = 10 / 21.
    assert!((eta - 10.0 / 21.0).abs() < 0.08, "eta {eta}");
}
