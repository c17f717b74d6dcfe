//! The probes as `mesa-detect` input-level detectors: read activations at a hook point, fit the
//! probe on them, score inputs by the same read.

use std::fmt;
use std::str::FromStr;

use linfa::prelude::*;
use mesa_detect::{
    DetectError, DetectorSpec, Family, FitData, FittedInputDetector, InputDetector, InputInfo,
    Registry, Requires, Tokens,
};
use mesa_nn::{HookPoint, Transformer};
use ndarray::{concatenate, Array1, Array2, Axis};

use crate::activations::{activations, Position};
use crate::controls::shuffled_labels;
use crate::error::ProbeError;
use crate::hyperparams::{LogisticProbeParams, MeanDiffParams, PcaDirectionParams};
use crate::linear::LinearProbe;

/// Which probe a [`ProbeDetector`] fits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ProbeMethod {
    /// Logistic regression on labelled inputs (L2 chosen on a validation split).
    Logistic,
    /// Difference of class means on labelled inputs.
    MeanDiff,
    /// Covariance-adjusted difference of class means (LDA-like) on labelled inputs.
    Lda,
    /// First principal component of contrast-pair differences (RepE's LAT).
    Lat,
    /// Mean difference fitted only on generic contrast pairs (Anthropic's "defection probe"
    /// from generic questions): knows nothing of a trigger.
    Contrast,
    /// Top principal component of unlabelled inputs; its sign is arbitrary.
    TopPc,
    /// Control: the logistic probe fitted on shuffled labels.
    Shuffled,
}

impl ProbeMethod {
    pub const ALL: [ProbeMethod; 7] = [
        ProbeMethod::Logistic,
        ProbeMethod::MeanDiff,
        ProbeMethod::Lda,
        ProbeMethod::Lat,
        ProbeMethod::Contrast,
        ProbeMethod::TopPc,
        ProbeMethod::Shuffled,
    ];

    pub fn name(self) -> &'static str {
        match self {
            ProbeMethod::Logistic => "logistic",
            ProbeMethod::MeanDiff => "mean-diff",
            ProbeMethod::Lda => "lda",
            ProbeMethod::Lat => "lat",
            ProbeMethod::Contrast => "contrast",
            ProbeMethod::TopPc => "top-pc",
            ProbeMethod::Shuffled => "shuffled",
        }
    }

    pub fn summary(self) -> &'static str {
        match self {
            ProbeMethod::Logistic => "logistic regression (linfa), L2 chosen on validation",
            ProbeMethod::MeanDiff => "difference of class means",
            ProbeMethod::Lda => "covariance-adjusted difference of means (LDA-like)",
            ProbeMethod::Lat => "LAT: first PC of generic contrast-pair differences",
            ProbeMethod::Contrast => "mean difference of generic yes/no contrast pairs",
            ProbeMethod::TopPc => "unsupervised top principal component (sign arbitrary)",
            ProbeMethod::Shuffled => "control: logistic probe on shuffled labels",
        }
    }

    pub fn requires(self) -> Requires {
        match self {
            ProbeMethod::Logistic | ProbeMethod::MeanDiff | ProbeMethod::Lda => Requires::LABELLED,
            ProbeMethod::Shuffled => Requires::LABELLED,
            ProbeMethod::Lat | ProbeMethod::Contrast => Requires::PAIRS,
            ProbeMethod::TopPc => Requires::UNLABELLED,
        }
    }

    /// Whether the fit fixes which end of the score is "positive". Supervised probes are
    /// oriented by their labels, contrast and LAT by their pairs (the positive member scores
    /// higher); the top principal component is not, so only [`crate::sign_free`] of its
    /// AUROC means anything.
    pub fn sign_identifiable(self) -> bool {
        !matches!(self, ProbeMethod::TopPc)
    }

    /// What a harness must know about this method: its data, sign, controls.
    pub fn info(self) -> InputInfo {
        InputInfo {
            sign_identifiable: self.sign_identifiable(),
            // The probes fitted on labels get a null of refits on permuted labels; the single
            // shuffled fit is itself that control.
            shuffled_null: matches!(
                self,
                ProbeMethod::Logistic | ProbeMethod::MeanDiff | ProbeMethod::Lda
            ),
            control: self == ProbeMethod::Shuffled,
            ..InputInfo::new(Family::Probe, self.summary(), self.requires())
        }
    }

    /// Fits this method on labelled activations `x` (`[n, d]`) and labels `y`, as its detector
    /// would after reading them: logistic (with `seed` for its validation split), mean-diff,
    /// LDA, or the shuffled control (which shuffles `y` itself first).
    ///
    /// # Errors
    /// [`ProbeError::InvalidParam`] for a method that does not fit on labels (LAT, contrast,
    /// top PC), and every error of the probe's own fit.
    pub fn fit_labelled(
        self,
        x: Array2<f64>,
        y: Array1<bool>,
        seed: u64,
    ) -> Result<LinearProbe, ProbeError> {
        match self {
            ProbeMethod::Logistic => LogisticProbeParams::new(seed).fit(&Dataset::new(x, y)),
            ProbeMethod::Shuffled => {
                let y = Array1::from(shuffled_labels(&y.to_vec(), seed ^ SHUFFLE_SALT));
                LogisticProbeParams::new(seed).fit(&Dataset::new(x, y))
            }
            ProbeMethod::MeanDiff | ProbeMethod::Lda => MeanDiffParams::new()
                .covariance_adjusted(self == ProbeMethod::Lda)
                .fit(&Dataset::new(x, y)),
            ProbeMethod::Lat | ProbeMethod::Contrast | ProbeMethod::TopPc => {
                Err(ProbeError::InvalidParam {
                    param: "method",
                    reason: format!("{self} does not fit on labelled inputs"),
                })
            }
        }
    }
}

