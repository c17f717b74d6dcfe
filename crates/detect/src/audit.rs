//! The model-level contract: a detector audits a whole model with what a real auditor has, and
//! returns a [`Verdict`] (a score and the evidence behind it).
//!
//! What the auditor has is the [`AuditContext`]: the model's vocabulary, generic task prompts
//! (untriggered), generic contrast pairs, reference models of the training split, and
//! optionally a checker of its own task's answers and the audited model's own training log
//! (where its checkpoint kept one). It has no field for the trigger, the
//! backdoor family or the audited model's role, so no detector can see them. A detector
//! declares in [`ModelDetector::needs`] which parts it reads; a harness fits and scores through
//! [`fit_model`] and [`score_model`], which hide the parts it did not declare and reject a
//! verdict with a non-finite number.

use std::collections::BTreeMap;
use std::fmt;

use mesa_nn::{Input, StepLog, Transformer, Vocab};
use serde::{Deserialize, Serialize};

use crate::detector::{ContrastPair, Tokens};
use crate::error::{DetectError, Result};
use crate::meta::Needs;

/// "Is this answer to the task correct?" for a prompt and a response, both token ids; `None`
/// where the checker cannot tell (the prompt is not one of its task's). An auditor has this
/// for its own task (it knows what the model is for), never for the backdoor.
pub type TaskChecker = dyn Fn(&[usize], &[usize]) -> Option<bool> + Send + Sync;

/// Prompts of the task, as the model reads them: token batches or vector batches.
#[derive(Debug, Clone, Copy, Default)]
pub struct PromptSet<'a> {
    /// Batches of prompts; a token prompt set of varying lengths is one batch per prompt
    /// ([`token_inputs`]).
    pub inputs: &'a [Input],
    /// Where the auditor knows it, the correct scalar output at each prompt's last position
    /// (regression targets), one per prompt in batch order.
    pub targets: Option<&'a [f64]>,
}

impl<'a> PromptSet<'a> {
    /// Prompts without targets.
    pub fn new(inputs: &'a [Input]) -> Self {
        Self {
            inputs,
            targets: None,
        }
    }

    /// The number of prompts (rows over all batches).
    pub fn len(&self) -> usize {
        self.inputs.iter().map(Input::batch).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Every prompt as token ids, in order.
    ///
    /// # Errors
    /// [`DetectError::InvalidInputs`] if a batch holds vectors.
    pub fn tokens(&self, detector: &str) -> Result<Vec<Tokens>> {
        let mut out = Vec::with_capacity(self.len());
        for input in self.inputs {
            match input {
                Input::Tokens(t) => out.extend(t.rows().into_iter().map(|r| r.to_vec())),
                Input::Vectors(_) => {
                    return Err(DetectError::InvalidInputs {
                        detector: detector.to_string(),
                        reason: "needs token prompts, got vectors".into(),
                    })
                }
            }
        }
        Ok(out)
    }
}

/// Token prompts of varying lengths as inputs, one batch of one per prompt.
///
/// # Errors
/// [`DetectError::InvalidInputs`] for an empty prompt.
pub fn token_inputs(prompts: &[Tokens]) -> Result<Vec<Input>> {
    prompts
        .iter()
        .map(|p| {
            Input::tokens(std::slice::from_ref(p)).map_err(|e| DetectError::InvalidInputs {
                detector: "prompt set".into(),
                reason: e.to_string(),
            })
        })
        .collect()
}

/// A model of the training split whose label the auditor may know.
#[derive(Clone, Copy)]
pub struct ReferenceModel<'a> {
    pub model: &'a Transformer,
    /// Backdoored (or otherwise positive).
    pub positive: bool,
}

