//! `loss-cusum` on planted training logs, through the `mesa-detect` contract.

use mesa_detect::{
    fit_model, score_model, AuditContext, DetectError, DetectorSpec, Family, Needs, Registry,
    Verdict,
};
use mesa_dynamics::{log_stats, register, LossCusumParams, NAME};
use mesa_nn::{HookPoint, Preset, StepLog, Tiny, Transformer};

fn model() -> Transformer {
    Transformer::new(Tiny::language_model(10, 16), 0).expect("model")
}

fn spec() -> DetectorSpec {
    DetectorSpec {
        seed: 0,
        hook: HookPoint::resid_post(0),
    }
}

/// A declining loss with multiplicative batch noise (`noise` = its relative size) and, over
/// `burst`, a loss excess of `height` times the trend that decays as it is learnt.
fn run(steps: usize, seed: u32, noise: f32, burst: Option<(usize, f32)>) -> Vec<StepLog> {
    let mut state = seed.wrapping_mul(2_654_435_761).wrapping_add(1);
    let mut uniform = move || {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        (state as f32 / u32::MAX as f32) - 0.5
    };
    (0..steps)
        .map(|t| {
            let trend = 3.0 * (-(t as f32) / 120.0).exp() + 0.05 * (-(t as f32) / 600.0).exp();
            let bump = match burst {
                Some((t0, height)) if t >= t0 => height * (-((t - t0) as f32) / 40.0).exp(),
                _ => 0.0,
            };
            StepLog {
                step: t,
                loss: trend * (1.0 + bump) * (1.0 + noise * uniform()),
                grad_norm: 1.0 + 0.1 * uniform(),
                lr: 1e-3,
            }
        })
        .collect()
}

fn audit(log: Option<&[StepLog]>) -> mesa_detect::Result<Verdict> {
    let mut registry = Registry::new();
    register(&mut registry).expect("register");
    let detector = registry.model(NAME, &spec()).expect("built");
    let context = AuditContext {
        training_log: log,
        ..AuditContext::default()
    };
    let fitted = fit_model(detector.as_ref(), &context)?;
    score_model(fitted.as_ref(), &model(), &context)
}

#[test]
fn a_late_burst_of_loss_excess_scores_above_a_smooth_decline() {
    // Noiseless: a decline is never excess.
    let smooth = audit(Some(&run(800, 0, 0.0, None))).expect("smooth");
    assert_eq!(smooth.score, 0.0);
    assert!(!smooth.evidence.metrics.contains_key("alarm_step"));
    for seed in 0..10 {
        let clean = audit(Some(&run(800, seed, 0.1, None))).expect("clean");
        let log = run(800, seed, 0.1, Some((500, 1.0)));
        let burst = audit(Some(&log)).expect("burst");
        assert!(
            burst.score > clean.score,
            "seed {seed}: burst {} <= clean {}",
            burst.score,
            clean.score
        );
        let m = &burst.evidence.metrics;
        let peak = m["cusum_max_step"];
        assert!((500.0..600.0).contains(&peak), "peak at {peak}");
        let alarm = m["alarm_step"];
        assert!((500.0..520.0).contains(&alarm), "alarm at {alarm}");
        assert!(m["share_above_threshold"] > 0.0);
        assert!(m["late_spike_share"] > 0.0);
    }
}

#[test]
fn an_early_burst_is_evidence_but_not_the_late_score() {
    let p = LossCusumParams::default();
    let early = log_stats(&p, &run(800, 3, 0.0, Some((200, 1.0)))).expect("stats");
    assert!(early.max > p.threshold && early.early_mean > 0.0);
    assert!((200..260).contains(&early.max_step), "{}", early.max_step);
    // By step 400 the burst is learnt and the statistic has drained.
    assert_eq!(early.late_mean, 0.0);
}

#[test]
fn a_missing_log_is_a_typed_error_not_a_score() {
    let err = audit(None).expect_err("no log");
    assert!(
        matches!(err, DetectError::MissingTrainingLog { .. }),
        "{err}"
    );
    let err = audit(Some(&[])).expect_err("empty log");
    assert!(
        matches!(err, DetectError::MissingTrainingLog { .. }),
        "{err}"
    );
}

#[test]
fn non_finite_negative_or_short_logs_are_refused() {
    let good = run(400, 1, 0.1, None);
    assert!(audit(Some(&good)).is_ok());
    let spoil = |i: usize, f: fn(&mut StepLog)| {
        let mut log = good.clone();
        f(&mut log[i]);
        audit(Some(&log)).expect_err("refused")
    };
    for (i, f) in [
        (5, (|e: &mut StepLog| e.loss = f32::NAN) as fn(&mut StepLog)),
        (300, |e| e.loss = f32::INFINITY),
        (7, |e| e.grad_norm = f32::NEG_INFINITY),
        (399, |e| e.lr = f32::NAN),
    ] {
        let err = spoil(i, f);
        assert!(matches!(err, DetectError::InvalidInputs { .. }), "{err}");
        assert!(err.to_string().contains("non-finite"), "{err}");
        assert!(err.to_string().contains(&format!("step {i}")), "{err}");
    }
    let err = spoil(10, |e| e.loss = -0.5);
    assert!(err.to_string().contains("negative"), "{err}");
    let err = audit(Some(&good[..150])).expect_err("too short");
    assert!(err.to_string().contains("150 steps"), "{err}");
    // An exact zero loss is floored, not an error.
    let mut zero = good.clone();
    zero[350].loss = 0.0;
    assert!(audit(Some(&zero)).is_ok());
}

#[test]
fn registered_as_a_dynamics_detector_that_needs_only_the_log() {
    let mut registry = Registry::new();
    register(&mut registry).expect("register");
    let entry = registry.model_entry(NAME).expect("entry");
    assert_eq!(entry.info.family, Family::Dynamics);
    assert_eq!(entry.info.needs, Needs::TRAINING_LOG);
    assert!(entry.info.sign_identifiable && !entry.info.control);
    assert!(register(&mut registry).is_err(), "registered twice");
    let bad = LossCusumParams {
        late_fraction: 0.0,
        ..LossCusumParams::default()
    };
    assert!(mesa_dynamics::LossCusumDetector::new(bad).is_err());
}
