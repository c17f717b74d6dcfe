//! Probes on synthetic activations with a known (planted) direction.

use linfa::prelude::*;
use mesa_probe::{
    random_direction_baseline, shuffled_label_null, shuffled_labels, sign_free, LinearProbe,
    LogisticProbeParams, MeanDiffParams, NullSummary, PcaDirectionParams, ProbeMethod,
};
use ndarray::{Array1, Array2};
use rand::rngs::StdRng;
use rand::SeedableRng;
use rand_distr::{Distribution, StandardNormal};

const D: usize = 24;

/// A random unit vector: the concept direction.
fn planted(seed: u64) -> Array1<f64> {
    let mut rng = StdRng::seed_from_u64(seed);
    let u: Array1<f64> = (0..D).map(|_| StandardNormal.sample(&mut rng)).collect();
    &u / u.dot(&u).sqrt()
}

/// `n` rows of isotropic noise (with unequal per-feature scales), positives shifted by
/// `shift * u`; alternate rows are positive.
fn data(n: usize, u: &Array1<f64>, shift: f64, seed: u64) -> (Array2<f64>, Array1<bool>) {
    let mut rng = StdRng::seed_from_u64(seed);
    let labels: Array1<bool> = (0..n).map(|i| i % 2 == 0).collect();
    let mut x = Array2::from_shape_fn((n, D), |(_, j)| {
        let z: f64 = StandardNormal.sample(&mut rng);
        z * (1.0 + j as f64 / D as f64)
    });
    for (mut row, &l) in x.rows_mut().into_iter().zip(&labels) {
        if l {
            row.scaled_add(shift, u);
        }
    }
    (x, labels)
}

fn cosine(a: &Array1<f64>, b: &Array1<f64>) -> f64 {
    a.dot(b) / (a.dot(a).sqrt() * b.dot(b).sqrt())
}

fn test_auroc(probe: &LinearProbe, x: &Array2<f64>, y: &Array1<bool>) -> f64 {
    let scores = probe.scores(x).expect("scores");
    mesa_eval::auroc(&scores.to_vec(), &y.to_vec()).expect("auroc")
}

#[test]
fn probe_recovers_planted_direction() {
    let u = planted(1);
    let (x, y) = data(600, &u, 2.5, 2);
    let (xt, yt) = data(400, &u, 2.5, 3);
    let train = Dataset::new(x, y);
    // The planted direction itself is the ceiling (noise is not isotropic, so a reweighted
    // direction can do slightly better; none can do much better).
    let oracle = test_auroc(&LinearProbe::new(u.clone(), 0.0), &xt, &yt);
    println!("oracle (planted direction): held-out AUROC {oracle:.3}");

    let logistic = LogisticProbeParams::new(7).fit(&train).expect("logistic");
    let mean_diff = MeanDiffParams::new().fit(&train).expect("mean-diff");
    let lda = MeanDiffParams::lda().fit(&train).expect("lda");
    for (name, probe, min_cos) in [
        ("logistic", &logistic, 0.8),
        ("mean-diff", &mean_diff, 0.9),
        ("lda", &lda, 0.8),
    ] {
        let cos = cosine(&probe.direction(), &u);
        let auroc = test_auroc(probe, &xt, &yt);
        println!("{name}: cos {cos:.3}, held-out AUROC {auroc:.3}");
        assert!(cos > min_cos, "{name}: cosine {cos}");
        assert!(
            auroc > oracle - 0.03,
            "{name}: AUROC {auroc}, oracle {oracle}"
        );
    }
    assert!(logistic.chosen_alpha().is_some());

    // LAT on paired differences: each pair differs by the concept plus noise.
    let (noise_a, _) = data(300, &u, 0.0, 4);
    let (noise_b, _) = data(300, &u, 0.0, 5);
    let diffs = &noise_a - &noise_b + &(&u * 3.0);
    let lat = PcaDirectionParams::lat(0)
        .fit(&DatasetBase::from(diffs))
        .expect("lat");
    let cos = cosine(&lat.direction(), &u);
    println!("lat: cos {cos:.3}");
    assert!(cos > 0.9, "lat: cosine {cos}");

    // The top PC of unlabelled data whose largest variance is the concept (sign arbitrary).
    let (xu, _) = data(600, &u, 8.0, 6);
    let top = PcaDirectionParams::top_pc(0)
        .fit(&DatasetBase::from(xu))
        .expect("top pc");
    let cos = cosine(&top.direction(), &u).abs();
    println!("top-pc: |cos| {cos:.3}");
    assert!(cos > 0.9, "top-pc: |cosine| {cos}");
}

