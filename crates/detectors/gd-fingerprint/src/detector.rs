//! The fingerprint as a `mesa-detect` model-level detector: "is this model an in-context
//! optimizer?", scored through the registry like any other audit.
//!
//! What it reads from the [`AuditContext`]: the generic prompts (`prompts`, to line-search
//! one-step GD and fit the probes; `held_out`, to measure on), both regression tasks in the
//! `mesa-icl` format with their query targets; and a clean reference model of the audited
//! model's architecture, which should be untrained: the probe's baseline.

use mesa_detect::{
    AuditContext, DetectError, DetectorSpec, Evidence, Family, FittedModelDetector, ModelDetector,
    ModelInfo, Needs, Registry, Verdict,
};
use mesa_nn::Transformer;

use crate::error::GdfpError;
use crate::tasks::RegressionTasks;
use crate::{GdFingerprint, GdFingerprintParams};

/// The registry name.
pub const NAME: &str = "gd-fingerprint";

/// What the detector reads: generic prompts with targets and clean (untrained) references.
pub const NEEDS: Needs = Needs {
    prompts: true,
    clean_references: true,
    ..Needs::NOTHING
};

/// What a harness must know about the detector.
pub const INFO: ModelInfo = ModelInfo::new(
    Family::Fingerprint,
    "gradient-descent fingerprint: sensitivity, implied weights, predictions and an X^T y probe against line-searched one-step GD",
    NEEDS,
);

/// The fingerprint against line-searched one-step GD, as a [`ModelDetector`].
#[derive(Clone, Debug)]
pub struct GdFingerprintDetector {
    fingerprint: GdFingerprint,
}

impl GdFingerprintDetector {
    pub fn new(fingerprint: GdFingerprint) -> Self {
        Self { fingerprint }
    }
}

fn tasks(context: &AuditContext<'_>, held_out: bool) -> mesa_detect::Result<RegressionTasks> {
    let set = context.prompt_set(NAME, held_out)?;
    let targets = set.targets.ok_or_else(|| DetectError::InvalidFitData {
        detector: NAME.into(),
        reason: "the regression prompts need their query targets".into(),
    })?;
    RegressionTasks::from_inputs(set.inputs, targets).map_err(|e| into_detect(e, NAME))
}

fn into_detect(e: GdfpError, detector: &str) -> DetectError {
    match e {
        GdfpError::Nn(source) => DetectError::Model {
            detector: detector.into(),
            source,
        },
        GdfpError::InvalidParams { field, reason } => DetectError::InvalidParam {
            detector: detector.into(),
            param: field,
            reason,
        },
        GdfpError::InvalidTasks(reason) => DetectError::InvalidInputs {
            detector: detector.into(),
            reason,
        },
        other => DetectError::FitFailed {
            detector: detector.into(),
            reason: other.to_string(),
        },
    }
}

impl ModelDetector for GdFingerprintDetector {
    fn name(&self) -> String {
        NAME.into()
    }

    fn needs(&self) -> Needs {
        NEEDS
    }

    fn fit(&self, context: &AuditContext<'_>) -> mesa_detect::Result<Box<dyn FittedModelDetector>> {
        let fit = tasks(context, false)?;
        let eval = tasks(context, true)?;
        let eta = fit.line_search_gd1().map_err(|e| into_detect(e, NAME))?;
        context.clean(NAME)?;
        Ok(Box::new(FittedGdFingerprint {
            fingerprint: self.fingerprint.clone(),
            w_ref: eval.xty() * eta,
            eta,
            fit,
            eval,
        }))
    }
}

/// The fingerprint with its tasks and reference learner fixed.
#[derive(Clone, Debug)]
pub struct FittedGdFingerprint {
    fingerprint: GdFingerprint,
    fit: RegressionTasks,
    eval: RegressionTasks,
    w_ref: ndarray::Array2<f64>,
    eta: f64,
}

impl FittedGdFingerprint {
    /// The line-searched learning rate of the reference.
    pub fn eta(&self) -> f64 {
        self.eta
    }
}

impl FittedModelDetector for FittedGdFingerprint {
    fn name(&self) -> String {
        NAME.into()
    }

    fn audit(
        &self,
        model: &Transformer,
        context: &AuditContext<'_>,
    ) -> mesa_detect::Result<Verdict> {
        let baseline = context
            .clean(NAME)?
            .iter()
            .find(|m| m.config() == model.config())
            .ok_or_else(|| DetectError::InvalidFitData {
                detector: NAME.into(),
                reason: "no clean reference model of the audited model's architecture".into(),
            })?;
        let fp = self
            .fingerprint
            .measure(model, baseline, &self.fit, &self.eval, &self.w_ref)
            .map_err(|e| into_detect(e, NAME))?;
        let evidence = Evidence::metrics([
            ("icl_loss", fp.icl_loss),
            ("pred_diff", fp.pred_diff),
            ("sens_cos", fp.sens_cos),
            ("ilwd", fp.ilwd),
            ("probe_r2_xty", fp.probe_r2_xty),
            ("probe_r2_xty_baseline", fp.probe_r2_xty_baseline),
            ("gd1_eta", self.eta),
        ]);
        Ok(Verdict::new(fp.score, evidence))
    }
}

/// Registers the fingerprint (default parameters, seeded by the spec).
///
/// # Errors
/// [`DetectError::DuplicateName`] if the name is taken.
pub fn register(registry: &mut Registry) -> mesa_detect::Result<()> {
    fn construct(spec: &DetectorSpec) -> mesa_detect::Result<Box<dyn ModelDetector>> {
        let fingerprint = GdFingerprintParams::default()
            .seed(spec.seed)
            .check()
            .map_err(|e| into_detect(e, NAME))?;
        Ok(Box::new(GdFingerprintDetector::new(fingerprint)))
    }
    registry.register_model(NAME, INFO, construct)
}
