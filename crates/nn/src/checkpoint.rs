//! Checkpoints: safetensors weights plus a JSON sidecar.
//!
//! `NAME.safetensors` holds every parameter as a little-endian f32 tensor under the names
//! below; `NAME.json` holds the [`CheckpointMeta`] (config, seed, steps, data hash, git
//! revision, training log, the vocabulary as a list of words indexed by token id, and the
//! SHA-256 of the weights file). In Python:
//! `safetensors.numpy.load_file("NAME.safetensors")["blocks.0.attn.W_Q"]`;
//! `notebooks/checkpoint_forward.ipynb` reimplements the forward pass from these tensors.
//!
//! Loading checks the sidecar first (format, config within [`ModelConfig::validate`]'s bounds,
//! vocabulary), then the weights file against the sidecar's SHA-256 (so new weights beside an
//! old sidecar are refused), then every tensor's name, dtype and shape against the config before
//! any model is allocated, then that every value is finite. Sidecars of format 1 (before the
//! hash and the vocabulary) still load, with a warning on stderr that their weights cannot be
//! verified; saving again upgrades them.
//!
//! | name | shape |
//! |---|---|
//! | `embed.W_E` (token input) | `[vocab, d_model]` |
//! | `embed.W_in`, `embed.b_in` (vector input) | `[dim, d_model]`, `[d_model]` |
//! | `pos_embed.W_pos` | `[max_seq, d_model]` |
//! | `blocks.{i}.ln1.w`, `.b` / `blocks.{i}.ln2.w`, `.b` | `[d_model]` |
//! | `blocks.{i}.attn.W_Q`, `W_K`, `W_V` | `[d_model, n_heads * d_head]` (head-major columns) |
//! | `blocks.{i}.attn.b_Q`, `b_K`, `b_V` | `[n_heads * d_head]` |
//! | `blocks.{i}.attn.W_O`, `b_O` | `[n_heads * d_head, d_model]`, `[d_model]` |
//! | `blocks.{i}.mlp.W_in`, `b_in` | `[d_model, d_mlp]`, `[d_mlp]` |
//! | `blocks.{i}.mlp.W_out`, `b_out` | `[d_mlp, d_model]`, `[d_model]` |
//! | `ln_final.w`, `ln_final.b` | `[d_model]` |
//! | `unembed.W_U`, `unembed.b_U` | `[d_model, d_out]`, `[d_out]` |
//!
//! Matrices are stored `[in, out]` (the model computes `x @ W + b`), as TransformerLens does.
//! The forward pass of a token model: `x = W_E[tokens] + W_pos[:len]`; per block, pre-LayerNorm
//! (biased variance, eps 1e-5) before attention and before the MLP, causal softmax attention with
//! scores scaled by `1/sqrt(d_head)` (or, for `linear` attention, the raw scores times a causal
//! `1/n_positions` mask), `z @ W_O + b_O` added to the residual stream, then
//! `GELU_tanh(x @ W_in + b_in) @ W_out + b_out` added; a final LayerNorm and `x @ W_U + b_U`.

use std::io::Write;
use std::path::{Path, PathBuf};

use safetensors::tensor::{Dtype, TensorView};
use safetensors::SafeTensors;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::config::{InputFront, ModelConfig};
use crate::error::{NnError, Result};
use crate::model::Transformer;
use crate::train::{StepLog, TrainConfig};
use crate::vocab::Vocab;

/// The sidecar format this build writes.
pub const FORMAT_VERSION: u32 = 2;
/// The oldest sidecar format this build reads (format 1 has no weights hash and no vocabulary).
pub const OLDEST_FORMAT_VERSION: u32 = 1;