#[test]
fn shuffled_label_probe_is_near_chance() {
    // One shuffled probe points in a random direction, whose AUROC spreads widely around 0.5
    // in 24 dimensions; the mean over 20 shuffles must sit at chance (its standard error is
    // about 0.03) while the real probe is far above it.
    let u = planted(11);
    let (x, y) = data(600, &u, 2.5, 12);
    let (xt, yt) = data(1000, &u, 2.5, 13);
    let real = LogisticProbeParams::new(15)
        .fit(&Dataset::new(x.clone(), y.clone()))
        .expect("fit");
    let real = test_auroc(&real, &xt, &yt);
    let aurocs: Vec<f64> = (0..20)
        .map(|k| {
            let shuffled = Array1::from(shuffled_labels(&y.to_vec(), 100 + k));
            let probe = LogisticProbeParams::new(k)
                .fit(&Dataset::new(x.clone(), shuffled))
                .expect("fit");
            test_auroc(&probe, &xt, &yt)
        })
        .collect();
    let mean = aurocs.iter().sum::<f64>() / aurocs.len() as f64;
    let max = aurocs.iter().copied().fold(0.0, f64::max);
    println!("shuffled-label probes: mean held-out AUROC {mean:.3}, max {max:.3}; real {real:.3}");
    assert!((mean - 0.5).abs() < 0.08, "mean AUROC {mean}");
    assert!(max < real - 0.1, "max shuffled {max}, real {real}");
}

#[test]
fn random_directions_fall_well_below_the_probe() {
    let u = planted(21);
    let (x, y) = data(400, &u, 2.5, 22);
    let baseline = random_direction_baseline(&x, &y.to_vec(), 1000, 23).expect("baseline");
    assert_eq!(baseline.aurocs.len(), 1000);
    assert!(baseline.p95 <= baseline.best);
    let probe = MeanDiffParams::new()
        .fit(&Dataset::new(x.clone(), y.clone()))
        .expect("fit");
    let auroc = test_auroc(&probe, &x, &y);
    println!(
        "random p95 {:.3}, best {:.3}, probe {auroc:.3}",
        baseline.p95, baseline.best
    );
    assert!(baseline.p95 < auroc);
    // Random directions are symmetric around chance.
    let mean = baseline.aurocs.iter().sum::<f64>() / 1000.0;
    assert!((mean - 0.5).abs() < 0.05, "mean random AUROC {mean}");
}

#[test]
fn sign_free_baseline_folds_each_direction() {
    // Pure noise: no direction is special, so about half the AUROCs fall below 0.5.
    let u = planted(41);
    let (x, y) = data(300, &u, 0.0, 42);
    let baseline = random_direction_baseline(&x, &y.to_vec(), 200, 43).expect("baseline");
    let folded: Vec<f64> = baseline.aurocs.iter().map(|&a| sign_free(a)).collect();
    for (&a, &f) in baseline.aurocs.iter().zip(&folded) {
        assert_eq!(f, a.max(1.0 - a));
        assert!(f >= 0.5);
    }
    let below = baseline.aurocs.iter().filter(|&&a| a < 0.5).count();
    assert!((60..=140).contains(&below), "{below} of 200 below chance");
    let summary = NullSummary::of(&folded).expect("summary");
    assert_eq!(baseline.p95_sign_free, summary.p95);
    let worst = baseline.aurocs.iter().copied().fold(1.0, f64::min);
    assert_eq!(baseline.best_sign_free, baseline.best.max(1.0 - worst));
    println!(
        "noise: random p95 {:.3} signed, {:.3} sign-free",
        baseline.p95, baseline.p95_sign_free
    );
}

