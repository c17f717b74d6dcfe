//! `mesa-causal`: detectors that intervene inside a model and watch its behaviour.
//!
//! - **Noise injection** ([`noise_sweep`]; Poser, Clymer et al. 2024; Tice et al. 2024): Gaussian
//!   noise on activations (each residual-stream point, a sweep of scales relative to the
//!   activation norm) or on weights, on generic untriggered prompts. A backdoored model's hidden
//!   behaviour may be shaken loose as one consistent foreign continuation; a clean model's answers
//!   only degrade. Model score with its dose-response curve.
//! - **Occlusion and patching** ([`occlusion_scores`], [`patch_localise`]): which input position
//!   rewrites the response (input-level score), and which positions and heads carry the effect
//!   from a flagged input to its counterpart (evidence).
//! - **Steering** ([`steering_sweep`]): the generic "harmful" direction from contrast pairs,
//!   added during generation, against a random direction of the same size.
//!
//! Behaviour is judged with `mesa-behavioral`'s [`mesa_behavioral::change_stats`] and the
//! caller's task checker: no trigger or defection is known. Detectors here know no organism and
//! do no file IO.
//!
//! ```
//! use mesa_causal::{noise_sweep, NoiseParams};
//! use mesa_nn::{Preset, Tiny, Transformer};
//!
//! let model = Transformer::new(Tiny::language_model(12, 24), 0)?;
//! let prompts = vec![vec![1, 2, 3], vec![1, 4, 3]];
//! // Any answer counts as doing the task here; a real checker knows the task.
//! let checker = |_: &[usize], _: &[usize]| Some(true);
//! let mut params = NoiseParams::new(4, Some(11), 0);
//! params.draws = 1;
//! let report = noise_sweep(&model, &prompts, &checker, &params)?;
//! assert_eq!(report.score, 0.0); // nothing can break when every answer is accepted
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod detector;
pub mod error;
pub mod generate;
pub mod localise;
pub mod noise;
pub mod steering;

pub use detector::{register, NoiseDetector, OcclusionDetector, SteeringDetector};
pub use error::{CausalError, Result};
pub use generate::{argmax, HookFactory, HookedGreedy};
pub use localise::{
    occlusion_scores, patch_localise, response_change, Localisation, Occlusion, PatchEffect,
};
pub use noise::{
    activation_noise, default_targets, mix, noise_sweep, weight_noise, DosePoint, NoiseParams,
    NoiseReport, NoiseTarget,
};
pub use steering::{
    contrast_direction, steering_sweep, SteerPoint, SteeringParams, SteeringReport,
};