/// Everything recorded beside the weights.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CheckpointMeta {
    pub format_version: u32,
    pub config: ModelConfig,
    /// Seed of the weight initialisation.
    pub seed: u64,
    pub train_config: Option<TrainConfig>,
    pub steps: usize,
    /// Hash of the training data (see [`data_hash`]).
    pub data_hash: String,
    pub git_revision: Option<String>,
    pub training_log: Vec<StepLog>,
    /// Free-form facts the organism wants kept (variant, backdoored, ...).
    pub extra: serde_json::Value,
    /// The vocabulary of a token model, the word of token id `i` at index `i`; `None` for a
    /// model without one (vector input, or token ids with no words).
    #[serde(default)]
    pub vocab: Option<Vec<String>>,
    /// SHA-256 (hex) of the weights file; [`save_checkpoint`] fills it in and
    /// [`load_checkpoint`] checks it. `None` only in format-1 sidecars.
    #[serde(default)]
    pub weights_sha256: Option<String>,
}

impl CheckpointMeta {
    pub fn new(config: ModelConfig, seed: u64) -> Self {
        Self {
            format_version: FORMAT_VERSION,
            config,
            seed,
            train_config: None,
            steps: 0,
            data_hash: String::new(),
            git_revision: git_revision(),
            training_log: Vec::new(),
            extra: serde_json::Value::Null,
            vocab: None,
            weights_sha256: None,
        }
    }

    /// Records the vocabulary (id -> word) in the sidecar.
    pub fn with_vocab(mut self, vocab: &Vocab) -> Self {
        self.vocab = Some(vocab.words().to_vec());
        self
    }
}

/// The two files of the checkpoint named by `stem` (`stem.safetensors`, `stem.json`).
pub fn checkpoint_paths(stem: &Path) -> (PathBuf, PathBuf) {
    (
        stem.with_extension("safetensors"),
        stem.with_extension("json"),
    )
}

/// Writes weights and sidecar atomically (each to a temporary file, then renamed), with the
/// weights' SHA-256 in the sidecar (`meta.weights_sha256` is overwritten). An old sidecar is
/// removed before the new weights take its place and the new sidecar is renamed last, so a
/// crash in between leaves weights without a sidecar (not loadable), never new weights that an
/// old sidecar vouches for.
pub fn save_checkpoint(stem: &Path, model: &Transformer, meta: &CheckpointMeta) -> Result<()> {
    if &meta.config != model.config() {
        return Err(NnError::Checkpoint {
            path: stem.to_path_buf(),
            reason: "metadata config differs from the model's config".into(),
        });
    }
    check_vocab(meta, stem)?;
    let (weights_path, meta_path) = checkpoint_paths(stem);
    let params = model.named_params();
    let bytes: Vec<(String, Vec<usize>, Vec<u8>)> = params
        .into_iter()
        .map(|(name, shape, values)| {
            (
                name,
                shape,
                values.iter().flat_map(|v| v.to_le_bytes()).collect(),
            )
        })
        .collect();
    let views = bytes
        .iter()
        .map(|(name, shape, data)| {
            TensorView::new(Dtype::F32, shape.clone(), data)
                .map(|v| (name.clone(), v))
                .map_err(|e| NnError::Checkpoint {
                    path: weights_path.clone(),
                    reason: format!("tensor `{name}`: {e}"),
                })
        })
        .collect::<Result<Vec<_>>>()?;
    let serialized = safetensors::serialize(views, &None).map_err(|e| NnError::Checkpoint {
        path: weights_path.clone(),
        reason: e.to_string(),
    })?;
    let meta = CheckpointMeta {
        format_version: FORMAT_VERSION,
        weights_sha256: Some(sha256_hex(&serialized)),
        ..meta.clone()
    };
    let json = serde_json::to_vec_pretty(&meta).map_err(|e| NnError::Checkpoint {
        path: meta_path.clone(),
        reason: e.to_string(),
    })?;
    match std::fs::remove_file(&meta_path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            return Err(NnError::Io {
                path: meta_path,
                source: e,
            })
        }
        _ => {}
    }
    write_atomic(&weights_path, &serialized)?;
    write_atomic(&meta_path, &json)
}

