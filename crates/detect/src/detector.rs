//! The two detector contracts and the data they are fitted on.
//!
//! Both follow linfa's shape at the level of whole models: a detector value holds validated
//! hyper-parameters (built by the registry or by the detector crate's own params builder);
//! `fit` returns a separate fitted object; only a fitted object scores. A detector sees a model
//! only as a [`Transformer`] from `mesa-nn` (forward, `run_with_cache`, hooks, gradients) and
//! inputs only as token ids, never through an organism's internals.

use mesa_nn::Transformer;

use crate::error::{DetectError, Result};

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

/// Everything a detector may be fitted on. Which parts it needs, it says in
/// [`InputDetector::requires`]; [`FitData::check`] turns a missing part into an error.
#[derive(Debug, Clone, Copy, Default)]
pub struct FitData<'a> {
    /// Inputs with ground-truth labels (supervised detectors).
    pub labelled: Option<Labelled<'a>>,
    /// Inputs with no labels (unsupervised detectors).
    pub unlabelled: &'a [Tokens],
    /// Generic contrast pairs that know nothing of the organism's trigger.
    pub pairs: &'a [ContrastPair],
}

/// The parts of [`FitData`] a detector needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Requires {
    pub labelled: bool,
    pub unlabelled: bool,
    pub pairs: bool,
}

impl Requires {
    pub const NOTHING: Requires = Requires {
        labelled: false,
        unlabelled: false,
        pairs: false,
    };
    pub const LABELLED: Requires = Requires {
        labelled: true,
        ..Self::NOTHING
    };
    pub const UNLABELLED: Requires = Requires {
        unlabelled: true,
        ..Self::NOTHING
    };
    pub const PAIRS: Requires = Requires {
        pairs: true,
        ..Self::NOTHING
    };
}

impl<'a> FitData<'a> {
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

/// A model known to be positive (backdoored, deceptive) or negative, to fit a model-level
/// detector on.
#[derive(Clone, Copy)]
pub struct ReferenceModel<'a> {
    pub model: &'a Transformer,
    pub positive: bool,
}

/// A model-level detector with validated hyper-parameters: scores a whole model (higher = more
/// likely backdoored or deceptive), optionally after fitting on reference models.
pub trait ModelDetector {
    fn name(&self) -> String;

    /// Fits on reference models (an empty slice for detectors that need none).
    ///
    /// # Errors
    /// Unusable references, a failed model run, a failed numerical fit.
    fn fit(&self, references: &[ReferenceModel<'_>]) -> Result<Box<dyn FittedModelDetector>>;
}

/// A fitted model-level detector.
pub trait FittedModelDetector {
    fn name(&self) -> String;

    /// The model's score; `probe_inputs` are inputs the detector may run the model on. Call
    /// through [`score_model`], which checks the result.
    ///
    /// # Errors
    /// Unusable inputs or a failed model run.
    fn score_model(&self, model: &Transformer, probe_inputs: &[Tokens]) -> Result<f64>;
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

/// Scores a model and checks the score is finite.
///
/// # Errors
/// The detector's own error, or [`DetectError::BadScores`].
pub fn score_model(
    detector: &dyn FittedModelDetector,
    model: &Transformer,
    probe_inputs: &[Tokens],
) -> Result<f64> {
    let score = detector.score_model(model, probe_inputs)?;
    if score.is_finite() {
        Ok(score)
    } else {
        Err(DetectError::BadScores {
            detector: detector.name(),
            reason: format!("model score is {score}"),
        })
    }
}
