//! `mesa-nn`: a decoder-only transformer on dfdx that researchers can look inside.
//!
//! Every organism of the lab is trained with this crate and every detector looks inside models
//! through it. The model ([`Transformer`]) is one type with pluggable parts (token or real-vector
//! input, softmax or linear attention, with or without MLP and LayerNorm, any output width), sized
//! by presets that are types ([`Tiny`], [`Small`], [`Small4`]). It exposes TransformerLens-style
//! hook points ([`HookPoint`], printed as `blocks.0.hook_resid_post` and so on):
//!
//! - [`Transformer::run_with_cache`]: logits and an [`ActivationCache`] (`[batch, pos, ...]`
//!   tensors, convertible to ndarray for linfa);
//! - [`Transformer::run_with_hooks`]: [`Hooks`] that patch, zero- or mean-ablate, steer, or run
//!   any function, per position and per head, scoped to the one call;
//! - [`Transformer::activation_gradients`]: gradients of any objective with respect to
//!   activations, through hooked runs;
//! - [`train()`]: AdamW, warm-up + cosine, clipping, loss masks, seeded batches, a per-step log;
//! - [`generate`]: batched greedy or temperature sampling;
//! - [`save_checkpoint`] / [`load_checkpoint`]: safetensors + JSON sidecar with the vocabulary
//!   and the weights' SHA-256, checked on load (tensor names in [`checkpoint`]);
//! - [`Vocab`]: a word-level vocabulary where an unknown word is an error;
//! - [`config_file`]: the organisms' TOML config files (reading, [`ConfigFileError`], the shared
//!   `[model]` and `[train]` sections).
//!
//! ```
//! use mesa_nn::{CacheFilter, HookPoint, Input, Preset, Tiny, Transformer};
//! let model = Transformer::new(Tiny::language_model(10, 16), 0)?;
//! let input = Input::tokens(&[vec![1, 2, 3, 4]])?;
//! let (logits, cache) = model.run_with_cache(&input, &CacheFilter::All)?;
//! let resid = cache.array3(HookPoint::resid_post(0))?; // [batch, pos, d_model]
//! assert_eq!(resid.shape(), &[1, 4, 32]);
//! assert_eq!(logits.shape(), &[1, 4, 10]);
//! # Ok::<(), mesa_nn::NnError>(())
//! ```
//!
//! Invariants: all randomness comes from explicit seeds (same seed, same numbers); a hooked run
//! with no hooks is bit-identical to the plain forward; a failed write never leaves a
//! half-written checkpoint.
pub mod checkpoint;
pub mod config;
pub mod config_file;
mod cross_entropy;
pub mod error;
mod fused;
pub mod hooks;
mod kernels;
pub mod model;
mod ops;
pub mod parallel;
pub mod params;
#[cfg(test)]
mod reference;
pub mod sample;
pub mod train;
pub mod vocab;

pub use checkpoint::{
    data_hash, git_revision, load_checkpoint, save_checkpoint, write_atomic, CheckpointMeta,
};
pub use config::{AttentionKind, InputFront, ModelConfig, Preset, Small, Small4, Tiny};
pub use config_file::ConfigFileError;
pub use error::{NnError, Result};
pub use hooks::{
    ActivationCache, BlockHook, CacheFilter, CachedTensor, Hook, HookFn, HookPoint, Hooks,
    Intervention,
};
pub use kernels::{kernel_threads, with_kernel_threads};
pub use model::{Input, TapedLogits, TapedScalar, Transformer};
pub use parallel::parallel_map;
pub use sample::{generate, Sampling};
pub use train::{
    loss_and_gradients, loss_on, token_batch, token_sampler, train, train_observed, NoObserver,
    StepLog, Targets, TokenExample, TrainConfig, TrainObserver, Trainer,
};
pub use vocab::Vocab;