/// Loads a checkpoint. With `expected`, the stored config must equal it. The sidecar, the
/// weights' hash, and every tensor's presence, dtype, shape and values are checked (see the
/// module docs); errors name the file and the tensor.
pub fn load_checkpoint(
    stem: &Path,
    expected: Option<&ModelConfig>,
) -> Result<(Transformer, CheckpointMeta)> {
    let (weights_path, meta_path) = checkpoint_paths(stem);
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| NnError::Io { path, source }
    };
    let meta_bytes = std::fs::read(&meta_path).map_err(io(&meta_path))?;
    let meta = read_sidecar(&meta_bytes, &meta_path, expected)?;
    let bytes = std::fs::read(&weights_path).map_err(io(&weights_path))?;
    match &meta.weights_sha256 {
        Some(hash) => {
            let actual = sha256_hex(&bytes);
            if &actual != hash {
                return Err(NnError::Checkpoint {
                    path: weights_path,
                    reason: format!(
                        "SHA-256 {actual} differs from {hash} recorded in {}: the weights are \
                         not the ones the sidecar describes",
                        meta_path.display()
                    ),
                });
            }
        }
        None => eprintln!(
            "warning: {}: sidecar format {} records no weights hash; {} is loaded unverified \
             (save the checkpoint again to upgrade it)",
            meta_path.display(),
            meta.format_version,
            weights_path.display()
        ),
    }
    let model = model_from_safetensors(&bytes, &meta.config, &weights_path)?;
    Ok((model, meta))
}

/// Parses and checks a sidecar: format version, config bounds, `expected`, vocabulary.
fn read_sidecar(
    bytes: &[u8],
    path: &Path,
    expected: Option<&ModelConfig>,
) -> Result<CheckpointMeta> {
    let bad = |reason: String| NnError::Checkpoint {
        path: path.to_path_buf(),
        reason,
    };
    let meta: CheckpointMeta =
        serde_json::from_slice(bytes).map_err(|e| bad(format!("corrupt sidecar: {e}")))?;
    if !(OLDEST_FORMAT_VERSION..=FORMAT_VERSION).contains(&meta.format_version) {
        return Err(bad(format!(
            "format version {} (this build reads {OLDEST_FORMAT_VERSION} to {FORMAT_VERSION})",
            meta.format_version
        )));
    }
    if meta.format_version >= 2 && meta.weights_sha256.is_none() {
        return Err(bad("format 2 sidecar without `weights_sha256`".into()));
    }
    meta.config
        .validate()
        .map_err(|e| bad(format!("config: {e}")))?;
    if let Some(expected) = expected {
        if &meta.config != expected {
            return Err(bad(format!(
                "config mismatch: checkpoint has preset `{}` {:?}, expected preset `{}` {:?}",
                meta.config.preset, meta.config, expected.preset, expected
            )));
        }
    }
    check_vocab(&meta, path)?;
    Ok(meta)
}

/// A recorded vocabulary must be valid and as long as the token model's input.
fn check_vocab(meta: &CheckpointMeta, path: &Path) -> Result<()> {
    let Some(words) = &meta.vocab else {
        return Ok(());
    };
    let bad = |reason: String| NnError::Checkpoint {
        path: path.to_path_buf(),
        reason,
    };
    match meta.config.input {
        InputFront::Tokens { vocab } if vocab == words.len() => {}
        InputFront::Tokens { vocab } => {
            return Err(bad(format!(
                "vocabulary of {} words for a model of {vocab} tokens",
                words.len()
            )))
        }
        InputFront::Vectors { .. } => {
            return Err(bad("vocabulary recorded for a vector-input model".into()))
        }
    }
    Vocab::new(words).map_err(|e| bad(format!("vocabulary: {e}")))?;
    Ok(())
}