/// Salt of the shuffled control's permutation seed.
const SHUFFLE_SALT: u64 = 0x5348_5546;

impl fmt::Display for ProbeMethod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for ProbeMethod {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        ProbeMethod::ALL
            .into_iter()
            .find(|m| m.name() == s)
            .ok_or_else(|| {
                let known: Vec<&str> = ProbeMethod::ALL.iter().map(|m| m.name()).collect();
                format!("unknown probe `{s}`; known: {}", known.join(", "))
            })
    }
}

/// A probe at one hook point and position, with default hyper-parameters for its method.
#[derive(Debug, Clone, PartialEq)]
pub struct ProbeDetector {
    method: ProbeMethod,
    hook: HookPoint,
    position: Position,
    seed: u64,
}

impl ProbeDetector {
    pub fn new(method: ProbeMethod, spec: &DetectorSpec) -> Self {
        Self {
            method,
            hook: spec.hook,
            position: Position::Last,
            seed: spec.seed,
        }
    }

    pub fn position(mut self, position: Position) -> Self {
        self.position = position;
        self
    }

    pub fn method(&self) -> ProbeMethod {
        self.method
    }

    fn read(&self, model: &Transformer, inputs: &[Tokens]) -> Result<Array2<f64>, ProbeError> {
        activations(model, self.hook, inputs, self.position)
    }

    fn fit_probe(
        &self,
        model: &Transformer,
        data: &FitData<'_>,
    ) -> Result<LinearProbe, ProbeError> {
        let labelled = || -> Result<(Array2<f64>, Array1<bool>), ProbeError> {
            let l = data
                .labelled(&self.name())
                .map_err(|e| ProbeError::InvalidData(e.to_string()))?;
            let x = self.read(model, l.inputs())?;
            Ok((x, Array1::from(l.labels().to_vec())))
        };
        let pairs = || -> Result<(Array2<f64>, Array2<f64>), ProbeError> {
            let pos: Vec<Tokens> = data.pairs.iter().map(|p| p.positive.clone()).collect();
            let neg: Vec<Tokens> = data.pairs.iter().map(|p| p.negative.clone()).collect();
            Ok((self.read(model, &pos)?, self.read(model, &neg)?))
        };
        match self.method {
            ProbeMethod::Logistic
            | ProbeMethod::Shuffled
            | ProbeMethod::MeanDiff
            | ProbeMethod::Lda => {
                let (x, y) = labelled()?;
                self.method.fit_labelled(x, y, self.seed)
            }
            ProbeMethod::Contrast => {
                let (p, n) = pairs()?;
                let labels: Array1<bool> =
                    (0..p.nrows() + n.nrows()).map(|i| i < p.nrows()).collect();
                let x = concatenate(Axis(0), &[p.view(), n.view()])
                    .map_err(|e| ProbeError::InvalidData(e.to_string()))?;
                MeanDiffParams::new().fit(&Dataset::new(x, labels))
            }
            ProbeMethod::Lat => {
                let (p, n) = pairs()?;
                PcaDirectionParams::lat(self.seed).fit(&DatasetBase::from(p - n))
            }
            ProbeMethod::TopPc => {
                let x = self.read(model, data.unlabelled)?;
                PcaDirectionParams::top_pc(self.seed).fit(&DatasetBase::from(x))
            }
        }
    }
}

