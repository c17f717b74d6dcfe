//! The risk model on planted detector scores with known ground truth.

use mesa_audit::{judge, AuditError, DetectorColumn, ModelScores, Outcome, RiskModel, RiskParams};
use rand::rngs::StdRng;
use rand::SeedableRng;
use rand_distr::{Distribution, Normal};

fn columns() -> Vec<DetectorColumn> {
    [
        ("grad", "gradient"),
        ("act", "activation"),
        ("noise", "behavioural"),
    ]
    .iter()
    .map(|(n, f)| DetectorColumn {
        name: (*n).into(),
        family: (*f).into(),
    })
    .collect()
}

/// `grad` and `act` separate the classes by 1.5 standard deviations each, independently;
/// `noise` is pure noise.
fn population(n_per_class: usize, seed: u64) -> (Vec<ModelScores>, Vec<bool>) {
    let mut rng = StdRng::seed_from_u64(seed);
    let unit = Normal::new(0.0, 1.0).unwrap();
    let mut models = Vec::new();
    let mut labels = Vec::new();
    for i in 0..2 * n_per_class {
        let label = i % 2 == 0;
        let shift = if label { 1.5 } else { 0.0 };
        models.push(ModelScores::from([
            (
                "grad".to_string(),
                Outcome::Score(shift + unit.sample(&mut rng)),
            ),
            (
                "act".to_string(),
                Outcome::Score(2.0 * (shift + unit.sample(&mut rng))),
            ),
            ("noise".to_string(), Outcome::Score(unit.sample(&mut rng))),
        ]));
        labels.push(label);
    }
    (models, labels)
}

#[test]
fn aggregate_is_calibrated_and_beats_each_single_detector_on_held_out_models() {
    let (train, train_y) = population(200, 1);
    let (test, test_y) = population(1000, 2);
    let params = RiskParams {
        n_bootstrap: 20,
        ..RiskParams::default()
    };
    let model = RiskModel::fit(&columns(), &train, &train_y, &params).unwrap();
    let risk: Vec<f64> = test
        .iter()
        .map(|m| model.verdict(m).unwrap().risk)
        .collect();
    let control: Vec<f64> = train
        .iter()
        .zip(&train_y)
        .filter(|(_, &l)| !l)
        .map(|(m, _)| model.verdict(m).unwrap().risk)
        .collect();
    let singles: Vec<(String, Vec<f64>)> = ["grad", "act", "noise"]
        .iter()
        .map(|&name| {
            let s = test
                .iter()
                .map(|m| match m[name] {
                    Outcome::Score(s) => s,
                    Outcome::Failed(_) => unreachable!(),
                })
                .collect();
            (name.to_string(), s)
        })
        .collect();
    let j = judge(&risk, &test_y, &control, &singles, 0.01, 7).unwrap();
    // Two independent 1.5-sd detectors: each alone has AUROC Phi(1.5 / sqrt 2) = 0.856; the
    // optimal combination Phi(1.5) = 0.933.
    assert!(j.best_single_auroc.unwrap() < 0.89, "{j:?}");
    assert!(j.auroc > 0.91, "{j:?}");
    assert!(j.delong_p_vs_best.unwrap() < 0.001, "{j:?}");
    // Calibrated on held-out models drawn like the training ones.
    assert!(j.ece < 0.05, "{j:?}");
    assert!(
        j.cross_entropy < 0.45 && j.cross_entropy_lo <= j.cross_entropy,
        "{j:?}"
    );
    // The pure-noise detector gets a small weight next to the informative ones.
    let v = model.verdict(&test[0]).unwrap();
    let w = |n: &str| v.detectors.iter().find(|d| d.name == n).unwrap().weight;
    assert!(w("noise").abs() < 0.25 * w("grad").min(w("act")), "{v:?}");
}

#[test]
fn planted_positive_is_high_risk_with_interval_and_consensus() {
    let (train, train_y) = population(30, 3);
    let model = RiskModel::fit(&columns(), &train, &train_y, &RiskParams::default()).unwrap();
    let strong = ModelScores::from([
        ("grad".to_string(), Outcome::Score(4.0)),
        ("act".to_string(), Outcome::Score(8.0)),
        ("noise".to_string(), Outcome::Score(0.0)),
    ]);
    let v = model.verdict(&strong).unwrap();
    assert!(v.risk > 0.95, "{v:?}");
    assert!(v.lo <= v.risk && v.risk <= v.hi && v.hi <= 1.0);
    assert!(v.flagged_families.contains(&"gradient".to_string()));
    assert!(v.flagged_families.contains(&"activation".to_string()));
    let benign = ModelScores::from([
        ("grad".to_string(), Outcome::Score(-1.0)),
        ("act".to_string(), Outcome::Score(-2.0)),
        ("noise".to_string(), Outcome::Score(0.0)),
    ]);
    assert!(model.verdict(&benign).unwrap().risk < 0.1);
    // Same seed, same interval.
    let again = RiskModel::fit(&columns(), &train, &train_y, &RiskParams::default()).unwrap();
    assert_eq!(again.verdict(&strong).unwrap(), v);
}

#[test]
fn failed_detectors_are_missing_never_clear_and_all_failed_is_refused() {
    let (train, train_y) = population(30, 4);
    let model = RiskModel::fit(&columns(), &train, &train_y, &RiskParams::default()).unwrap();
    let partial = ModelScores::from([
        ("grad".to_string(), Outcome::Failed("out of memory".into())),
        ("act".to_string(), Outcome::Score(0.0)),
        ("noise".to_string(), Outcome::Score(0.0)),
    ]);
    let v = model.verdict(&partial).unwrap();
    assert_eq!(v.missing, vec!["grad".to_string()]);
    assert!(!v.clear_families.contains(&"gradient".to_string()));
    assert!(v.risk.is_finite());
    let all_failed: ModelScores = ["grad", "act", "noise"]
        .iter()
        .map(|n| (n.to_string(), Outcome::Failed("broken".into())))
        .collect();
    assert!(matches!(
        model.verdict(&all_failed),
        Err(AuditError::AllFailed(_))
    ));
    // A NaN score is an error, not a number to impute.
    let nan = ModelScores::from([
        ("grad".to_string(), Outcome::Score(f64::NAN)),
        ("act".to_string(), Outcome::Score(0.0)),
        ("noise".to_string(), Outcome::Score(0.0)),
    ]);
    assert!(matches!(
        model.verdict(&nan),
        Err(AuditError::NonFinite { .. })
    ));
    // A detector the model was not fitted on, or one that was not run, is refused.
    let mut extra = partial.clone();
    extra.insert("new".into(), Outcome::Score(1.0));
    assert!(matches!(
        model.verdict(&extra),
        Err(AuditError::DetectorMismatch(_))
    ));
    let mut absent = partial;
    absent.remove("noise");
    assert!(matches!(
        model.verdict(&absent),
        Err(AuditError::DetectorMismatch(_))
    ));
}

#[test]
fn refuses_training_sets_it_cannot_fit() {
    let (train, _) = population(5, 5);
    let all_pos = vec![true; train.len()];
    assert!(RiskModel::fit(&columns(), &train, &all_pos, &RiskParams::default()).is_err());
    let bad = RiskParams {
        l2: 0.0,
        ..RiskParams::default()
    };
    let labels: Vec<bool> = (0..train.len()).map(|i| i % 2 == 0).collect();
    assert!(RiskModel::fit(&columns(), &train, &labels, &bad).is_err());
}