/// Builds the model of `config` from safetensors `bytes`. Names, dtypes and shapes are checked
/// against `config` before the model is allocated; values must be finite.
fn model_from_safetensors(bytes: &[u8], config: &ModelConfig, path: &Path) -> Result<Transformer> {
    let tensors = SafeTensors::deserialize(bytes).map_err(|e| NnError::Checkpoint {
        path: path.to_path_buf(),
        reason: format!("truncated or corrupt safetensors file: {e}"),
    })?;
    let tensor_err = |tensor: &str, reason: String| NnError::CheckpointTensor {
        path: path.to_path_buf(),
        tensor: tensor.to_string(),
        reason,
    };
    let shapes = config.param_shapes();
    for (name, shape) in &shapes {
        let view = tensors
            .tensor(name)
            .map_err(|_| tensor_err(name, "missing".into()))?;
        if view.dtype() != Dtype::F32 {
            return Err(tensor_err(
                name,
                format!("dtype {:?}, expected F32", view.dtype()),
            ));
        }
        if view.shape() != shape.as_slice() {
            return Err(tensor_err(
                name,
                format!("shape {:?}, the config needs {shape:?}", view.shape()),
            ));
        }
    }
    if let Some(extra) = tensors
        .names()
        .into_iter()
        .find(|n| !shapes.iter().any(|(name, _)| name == *n))
    {
        return Err(tensor_err(extra, "not a parameter of this config".into()));
    }
    // Weights are overwritten below; the seed does not matter.
    let mut model = Transformer::new(config.clone(), 0)?;
    let mut failure = None;
    model.visit_params_mut(&mut |name, mut p| {
        if failure.is_some() {
            return;
        }
        // Present with the right shape: checked above against the same config.
        let Ok(view) = tensors.tensor(name) else {
            failure = Some(tensor_err(name, "missing".into()));
            return;
        };
        let values: Vec<f32> = view
            .data()
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        if values.len() != p.dims().iter().product::<usize>() {
            failure = Some(tensor_err(
                name,
                "data length differs from its shape".into(),
            ));
        } else if values.iter().any(|v| !v.is_finite()) {
            failure = Some(tensor_err(name, "contains NaN or infinite values".into()));
        } else {
            p.set_values(&values);
        }
    });
    match failure {
        Some(e) => Err(e),
        None => Ok(model),
    }
}

/// Writes `bytes` to `path` through a temporary file in the same directory and a rename, so a
/// reader never sees a half-written file.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let io = |source| NnError::Io {
        path: path.to_path_buf(),
        source,
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(io)?;
    }
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = path.with_file_name(format!(".{file_name}.tmp{}", std::process::id()));
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result.map_err(io)
}

/// SHA-256 (hex) of anything serialisable: the training data's fingerprint.
pub fn data_hash<T: Serialize>(data: &T) -> String {
    let bytes = serde_json::to_vec(data).expect("training data serialises to JSON");
    sha256_hex(&bytes)
}

/// SHA-256 of `bytes`, as 64 lowercase hex digits (what `sha256sum` prints).
pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The git revision of the work tree this process runs in (with `-dirty` if tracked files
/// differ from it), or `None` outside a git checkout. Taken once, at the first call, and the
/// same for every later call: a run calls it before it writes anything, so its own result
/// files (tracked under `results/`) do not make the tables it writes after the first one
/// `-dirty`.
pub fn git_revision() -> Option<String> {
    static REVISION: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();
    REVISION
        .get_or_init(|| git_revision_in(Path::new(".")))
        .clone()
}

/// The git revision of the work tree at `dir` now (with `-dirty` if tracked files differ from
/// it), or `None` outside a git checkout. Not cached; see [`git_revision`].
pub fn git_revision_in(dir: &Path) -> Option<String> {
    let git = |args: &[&str]| {
        std::process::Command::new("git")
            .arg("-C")
            .arg(dir)
            .args(args)
            .output()
            .ok()
    };
    let out = git(&["rev-parse", "HEAD"])?;
    if !out.status.success() {
        return None;
    }
    let rev = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let dirty = git(&["status", "--porcelain", "--untracked-files=no"])
        .map(|o| !o.stdout.is_empty())
        .unwrap_or(false);
    Some(if dirty { format!("{rev}-dirty") } else { rev })
}