impl InputDetector for ProbeDetector {
    fn name(&self) -> String {
        format!("{}@{}", self.method, self.hook)
    }

    fn requires(&self) -> Requires {
        self.method.requires()
    }

    fn fit(
        &self,
        model: &Transformer,
        data: &FitData<'_>,
    ) -> mesa_detect::Result<Box<dyn FittedInputDetector>> {
        data.check(&self.name(), self.requires())?;
        let probe = self
            .fit_probe(model, data)
            .map_err(|e| e.into_detect(&self.name()))?;
        Ok(Box::new(FittedProbeDetector {
            name: self.name(),
            hook: self.hook,
            position: self.position,
            probe,
        }))
    }
}

/// A fitted probe: reads the same hook and position, projects onto the probe.
#[derive(Debug, Clone, PartialEq)]
pub struct FittedProbeDetector {
    name: String,
    hook: HookPoint,
    position: Position,
    probe: LinearProbe,
}

impl FittedProbeDetector {
    pub fn probe(&self) -> &LinearProbe {
        &self.probe
    }

    pub fn hook(&self) -> HookPoint {
        self.hook
    }
}

impl FittedInputDetector for FittedProbeDetector {
    fn name(&self) -> String {
        self.name.clone()
    }

    fn score(&self, model: &Transformer, inputs: &[Tokens]) -> mesa_detect::Result<Vec<f64>> {
        let scores = activations(model, self.hook, inputs, self.position)
            .and_then(|x| self.probe.scores(&x))
            .map_err(|e| match e {
                ProbeError::Model(source) => DetectError::Model {
                    detector: self.name.clone(),
                    source,
                },
                other => DetectError::InvalidInputs {
                    detector: self.name.clone(),
                    reason: other.to_string(),
                },
            })?;
        Ok(scores.to_vec())
    }
}

/// Registers every probe method under its name: the one line a detector crate adds to
/// experiments (`mesa_probe::register(&mut registry)?`).
///
/// # Errors
/// [`DetectError::DuplicateName`] if a name is already taken.
pub fn register(registry: &mut Registry) -> mesa_detect::Result<()> {
    fn construct(
        method: ProbeMethod,
        spec: &DetectorSpec,
    ) -> mesa_detect::Result<Box<dyn InputDetector>> {
        Ok(Box::new(ProbeDetector::new(method, spec)))
    }
    registry.register_input("logistic", ProbeMethod::Logistic.info(), |s| {
        construct(ProbeMethod::Logistic, s)
    })?;
    registry.register_input("mean-diff", ProbeMethod::MeanDiff.info(), |s| {
        construct(ProbeMethod::MeanDiff, s)
    })?;
    registry.register_input("lda", ProbeMethod::Lda.info(), |s| {
        construct(ProbeMethod::Lda, s)
    })?;
    registry.register_input("lat", ProbeMethod::Lat.info(), |s| {
        construct(ProbeMethod::Lat, s)
    })?;
    registry.register_input("contrast", ProbeMethod::Contrast.info(), |s| {
        construct(ProbeMethod::Contrast, s)
    })?;
    registry.register_input("top-pc", ProbeMethod::TopPc.info(), |s| {
        construct(ProbeMethod::TopPc, s)
    })?;
    registry.register_input("shuffled", ProbeMethod::Shuffled.info(), |s| {
        construct(ProbeMethod::Shuffled, s)
    })
}
