//! What a harness must know about a detector, declared by the detector when it registers: its
//! family, which data it may see, whether its sign means anything, which controls apply. A
//! harness reads these fields and never parses a detector's name.

use serde::{Deserialize, Serialize};

/// The kind of evidence a detector reads (the source framework's five families, plus the
/// linear probes this project started with and the fingerprint of in-context optimisation).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Family {
    /// Linear probes on activations (supervised, contrast pairs, principal components).
    Probe,
    /// Gradients through the model: saliency, trigger inversion.
    Gradient,
    /// Statistics of activations: spectral signatures, clustering, Mahalanobis distance.
    Activation,
    /// Behaviour under varied inputs: consistency, perturbation of the prompt.
    Behavioural,
    /// Optimisation dynamics: how training or fine-tuning moves the model.
    Dynamics,
    /// Causal interventions: ablation, patching, noise injection.
    Causal,
    /// A fingerprint of a known algorithm in the forward pass (gradient descent in context).
    Fingerprint,
    /// A deliberately dumb baseline (weight norms, random scores): must sit at chance.
    Control,
}

impl Family {
    pub const ALL: [Family; 8] = [
        Family::Probe,
        Family::Gradient,
        Family::Activation,
        Family::Behavioural,
        Family::Dynamics,
        Family::Causal,
        Family::Fingerprint,
        Family::Control,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Family::Probe => "probe",
            Family::Gradient => "gradient",
            Family::Activation => "activation",
            Family::Behavioural => "behavioural",
            Family::Dynamics => "dynamics",
            Family::Causal => "causal",
            Family::Fingerprint => "fingerprint",
            Family::Control => "control",
        }
    }
}

impl std::fmt::Display for Family {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// The parts of [`crate::FitData`] an input-level detector may see. A harness masks the fit
/// data to these ([`crate::FitData::masked`]), so a detector that declares no labels cannot
/// read them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
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

    /// Every part `self` asks for is also in `other`.
    pub fn within(self, other: Requires) -> bool {
        (!self.labelled || other.labelled)
            && (!self.unlabelled || other.unlabelled)
            && (!self.pairs || other.pairs)
    }
}

/// The parts of [`crate::AuditContext`] a model-level detector may see. A harness masks the
/// context to these ([`crate::AuditContext::masked`]). None of them holds the trigger, the
/// backdoor family or the audited model's role: the context has no field for them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Needs {
    /// The model's vocabulary (decode token ids to words).
    pub vocab: bool,
    /// Generic, untriggered task prompts (both sets: `prompts` and `held_out`).
    pub prompts: bool,
    /// Generic contrast pairs.
    pub pairs: bool,
    /// Clean reference models of the training split.
    pub clean_references: bool,
    /// Reference models of the training split with their labels, positives included (what a
    /// meta-classifier such as MNTD fits on). Implies `clean_references`.
    pub labelled_references: bool,
    /// The caller's task checker ("is this answer to the task correct?").
    pub checker: bool,
    /// The audited model's own training log (per-step loss, gradient norm, learning rate), as
    /// its checkpoint recorded it.
    #[serde(default)]
    pub training_log: bool,
}

impl Needs {
    pub const NOTHING: Needs = Needs {
        vocab: false,
        prompts: false,
        pairs: false,
        clean_references: false,
        labelled_references: false,
        checker: false,
        training_log: false,
    };
    pub const PROMPTS: Needs = Needs {
        prompts: true,
        ..Self::NOTHING
    };
    pub const TRAINING_LOG: Needs = Needs {
        training_log: true,
        ..Self::NOTHING
    };

    /// Every part `self` asks for is also in `other`.
    pub fn within(self, other: Needs) -> bool {
        let refs = self.clean_references || self.labelled_references;
        (!self.vocab || other.vocab)
            && (!self.prompts || other.prompts)
            && (!self.pairs || other.pairs)
            && (!refs || other.clean_references || other.labelled_references)
            && (!self.labelled_references || other.labelled_references)
            && (!self.checker || other.checker)
            && (!self.training_log || other.training_log)
    }
}

/// What a harness knows about an input-level detector without running it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct InputInfo {
    pub family: Family,
    /// One line for `--help`, tables and the README.
    pub summary: &'static str,
    /// The fit data it may see; a constructed detector's [`crate::InputDetector::requires`]
    /// must equal it.
    pub requires: Requires,
    /// Whether its fit fixes which end of the score is "positive" (labels, oriented contrast
    /// pairs). If not (an unsupervised principal component), only `max(a, 1 - a)` of its AUROC
    /// means anything, and it is read against sign-free controls.
    pub sign_identifiable: bool,
    /// Whether a harness should refit it on shuffled labels for a null distribution (only
    /// meaningful for detectors fitted on labels).
    pub shuffled_null: bool,
    /// A control rather than a method (for example a probe fitted on shuffled labels): a
    /// harness runs it only on request.
    pub control: bool,
}

impl InputInfo {
    /// A method of `family` that needs `requires`, with an identifiable sign, no shuffled null
    /// and not a control; change fields with struct update syntax.
    pub const fn new(family: Family, summary: &'static str, requires: Requires) -> Self {
        Self {
            family,
            summary,
            requires,
            sign_identifiable: true,
            shuffled_null: false,
            control: false,
        }
    }
}

/// What a harness knows about a model-level detector without running it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ModelInfo {
    pub family: Family,
    /// One line for `--help`, tables and the README.
    pub summary: &'static str,
    /// The parts of the audit context it may see; a constructed detector's
    /// [`crate::ModelDetector::needs`] must equal it.
    pub needs: Needs,
    /// Whether a higher score means "more likely backdoored" by construction.
    pub sign_identifiable: bool,
    /// A control rather than a method (a leakage baseline such as a weight norm).
    pub control: bool,
}

impl ModelInfo {
    /// A method of `family` that needs `needs`, with an identifiable sign and not a control.
    pub const fn new(family: Family, summary: &'static str, needs: Needs) -> Self {
        Self {
            family,
            summary,
            needs,
            sign_identifiable: true,
            control: false,
        }
    }
}
