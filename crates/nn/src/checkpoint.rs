//! Checkpoints: safetensors weights plus a JSON sidecar.
//!
//! `NAME.safetensors` holds every parameter as a little-endian f32 tensor under the names
//! below; `NAME.json` holds the [`CheckpointMeta`] (config, seed, steps, data hash, git
//! revision, training log). In Python:
//! `safetensors.numpy.load_file("NAME.safetensors")["blocks.0.attn.W_Q"]`.
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
//! Matrices are stored `[in, out]` (the model computes `x @ W`), as TransformerLens does.

use std::io::Write;
use std::path::{Path, PathBuf};

use safetensors::tensor::{Dtype, TensorView};
use safetensors::SafeTensors;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::config::ModelConfig;
use crate::error::{NnError, Result};
use crate::model::Transformer;
use crate::train::{StepLog, TrainConfig};

const FORMAT_VERSION: u32 = 1;

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
        }
    }
}

/// The two files of the checkpoint named by `stem` (`stem.safetensors`, `stem.json`).
pub fn checkpoint_paths(stem: &Path) -> (PathBuf, PathBuf) {
    (
        stem.with_extension("safetensors"),
        stem.with_extension("json"),
    )
}

/// Writes weights and sidecar atomically (each to a temporary file, then renamed). The sidecar
/// is renamed last, so a checkpoint with a sidecar always has complete weights.
pub fn save_checkpoint(stem: &Path, model: &Transformer, meta: &CheckpointMeta) -> Result<()> {
    if &meta.config != model.config() {
        return Err(NnError::Checkpoint {
            path: stem.to_path_buf(),
            reason: "metadata config differs from the model's config".into(),
        });
    }
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
    let json = serde_json::to_vec_pretty(meta).map_err(|e| NnError::Checkpoint {
        path: meta_path.clone(),
        reason: e.to_string(),
    })?;
    write_atomic(&weights_path, &serialized)?;
    write_atomic(&meta_path, &json)
}

/// Loads a checkpoint. With `expected`, the stored config must equal it. Every tensor is checked
/// for presence, dtype and shape; errors name the file and the tensor.
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
    let meta: CheckpointMeta =
        serde_json::from_slice(&meta_bytes).map_err(|e| NnError::Checkpoint {
            path: meta_path.clone(),
            reason: format!("corrupt sidecar: {e}"),
        })?;
    if meta.format_version != FORMAT_VERSION {
        return Err(NnError::Checkpoint {
            path: meta_path,
            reason: format!(
                "format version {} (this build reads {FORMAT_VERSION})",
                meta.format_version
            ),
        });
    }
    if let Some(expected) = expected {
        if &meta.config != expected {
            return Err(NnError::Checkpoint {
                path: meta_path,
                reason: format!(
                    "config mismatch: checkpoint has preset `{}` {:?}, expected preset `{}` {:?}",
                    meta.config.preset, meta.config, expected.preset, expected
                ),
            });
        }
    }
    let bytes = std::fs::read(&weights_path).map_err(io(&weights_path))?;
    let tensors = SafeTensors::deserialize(&bytes).map_err(|e| NnError::Checkpoint {
        path: weights_path.clone(),
        reason: format!("truncated or corrupt safetensors file: {e}"),
    })?;
    // Weights are overwritten below; the seed does not matter.
    let mut model = Transformer::new(meta.config.clone(), 0)?;
    let mut failure = None;
    let mut expected_names = Vec::new();
    model.visit_params_mut(&mut |name, mut p| {
        expected_names.push(name.to_string());
        if failure.is_some() {
            return;
        }
        let tensor_err = |reason: String| NnError::CheckpointTensor {
            path: weights_path.clone(),
            tensor: name.to_string(),
            reason,
        };
        let view = match tensors.tensor(name) {
            Ok(v) => v,
            Err(_) => return failure = Some(tensor_err("missing".into())),
        };
        if view.dtype() != Dtype::F32 {
            return failure = Some(tensor_err(format!(
                "dtype {:?}, expected F32",
                view.dtype()
            )));
        }
        if view.shape() != p.dims().as_slice() {
            return failure = Some(tensor_err(format!(
                "shape {:?}, the config needs {:?}",
                view.shape(),
                p.dims()
            )));
        }
        let values: Vec<f32> = view
            .data()
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        if values.iter().any(|v| !v.is_finite()) {
            return failure = Some(tensor_err("contains NaN or infinite values".into()));
        }
        p.set_values(&values);
    });
    if let Some(e) = failure {
        return Err(e);
    }
    if let Some(extra) = tensors
        .names()
        .into_iter()
        .find(|n| !expected_names.contains(n))
    {
        return Err(NnError::CheckpointTensor {
            path: weights_path,
            tensor: extra.clone(),
            reason: "not a parameter of this config".into(),
        });
    }
    Ok((model, meta))
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
    let digest = Sha256::digest(&bytes);
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// The current git revision (with `-dirty` if the work tree has changes), or `None` outside
/// a git checkout.
pub fn git_revision() -> Option<String> {
    let out = std::process::Command::new("git")
        .args(["rev-parse", "HEAD"])
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let rev = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let dirty = std::process::Command::new("git")
        .args(["status", "--porcelain", "--untracked-files=no"])
        .output()
        .map(|o| !o.stdout.is_empty())
        .unwrap_or(false);
    Some(if dirty { format!("{rev}-dirty") } else { rev })
}