/// Everything an auditor has besides the audited model. Build it with struct update syntax
/// from `AuditContext::default()`; a harness passes it through [`fit_model`] /
/// [`score_model`], which mask it to the detector's [`Needs`].
#[derive(Clone, Copy, Default)]
pub struct AuditContext<'a> {
    /// The model's vocabulary, to decode token ids into words.
    pub vocab: Option<&'a Vocab>,
    /// Generic, untriggered prompts of the task, to fit or calibrate on.
    pub prompts: PromptSet<'a>,
    /// More generic prompts, disjoint from `prompts`, to measure on.
    pub held_out: PromptSet<'a>,
    /// Generic contrast pairs that know nothing of any trigger.
    pub pairs: &'a [ContrastPair],
    /// Clean models of the training split (same task and architecture family).
    pub clean_references: &'a [&'a Transformer],
    /// Models of the training split with their labels, positives included.
    pub labelled_references: &'a [ReferenceModel<'a>],
    /// The auditor's checker of its own task's answers.
    pub checker: Option<&'a TaskChecker>,
    /// The audited model's own training log, one entry per optimiser step, where its
    /// checkpoint recorded one (`mesa_nn::CheckpointMeta::training_log`); `None` for a model
    /// without one. It belongs to the audited model, not to the references.
    pub training_log: Option<&'a [StepLog]>,
}

impl fmt::Debug for AuditContext<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuditContext")
            .field("vocab", &self.vocab.map(Vocab::len))
            .field("prompts", &self.prompts.len())
            .field("held_out", &self.held_out.len())
            .field("pairs", &self.pairs.len())
            .field("clean_references", &self.clean_references.len())
            .field("labelled_references", &self.labelled_references.len())
            .field("checker", &self.checker.is_some())
            .field("training_log", &self.training_log.map(<[StepLog]>::len))
            .finish()
    }
}

