//! `mesa-detect`: the contract every detector crate implements, and the registry experiments
//! iterate.
//!
//! - [`InputDetector`] -> `fit` -> [`FittedInputDetector`]: fitted (optionally) on
//!   [`FitData`] (labelled inputs, unlabelled inputs, generic [`ContrastPair`]s), then scores
//!   inputs; higher = more likely to defect or deceive.
//! - [`ModelDetector`] -> `fit` -> [`FittedModelDetector`]: fitted (optionally) on
//!   [`ReferenceModel`]s, then scores a whole model.
//! - [`Registry`]: name -> constructor. A detector crate exports `register(&mut Registry)`;
//!   experiments call it once and iterate [`Registry::input_detectors`].
//!
//! Detectors see a model only through `mesa-nn`'s inspection API ([`mesa_nn::Transformer`]:
//! `run_with_cache`, hooks, gradients) and inputs only as token ids: they know no organism.
//! Errors are errors: a detector that cannot score returns a [`DetectError`], never a "safe"
//! score, and [`score_inputs`] / [`score_model`] reject a NaN or a missing score before it
//! reaches an evaluation.
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
//! registry.register_input("length", "input length", |_| Ok(Box::new(Length)))?;
//! let model = Transformer::new(Tiny::language_model(10, 16), 0).expect("model");
//! let spec = DetectorSpec { seed: 0, hook: HookPoint::resid_post(0) };
//! for entry in registry.input_detectors() {
//!     let fitted = (entry.construct)(&spec)?.fit(&model, &FitData::default())?;
//!     let scores = score_inputs(fitted.as_ref(), &model, &[vec![1, 2], vec![1, 2, 3]])?;
//!     assert_eq!(scores, [2.0, 3.0]);
//! }
//! # Ok::<(), DetectError>(())
//! ```

pub mod detector;
pub mod error;
pub mod registry;

pub use detector::{
    score_inputs, score_model, ContrastPair, FitData, FittedInputDetector, FittedModelDetector,
    InputDetector, Labelled, ModelDetector, ReferenceModel, Requires, Tokens,
};
pub use error::{DetectError, Result};
pub use registry::{DetectorSpec, Entry, InputConstructor, ModelConstructor, Registry};

#[cfg(test)]
mod tests {
    use super::*;
    use mesa_nn::{HookPoint, Preset, Tiny, Transformer};

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

    struct NeedsPairs;

    impl InputDetector for NeedsPairs {
        fn name(&self) -> String {
            "needs-pairs".into()
        }
        fn requires(&self) -> Requires {
            Requires::PAIRS
        }
        fn fit(&self, _: &Transformer, data: &FitData<'_>) -> Result<Box<dyn FittedInputDetector>> {
            data.check(&self.name(), self.requires())?;
            Ok(Box::new(Broken {
                value: 0.0,
                short: false,
            }))
        }
    }

    fn model() -> Transformer {
        Transformer::new(Tiny::language_model(10, 16), 0).expect("model")
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
        let short = Broken {
            value: 0.5,
            short: true,
        };
        assert!(matches!(
            score_inputs(&short, &model(), &inputs),
            Err(DetectError::BadScores { .. })
        ));
    }

    #[test]
    fn missing_fit_data_is_named() {
        let err = NeedsPairs
            .fit(&model(), &FitData::default())
            .err()
            .expect("no pairs");
        assert!(err.to_string().contains("contrast pairs"), "{err}");
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
        let construct: InputConstructor = |_| Ok(Box::new(NeedsPairs));
        registry
            .register_input("needs-pairs", "test", construct)
            .expect("first");
        assert!(matches!(
            registry.register_input("needs-pairs", "test", construct),
            Err(DetectError::DuplicateName { .. })
        ));
        let spec = DetectorSpec {
            seed: 1,
            hook: HookPoint::resid_post(0),
        };
        let err = registry.input("nope", &spec).err().expect("unknown");
        assert!(err.to_string().contains("needs-pairs"), "{err}");
        assert_eq!(
            registry.input("needs-pairs", &spec).expect("built").name(),
            "needs-pairs"
        );
    }
}
