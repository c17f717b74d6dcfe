//! `mesa-detect`: the contract every detector crate implements, and the registry experiments
//! iterate.
//!
//! - [`InputDetector`] -> [`fit_input`] -> [`FittedInputDetector`]: fitted (optionally) on
//!   [`FitData`] (labelled inputs, unlabelled inputs, generic [`ContrastPair`]s) masked to what
//!   it declares in [`InputDetector::requires`], then scores inputs through [`score_inputs`];
//!   higher = more likely to defect or deceive.
//! - [`ModelDetector`] -> [`fit_model`] -> [`FittedModelDetector`]: fitted on an
//!   [`AuditContext`] (vocabulary, generic prompts as [`mesa_nn::Input`], contrast pairs,
//!   training-split reference models, an optional [`TaskChecker`], the audited model's own
//!   training log where its checkpoint kept one) masked to its [`Needs`],
//!   then audits a whole model through [`score_model`]: a [`Verdict`], a score (higher = more
//!   likely harmful-backdoored) and its [`Evidence`] (named numbers, recovered triggers). The
//!   context has no field for the trigger, the backdoor family or the model's role.
//! - [`Registry`]: name -> [`InputInfo`] / [`ModelInfo`] (family, data it may see, whether its
//!   sign is identifiable, whether it gets a shuffled-label null, control or method) and a
//!   constructor. A detector crate exports `register(&mut Registry)`; experiments call it once,
//!   iterate [`Registry::input_detectors`] / [`Registry::model_detectors`] and read the info,
//!   never the name.
//!
//! Detectors see a model only through `mesa-nn`'s inspection API ([`mesa_nn::Transformer`]:
//! `run_with_cache`, hooks, gradients): they know no organism. Errors are errors: a detector
//! that cannot score returns a [`DetectError`], never a "safe" score, and [`score_inputs`] /
//! [`score_model`] reject a NaN or a missing score before it reaches an evaluation.
//!
//! ```
//! use mesa_detect::*;
//! use mesa_nn::{HookPoint, Preset, Tiny, Transformer};
//!
//! /// Flags long inputs: a toy detector that needs no fitting.
//! struct Length;
//! struct FittedLength;
//! impl InputDetector for Length {
//!     fn name(&self) -> String { "length".into() }
//!     fn requires(&self) -> Requires { Requires::NOTHING }
//!     fn fit(&self, _: &Transformer, _: &FitData<'_>) -> Result<Box<dyn FittedInputDetector>> {
//!         Ok(Box::new(FittedLength))
//!     }
//! }
//! impl FittedInputDetector for FittedLength {
//!     fn name(&self) -> String { "length".into() }
//!     fn score(&self, _: &Transformer, inputs: &[Tokens]) -> Result<Vec<f64>> {
//!         Ok(inputs.iter().map(|t| t.len() as f64).collect())
//!     }
//! }
//!
//! let mut registry = Registry::new();
//! let info = InputInfo::new(Family::Control, "input length", Requires::NOTHING);
//! registry.register_input("length", info, |_| Ok(Box::new(Length)))?;
//! let model = Transformer::new(Tiny::language_model(10, 16), 0).expect("model");
//! let spec = DetectorSpec { seed: 0, hook: HookPoint::resid_post(0) };
//! for entry in registry.input_detectors() {
//!     assert_eq!(entry.info.family, Family::Control);
//!     let fitted = fit_input(entry.build(&spec)?.as_ref(), &model, &FitData::default())?;
//!     let scores = score_inputs(fitted.as_ref(), &model, &[vec![1, 2], vec![1, 2, 3]])?;
//!     assert_eq!(scores, [2.0, 3.0]);
//! }
//! # Ok::<(), DetectError>(())
//! ```

pub mod audit;
pub mod detector;
pub mod error;
pub mod meta;
pub mod registry;

pub use audit::{
    fit_model, score_model, token_inputs, AuditContext, Evidence, FittedModelDetector,
    ModelDetector, PromptSet, ReferenceModel, TaskChecker, TriggerEvidence, Verdict,
};
pub use detector::{
    fit_input, score_inputs, ContrastPair, FitData, FittedInputDetector, InputDetector, Labelled,
    Tokens,
};
pub use error::{DetectError, Result};
pub use meta::{Family, InputInfo, ModelInfo, Needs, Requires};
pub use registry::{
    DetectorSpec, Entry, InputConstructor, InputEntry, ModelConstructor, ModelEntry, Registry,
};

#[cfg(test)]
mod tests;
