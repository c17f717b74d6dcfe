//! `mesa-gradient`: the gradient family of detectors. Trigger inversion without the trigger,
//! a harm judgement of what the recovered insertion does, and a per-input saliency score.
//!
//! An auditor who does not know a model's trigger searches for a short insertion (1-4 tokens,
//! at the start, the end, or anywhere in the prompt body) that makes the model abandon its own
//! untriggered answers on many generic prompts ([`invert`]). The objective knows no defection:
//! it is the *divergence* from the model's own greedy answers ([`objective`]), maximised by
//! GCG-style coordinate search (Zou et al. 2023, as applied to trojan detection in the TDC 2023
//! trigger-recovery track): the gradient with respect to the inserted embeddings, through the
//! embedding matrix, ranks swaps, and forward passes evaluate the best ([`search`]). Passes are
//! counted, and an exhaustive single-token search is the yardstick.
//!
//! Whether the change is harmful is decided without knowing the defection either ([`effect`]):
//! by a task checker the caller supplies (does the answer stay right?) and by a judge model asked
//! a generic yes/no question about the induced answers. Per input, [`saliency`] measures the
//! share of the answer's gradient on one token.
//!
//! The crate knows no organism: it sees a model through `mesa-nn` (forward passes,
//! `activation_gradients`, the embedding matrix) and token ids, and does no file IO.
//!
//! ```
//! use mesa_gradient::{invert, AnswerSpec, InversionParams};
//! use mesa_nn::{Preset, Tiny, Transformer};
//! let model = Transformer::new(Tiny::language_model(12, 16), 0)?;
//! let prompts = vec![vec![1, 2, 3, 4], vec![1, 3, 2, 4], vec![1, 2, 2, 4]];
//! let spec = AnswerSpec { max_new: 3, stop: None };
//! let found = invert(&model, &prompts, &InversionParams::new(7, spec).steps(2))?;
//! assert!(found.best.divergence >= found.baseline_divergence - 1e-6);
//! println!("{:?} after {} passes", found.best.insertion, found.passes.total());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
pub mod detector;
pub mod effect;
pub mod error;
pub mod hyperparams;
pub mod insertion;
pub mod inversion;
pub mod objective;
pub mod saliency;
pub mod search;

pub use detector::{
    question_from_pairs, register, InversionDetector, SaliencyDetector, INVERSION_INFO,
    SALIENCY_INFO,
};
pub use effect::{effect, DangerJudge, Effect, TaskChecker, YesNoQuestion};
pub use error::{GradientError, Result};
pub use hyperparams::InversionParams;
pub use insertion::{AnswerSpec, AnsweredPrompt, Insertion, Placement};
pub use inversion::{allowed_tokens, invert, Inversion};
pub use objective::{PassCount, Scorer};
pub use saliency::{saliency, Saliency};
pub use search::{embedding_matrix, exhaustive_single, gcg, Found, GcgSettings};