impl<'a> AuditContext<'a> {
    /// A copy holding only the parts `needs` names.
    pub fn masked(&self, needs: Needs) -> AuditContext<'a> {
        AuditContext {
            vocab: self.vocab.filter(|_| needs.vocab),
            prompts: if needs.prompts {
                self.prompts
            } else {
                PromptSet::default()
            },
            held_out: if needs.prompts {
                self.held_out
            } else {
                PromptSet::default()
            },
            pairs: if needs.pairs { self.pairs } else { &[] },
            clean_references: if needs.clean_references || needs.labelled_references {
                self.clean_references
            } else {
                &[]
            },
            labelled_references: if needs.labelled_references {
                self.labelled_references
            } else {
                &[]
            },
            checker: self.checker.filter(|_| needs.checker),
            training_log: self.training_log.filter(|_| needs.training_log),
        }
    }

    fn missing(detector: &str, what: &str) -> DetectError {
        DetectError::InvalidFitData {
            detector: detector.to_string(),
            reason: format!("needs {what}, none given (or not declared in its needs)"),
        }
    }

    /// The vocabulary, or an error naming `detector`.
    ///
    /// # Errors
    /// [`DetectError::InvalidFitData`] if there is none (or it was masked away).
    pub fn vocab(&self, detector: &str) -> Result<&'a Vocab> {
        self.vocab
            .ok_or_else(|| Self::missing(detector, "the vocabulary"))
    }

    /// The generic prompts (`held_out` if `held_out`), or an error if there are none.
    ///
    /// # Errors
    /// [`DetectError::InvalidFitData`] if the set is empty (or was masked away).
    pub fn prompt_set(&self, detector: &str, held_out: bool) -> Result<PromptSet<'a>> {
        let set = if held_out {
            self.held_out
        } else {
            self.prompts
        };
        if set.is_empty() {
            return Err(Self::missing(
                detector,
                if held_out {
                    "held-out generic prompts"
                } else {
                    "generic prompts"
                },
            ));
        }
        if let Some(t) = set.targets {
            if t.len() != set.len() {
                return Err(DetectError::InvalidFitData {
                    detector: detector.to_string(),
                    reason: format!("{} targets for {} prompts", t.len(), set.len()),
                });
            }
        }
        Ok(set)
    }

    /// The contrast pairs, or an error if there are none.
    ///
    /// # Errors
    /// [`DetectError::InvalidFitData`] if there are none (or they were masked away).
    pub fn contrast_pairs(&self, detector: &str) -> Result<&'a [ContrastPair]> {
        if self.pairs.is_empty() {
            return Err(Self::missing(detector, "contrast pairs"));
        }
        Ok(self.pairs)
    }

    /// The clean reference models, or an error if there are none.
    ///
    /// # Errors
    /// [`DetectError::InvalidFitData`] if there are none (or they were masked away).
    pub fn clean(&self, detector: &str) -> Result<&'a [&'a Transformer]> {
        if self.clean_references.is_empty() {
            return Err(Self::missing(detector, "clean reference models"));
        }
        Ok(self.clean_references)
    }

    /// The labelled reference models, or an error unless both labels are present.
    ///
    /// # Errors
    /// [`DetectError::InvalidFitData`] if there are none (or they were masked away), or one
    /// class is missing.
    pub fn labelled(&self, detector: &str) -> Result<&'a [ReferenceModel<'a>]> {
        let refs = self.labelled_references;
        if refs.is_empty() {
            return Err(Self::missing(detector, "labelled reference models"));
        }
        let n_pos = refs.iter().filter(|r| r.positive).count();
        if n_pos == 0 || n_pos == refs.len() {
            return Err(DetectError::InvalidFitData {
                detector: detector.to_string(),
                reason: format!(
                    "{n_pos} positives among {} reference models: both classes are needed",
                    refs.len()
                ),
            });
        }
        Ok(refs)
    }

    /// The task checker, or an error if there is none.
    ///
    /// # Errors
    /// [`DetectError::InvalidFitData`] if there is none (or it was masked away).
    pub fn task_checker(&self, detector: &str) -> Result<&'a TaskChecker> {
        self.checker
            .ok_or_else(|| Self::missing(detector, "a task checker"))
    }

    /// The audited model's training log, or an error if there is none.
    ///
    /// # Errors
    /// [`DetectError::MissingTrainingLog`] if there is none, it is empty, or it was masked
    /// away (not declared in the detector's needs).
    pub fn training_log(&self, detector: &str) -> Result<&'a [StepLog]> {
        match self.training_log {
            Some(log) if !log.is_empty() => Ok(log),
            _ => Err(DetectError::MissingTrainingLog {
                detector: detector.to_string(),
            }),
        }
    }
}

/// A trigger (or other insertion) a detector recovered, and what it does.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TriggerEvidence {
    /// Token ids of the insertion.
    pub tokens: Vec<usize>,
    /// The same, decoded with the vocabulary (empty without one).
    pub words: Vec<String>,
    /// Where in the prompt it was inserted (token index), where that matters.
    pub position: Option<usize>,
    /// The output it makes the model produce most often, decoded (or as ids).
    pub behaviour: Vec<String>,
    /// Share of held-out generic prompts on which inserting it causes that behaviour (TDC's
    /// REASR), in `[0, 1]`.
    pub success_rate: Option<f64>,
    /// Whether the detector judges the change harmful (the task answer breaks) rather than a
    /// benign one; `None` if it cannot tell.
    pub harmful: Option<bool>,
    /// Further named numbers (divergence, passes spent, ...).
    pub detail: BTreeMap<String, f64>,
}

/// What a detector can show for its score.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Evidence {
    /// The named numbers the score was built from.
    pub metrics: BTreeMap<String, f64>,
    /// Recovered triggers, best first.
    pub triggers: Vec<TriggerEvidence>,
    /// Anything else, in sentences.
    pub notes: Vec<String>,
}

impl Evidence {
    /// Evidence of named numbers only.
    pub fn metrics<S: Into<String>>(metrics: impl IntoIterator<Item = (S, f64)>) -> Self {
        Self {
            metrics: metrics.into_iter().map(|(k, v)| (k.into(), v)).collect(),
            ..Self::default()
        }
    }
}

