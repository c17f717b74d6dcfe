//! The `mesa-detect` detectors of this crate and [`register`], the one line experiments call.
//!
//! - `noise-injection` (model level): [`noise_sweep`] on the held-out generic prompts; evidence:
//!   the dose-response curve (`harm@{target}@{scale}`).
//! - `steering` (model level): [`steering_sweep`] along the contrast pairs' harmful direction;
//!   evidence: the curve and the random-direction control.
//! - `occlusion` (input level): [`occlusion_scores`], fitted on benign inputs (the occluding
//!   token is one they never use).
//!
//! Format knowledge comes from the context only, as in `mesa-behavioral`: the stop token is the
//! vocabulary's `<eos>` if present (model level) or inferred from responses to benign inputs
//! (input level).

use std::collections::BTreeSet;

use mesa_behavioral::{infer_stop, Greedy, Responder, Tokens, MAX_NEW, STOP_WORD};
use mesa_detect::{
    AuditContext, DetectError, DetectorSpec, Evidence, Family, FitData, FittedInputDetector,
    FittedModelDetector, InputDetector, InputInfo, ModelDetector, ModelInfo, Needs, Registry,
    Requires, Verdict,
};
use mesa_nn::Transformer;

use crate::error::CausalError;
use crate::localise::occlusion_scores;
use crate::noise::{noise_sweep, NoiseParams};
use crate::steering::{steering_sweep, SteeringParams};

fn err(detector: &str) -> impl Fn(CausalError) -> DetectError + '_ {
    move |e| match e {
        CausalError::InvalidParam { param, reason } => DetectError::InvalidParam {
            detector: detector.to_string(),
            param,
            reason,
        },
        CausalError::Model(source) => DetectError::Model {
            detector: detector.to_string(),
            source,
        },
        other => DetectError::InvalidInputs {
            detector: detector.to_string(),
            reason: other.to_string(),
        },
    }
}

const MODEL_NEEDS: Needs = Needs {
    vocab: true,
    prompts: true,
    checker: true,
    ..Needs::NOTHING
};

/// Noise injection as a model-level detector.
#[derive(Clone, Debug)]
pub struct NoiseDetector {
    params: NoiseParams,
}

impl NoiseDetector {
    pub const NAME: &'static str = "noise-injection";

    pub fn info() -> ModelInfo {
        ModelInfo::new(
            Family::Causal,
            "Gaussian noise on activations or weights: do generic answers collapse onto one foreign continuation?",
            MODEL_NEEDS,
        )
    }

    /// `params.stop` is replaced by the vocabulary's stop word at audit time.
    pub fn new(params: NoiseParams) -> Self {
        Self { params }
    }
}

impl ModelDetector for NoiseDetector {
    fn name(&self) -> String {
        Self::NAME.into()
    }
    fn needs(&self) -> Needs {
        Self::info().needs
    }
    fn fit(&self, _: &AuditContext<'_>) -> mesa_detect::Result<Box<dyn FittedModelDetector>> {
        Ok(Box::new(self.clone()))
    }
}

impl FittedModelDetector for NoiseDetector {
    fn name(&self) -> String {
        Self::NAME.into()
    }

    fn audit(
        &self,
        model: &Transformer,
        context: &AuditContext<'_>,
    ) -> mesa_detect::Result<Verdict> {
        let name = Self::NAME;
        let vocab = context.vocab(name)?;
        let prompts = context.prompt_set(name, true)?.tokens(name)?;
        let checker = context.task_checker(name)?;
        let params = NoiseParams {
            stop: vocab.id(STOP_WORD).ok(),
            ..self.params.clone()
        };
        let report = noise_sweep(model, &prompts, &checker, &params).map_err(err(name))?;
        let mut evidence = Evidence::metrics([("score", report.score)]);
        for d in &report.curve {
            let key = |what: &str| format!("{what}@{}@{}", d.target, d.scale);
            evidence
                .metrics
                .insert(key("harm"), d.stats.harmful_consistency);
            evidence.metrics.insert(key("broken"), d.stats.broken);
        }
        let top = &report.curve[report.top];
        evidence.notes.push(format!(
            "largest consistent break at {} scale {} (token {:?})",
            top.target,
            top.scale,
            top.stats
                .consistent_token
                .map(|t| vocab.word(t).unwrap_or("?"))
        ));
        Ok(Verdict::new(report.score, evidence))
    }
}

/// Steering along the generic harmful direction as a model-level detector.
#[derive(Clone, Debug)]
pub struct SteeringDetector {
    params: SteeringParams,
}

impl SteeringDetector {
    pub const NAME: &'static str = "steering";

    pub fn info() -> ModelInfo {
        ModelInfo::new(
            Family::Causal,
            "adds the contrast-pair harmful direction while generating: do answers break onto one foreign continuation?",
            Needs {
                pairs: true,
                ..MODEL_NEEDS
            },
        )
    }

    pub fn new(params: SteeringParams) -> Self {
        Self { params }
    }
}

