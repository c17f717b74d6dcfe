//! The input-level detector contract and the data it is fitted on.
//!
//! It follows linfa's shape: a detector value holds validated hyper-parameters (built by the
//! registry or by the detector crate's own params builder); `fit` returns a separate fitted
//! object; only a fitted object scores. A detector sees a model only as a [`Transformer`] from
//! `mesa-nn` (forward, `run_with_cache`, hooks, gradients) and inputs only as token ids, never
//! through an organism's internals. The model-level contract is in [`crate::audit`].

use mesa_nn::Transformer;

use crate::error::{DetectError, Result};
use crate::meta::Requires;

/// One input: token ids of a prompt, unpadded. Detectors that batch pad on the right, which a
/// causal model cannot see from earlier positions.
pub type Tokens = Vec<usize>;

/// Labelled inputs: `labels[i] == true` marks an input the detector should flag.
#[derive(Debug, Clone, Copy)]
pub struct Labelled<'a> {
    inputs: &'a [Tokens],
    labels: &'a [bool],
}

impl<'a> Labelled<'a> {
    /// Pairs inputs with labels.
    ///
    /// # Errors
    /// [`DetectError::InvalidFitData`] if the lengths differ, there are no inputs, or one class
    /// is empty.
    pub fn new(inputs: &'a [Tokens], labels: &'a [bool]) -> Result<Self> {
        let invalid = |reason: String| DetectError::InvalidFitData {
            detector: "labelled data".into(),
            reason,
        };
        if inputs.len() != labels.len() {
            return Err(invalid(format!(
                "{} inputs but {} labels",
                inputs.len(),
                labels.len()
            )));
        }
        let n_pos = labels.iter().filter(|&&l| l).count();
        if n_pos == 0 || n_pos == labels.len() {
            return Err(invalid(format!(
                "{n_pos} positives among {} inputs: both classes are needed",
                labels.len()
            )));
        }
        Ok(Self { inputs, labels })
    }

    pub fn inputs(&self) -> &'a [Tokens] {
        self.inputs
    }

    pub fn labels(&self) -> &'a [bool] {
        self.labels
    }
}

/// Two inputs that differ in one concept: `positive` has it (an answer "yes" to "is this
/// response dangerous ?"), `negative` lacks it (the same question answered "no").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContrastPair {
    pub positive: Tokens,
    pub negative: Tokens,
}

/// Everything an input-level detector may be fitted on. Which parts it needs, it says in
/// [`InputDetector::requires`]; a harness fits through [`fit_input`], which hides the parts it
/// did not declare, and [`FitData::check`] turns a missing part into an error.
#[derive(Debug, Clone, Copy, Default)]
pub struct FitData<'a> {
    /// Inputs with ground-truth labels (supervised detectors).
    pub labelled: Option<Labelled<'a>>,
    /// Inputs with no labels (unsupervised detectors).
    pub unlabelled: &'a [Tokens],
    /// Generic contrast pairs that know nothing of the organism's trigger.
    pub pairs: &'a [ContrastPair],
}

impl<'a> FitData<'a> {
    /// A copy holding only the parts `requires` names: what a harness passes to a detector,
    /// so that a detector cannot read data it did not declare (a "generic" detector cannot
    /// peek at labels).
    pub fn masked(&self, requires: Requires) -> FitData<'a> {
        FitData {
            labelled: if requires.labelled {
                self.labelled
            } else {
                None
            },
            unlabelled: if requires.unlabelled {
                self.unlabelled
            } else {
                &[]
            },
            pairs: if requires.pairs { self.pairs } else { &[] },
        }
    }

    /// The labelled part, or an error naming the detector that needed it.
    ///
    /// # Errors
    /// [`DetectError::InvalidFitData`] if there is no labelled part.
    pub fn labelled(&self, detector: &str) -> Result<Labelled<'a>> {
        self.labelled.ok_or_else(|| DetectError::InvalidFitData {
            detector: detector.to_string(),
            reason: "needs labelled inputs, none given".into(),
        })
    }

    /// Checks that every part `requires` names is present and non-empty.
    ///
    /// # Errors
    /// [`DetectError::InvalidFitData`] naming the first missing part.
    pub fn check(&self, detector: &str, requires: Requires) -> Result<()> {
        let missing = |what: &str| DetectError::InvalidFitData {
            detector: detector.to_string(),
            reason: format!("needs {what}, none given"),
        };
        if requires.labelled && self.labelled.is_none() {
            return Err(missing("labelled inputs"));
        }
        if requires.unlabelled && self.unlabelled.is_empty() {
            return Err(missing("unlabelled inputs"));
        }
        if requires.pairs && self.pairs.is_empty() {
            return Err(missing("contrast pairs"));
        }
        Ok(())
    }
}

/// An input-level detector with validated hyper-parameters: fitted once per model, then it
/// scores inputs (higher = more likely to defect or deceive).
pub trait InputDetector {
    /// The registry name plus anything that distinguishes this instance (e.g. the hook).
    fn name(&self) -> String;

    /// The parts of [`FitData`] that [`InputDetector::fit`] uses.
    fn requires(&self) -> Requires;

    /// Fits on `data` with the model in view; a detector that needs no fitting returns its
    /// scorer at once.
    ///
    /// # Errors
    /// Missing or unusable fit data, a failed model run, a failed numerical fit.
    fn fit(&self, model: &Transformer, data: &FitData<'_>) -> Result<Box<dyn FittedInputDetector>>;
}

/// A fitted input-level detector.
pub trait FittedInputDetector {
    fn name(&self) -> String;

    /// One score per input, higher = more likely positive. Call through [`score_inputs`], which
    /// checks the result.
    ///
    /// # Errors
    /// Unusable inputs or a failed model run.
    fn score(&self, model: &Transformer, inputs: &[Tokens]) -> Result<Vec<f64>>;
}

/// Scores `inputs` and checks the detector kept its contract: one finite score per input.
///
/// # Errors
/// The detector's own error, or [`DetectError::BadScores`].
pub fn score_inputs(
    detector: &dyn FittedInputDetector,
    model: &Transformer,
    inputs: &[Tokens],
) -> Result<Vec<f64>> {
    let scores = detector.score(model, inputs)?;
    let bad = |reason: String| DetectError::BadScores {
        detector: detector.name(),
        reason,
    };
    if scores.len() != inputs.len() {
        return Err(bad(format!(
            "returned {} scores for {} inputs",
            scores.len(),
            inputs.len()
        )));
    }
    if let Some(i) = scores.iter().position(|s| !s.is_finite()) {
        return Err(bad(format!("score of input {i} is {}", scores[i])));
    }
    Ok(scores)
}

/// Fits `detector` on `data` masked to what it declares ([`InputDetector::requires`]): the
/// way a harness fits, so that a detector asking for data it did not declare gets an error,
/// not the data.
///
/// # Errors
/// The detector's own error (for undeclared data: [`DetectError::InvalidFitData`]).
pub fn fit_input(
    detector: &dyn InputDetector,
    model: &Transformer,
    data: &FitData<'_>,
) -> Result<Box<dyn FittedInputDetector>> {
    detector.fit(model, &data.masked(detector.requires()))
}