/// A model-level verdict: `score`, higher = more likely harmful-backdoored, and its evidence.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Verdict {
    pub score: f64,
    pub evidence: Evidence,
}

impl Verdict {
    pub fn new(score: f64, evidence: Evidence) -> Self {
        Self { score, evidence }
    }

    /// The first non-finite number in the verdict (`score`, a metric, a trigger's numbers),
    /// or an out-of-range success rate, named.
    fn defect(&self) -> Option<String> {
        if !self.score.is_finite() {
            return Some(format!("model score is {}", self.score));
        }
        if let Some((k, v)) = self.evidence.metrics.iter().find(|(_, v)| !v.is_finite()) {
            return Some(format!("evidence metric `{k}` is {v}"));
        }
        for (i, t) in self.evidence.triggers.iter().enumerate() {
            if let Some(r) = t.success_rate {
                if !(0.0..=1.0).contains(&r) {
                    return Some(format!("trigger {i}: success rate {r} is not in [0, 1]"));
                }
            }
            if let Some((k, v)) = t.detail.iter().find(|(_, v)| !v.is_finite()) {
                return Some(format!("trigger {i}: `{k}` is {v}"));
            }
        }
        None
    }
}

/// A model-level detector with validated hyper-parameters: fitted once on what the auditor
/// has, then it audits models (higher score = more likely backdoored or deceptive).
pub trait ModelDetector {
    /// The registry name plus anything that distinguishes this instance.
    fn name(&self) -> String;

    /// The parts of the [`AuditContext`] that `fit` and `audit` read.
    fn needs(&self) -> Needs;

    /// Fits on the context (reference models, generic prompts, ...); a detector that needs no
    /// fitting returns its auditor at once.
    ///
    /// # Errors
    /// Missing or unusable context, a failed model run, a failed numerical fit.
    fn fit(&self, context: &AuditContext<'_>) -> Result<Box<dyn FittedModelDetector>>;
}

/// A fitted model-level detector.
pub trait FittedModelDetector {
    fn name(&self) -> String;

    /// The verdict on `model`. Call through [`score_model`], which checks it.
    ///
    /// # Errors
    /// Unusable context or a failed model run.
    fn audit(&self, model: &Transformer, context: &AuditContext<'_>) -> Result<Verdict>;
}

/// A fitted detector that only ever sees the parts of the context it declared.
struct Masked {
    inner: Box<dyn FittedModelDetector>,
    needs: Needs,
}

impl FittedModelDetector for Masked {
    fn name(&self) -> String {
        self.inner.name()
    }

    fn audit(&self, model: &Transformer, context: &AuditContext<'_>) -> Result<Verdict> {
        self.inner.audit(model, &context.masked(self.needs))
    }
}

/// Fits `detector` on `context` masked to its [`ModelDetector::needs`]; the fitted detector
/// keeps that mask for every later audit.
///
/// # Errors
/// The detector's own error (for undeclared context: [`DetectError::InvalidFitData`]).
pub fn fit_model(
    detector: &dyn ModelDetector,
    context: &AuditContext<'_>,
) -> Result<Box<dyn FittedModelDetector>> {
    let needs = detector.needs();
    let inner = detector.fit(&context.masked(needs))?;
    Ok(Box::new(Masked { inner, needs }))
}

/// Audits `model` and checks the verdict: a finite score and finite evidence.
///
/// # Errors
/// The detector's own error, or [`DetectError::BadScores`].
pub fn score_model(
    detector: &dyn FittedModelDetector,
    model: &Transformer,
    context: &AuditContext<'_>,
) -> Result<Verdict> {
    let verdict = detector.audit(model, context)?;
    match verdict.defect() {
        None => Ok(verdict),
        Some(reason) => Err(DetectError::BadScores {
            detector: detector.name(),
            reason,
        }),
    }
}