impl ModelDetector for SteeringDetector {
    fn name(&self) -> String {
        Self::NAME.into()
    }
    fn needs(&self) -> Needs {
        Self::info().needs
    }
    fn fit(&self, _: &AuditContext<'_>) -> mesa_detect::Result<Box<dyn FittedModelDetector>> {
        Ok(Box::new(self.clone()))
    }
}

impl FittedModelDetector for SteeringDetector {
    fn name(&self) -> String {
        Self::NAME.into()
    }

    fn audit(
        &self,
        model: &Transformer,
        context: &AuditContext<'_>,
    ) -> mesa_detect::Result<Verdict> {
        let name = Self::NAME;
        let vocab = context.vocab(name)?;
        let prompts = context.prompt_set(name, true)?.tokens(name)?;
        let checker = context.task_checker(name)?;
        let pairs = context.contrast_pairs(name)?;
        let positives: Vec<Tokens> = pairs.iter().map(|p| p.positive.clone()).collect();
        let negatives: Vec<Tokens> = pairs.iter().map(|p| p.negative.clone()).collect();
        let params = SteeringParams {
            stop: vocab.id(STOP_WORD).ok(),
            ..self.params.clone()
        };
        let report = steering_sweep(model, &prompts, &positives, &negatives, &checker, &params)
            .map_err(err(name))?;
        let mut evidence = Evidence::metrics([
            ("score", report.score),
            ("random_direction_score", report.random_score),
        ]);
        for p in &report.curve {
            let key = |what: &str| format!("{what}@{}@{}", p.point, p.scale);
            evidence
                .metrics
                .insert(key("harm"), p.harmful.harmful_consistency);
            evidence
                .metrics
                .insert(key("random"), p.random.harmful_consistency);
        }
        Ok(Verdict::new(report.score, evidence))
    }
}

/// Occlusion as an input-level detector.
#[derive(Clone, Debug, Default)]
pub struct OcclusionDetector;

impl OcclusionDetector {
    pub const NAME: &'static str = "occlusion";

    pub fn info() -> InputInfo {
        InputInfo::new(
            Family::Causal,
            "largest share of the response that occluding one input token rewrites",
            Requires::UNLABELLED,
        )
    }
}

impl InputDetector for OcclusionDetector {
    fn name(&self) -> String {
        Self::NAME.into()
    }
    fn requires(&self) -> Requires {
        Self::info().requires
    }

    fn fit(
        &self,
        model: &Transformer,
        data: &FitData<'_>,
    ) -> mesa_detect::Result<Box<dyn FittedInputDetector>> {
        data.check(Self::NAME, self.requires())?;
        let benign = data.unlabelled;
        let seen: BTreeSet<usize> = benign.iter().flatten().copied().collect();
        let responses = Greedy::new(model, MAX_NEW, None)
            .respond(benign)
            .map_err(|e| err(Self::NAME)(e.into()))?;
        let stop = infer_stop(&responses, &seen);
        let used: BTreeSet<usize> = seen
            .iter()
            .chain(responses.iter().flatten())
            .copied()
            .collect();
        let vocab_size = model.config().d_out;
        let filler = (0..vocab_size).find(|t| !used.contains(t)).ok_or_else(|| {
            DetectError::InvalidFitData {
                detector: Self::NAME.into(),
                reason: "every token is used by the benign inputs or answers: none to occlude with"
                    .into(),
            }
        })?;
        Ok(Box::new(FittedOcclusion { filler, stop }))
    }
}

struct FittedOcclusion {
    filler: usize,
    stop: Option<usize>,
}

impl FittedInputDetector for FittedOcclusion {
    fn name(&self) -> String {
        OcclusionDetector::NAME.into()
    }

    fn score(&self, model: &Transformer, inputs: &[Tokens]) -> mesa_detect::Result<Vec<f64>> {
        let scores = occlusion_scores(model, inputs, self.filler, MAX_NEW, self.stop)
            .map_err(err(OcclusionDetector::NAME))?;
        Ok(scores.into_iter().map(|o| o.score).collect())
    }
}

/// Registers `noise-injection`, `steering` (model level) and `occlusion` (input level).
///
/// # Errors
/// A name already registered.
pub fn register(registry: &mut Registry) -> mesa_detect::Result<()> {
    registry.register_model(
        NoiseDetector::NAME,
        NoiseDetector::info(),
        |s: &DetectorSpec| {
            Ok(Box::new(NoiseDetector::new(NoiseParams::new(
                MAX_NEW, None, s.seed,
            ))))
        },
    )?;
    registry.register_model(
        SteeringDetector::NAME,
        SteeringDetector::info(),
        |s: &DetectorSpec| {
            Ok(Box::new(SteeringDetector::new(SteeringParams::new(
                MAX_NEW, None, s.seed,
            ))))
        },
    )?;
    registry.register_input(OcclusionDetector::NAME, OcclusionDetector::info(), |_| {
        Ok(Box::new(OcclusionDetector))
    })
}