#[test]
fn shuffled_null_on_noise_sits_at_chance() {
    // No class signal at all: the shuffled-label probes' test AUROCs centre on 0.5, spread
    // above it, and the sign-free null sits above the signed one at every summary.
    let u = planted(51);
    let (x, y) = data(400, &u, 0.0, 52);
    let (xt, yt) = data(400, &u, 0.0, 53);
    for method in [
        ProbeMethod::Logistic,
        ProbeMethod::MeanDiff,
        ProbeMethod::Lda,
    ] {
        let null = shuffled_label_null(&x, &y.to_vec(), &xt, &yt.to_vec(), 20, 54, |x, y| {
            method.fit_labelled(x.clone(), y, 55)
        })
        .expect("null");
        let (s, f) = (null.signed, null.sign_free);
        println!(
            "{method}: shuffled null mean {:.3} p95 {:.3} max {:.3}; sign-free {:.3} / {:.3} / {:.3}",
            s.mean, s.p95, s.max, f.mean, f.p95, f.max
        );
        assert_eq!(null.aurocs.len(), 20);
        assert!((s.mean - 0.5).abs() < 0.05, "{method}: mean {}", s.mean);
        assert!(s.p95 > 0.5 && s.p95 > s.mean, "{method}: p95 {}", s.p95);
        assert!(s.max >= s.p95);
        assert!(f.mean >= s.mean && f.p95 >= s.p95 && f.max >= s.max);
        assert!(f.mean >= 0.5);
    }
}

#[test]
fn shuffled_null_is_deterministic_and_below_a_real_probe() {
    let u = planted(61);
    let (x, y) = data(400, &u, 2.5, 62);
    let (xt, yt) = data(400, &u, 2.5, 63);
    let fit =
        |x: &Array2<f64>, y: Array1<bool>| ProbeMethod::MeanDiff.fit_labelled(x.clone(), y, 0);
    let a = shuffled_label_null(&x, &y.to_vec(), &xt, &yt.to_vec(), 10, 64, fit).expect("a");
    let b = shuffled_label_null(&x, &y.to_vec(), &xt, &yt.to_vec(), 10, 64, fit).expect("b");
    assert_eq!(a, b);
    let real = test_auroc(&fit(&x, y.clone()).expect("fit"), &xt, &yt);
    assert!(
        a.sign_free.max < real - 0.1,
        "null max {}, real {real}",
        a.sign_free.max
    );
    assert!(shuffled_label_null(&x, &y.to_vec(), &xt, &yt.to_vec(), 0, 64, fit).is_err());
    assert!(ProbeMethod::TopPc.fit_labelled(x.clone(), y, 0).is_err());
}

#[test]
fn invalid_params_and_data_are_errors() {
    let u = planted(31);
    let (x, y) = data(40, &u, 1.0, 32);
    assert!(LogisticProbeParams::new(0)
        .alphas(vec![])
        .fit(&Dataset::new(x.clone(), y.clone()))
        .is_err());
    assert!(MeanDiffParams::lda()
        .shrinkage(1.5)
        .fit(&Dataset::new(x.clone(), y.clone()))
        .is_err());
    let one_class = Array1::from(vec![true; 40]);
    assert!(MeanDiffParams::new()
        .fit(&Dataset::new(x.clone(), one_class))
        .is_err());
    let mut nan = x.clone();
    nan[[3, 4]] = f64::NAN;
    assert!(MeanDiffParams::new().fit(&Dataset::new(nan, y)).is_err());
    let probe = MeanDiffParams::new()
        .fit(&Dataset::new(
            x.clone(),
            Array1::from((0..40).map(|i| i % 2 == 0).collect::<Vec<_>>()),
        ))
        .expect("fit");
    assert!(probe.scores(&Array2::zeros((2, D + 1))).is_err());
}
