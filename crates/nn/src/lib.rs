//! `mesa-nn`: a decoder-only transformer on dfdx that researchers can look inside.
pub mod config;
pub mod error;
pub mod hooks;
pub mod model;
pub mod params;

pub use config::{AttentionKind, InputFront, ModelConfig, Preset, Small, Small4, Tiny};
pub use error::{NnError, Result};
pub use hooks::{
    ActivationCache, BlockHook, CacheFilter, CachedTensor, Hook, HookFn, HookPoint, Hooks,
    Intervention,
};
pub use model::{Input, TapedLogits, TapedScalar, Transformer};
pub mod train;
pub use train::{
    loss_on, token_batch, token_sampler, train, StepLog, Targets, TokenExample, TrainConfig,
};
pub mod sample;
pub mod vocab;
pub use sample::{generate, Sampling};
pub use vocab::Vocab;
pub mod checkpoint;
pub use checkpoint::{
    data_hash, git_revision, load_checkpoint, save_checkpoint, write_atomic, CheckpointMeta,
};
