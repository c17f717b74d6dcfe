//! The organism's config: task shape, control pool size, and training settings per
//! architecture. Read from TOML under `datasets/icl/` and validated on load, so a bad value
//! fails before any training with an error naming the file and the field.

use std::path::{Path, PathBuf};

use mesa_nn::config_file::{load_toml, read_toml};
use serde::{Deserialize, Serialize};

use crate::error::{IclError, Result};

/// How the inputs `x_i` are drawn. Both have mean 0 and identity covariance.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum XDist {
    /// `x ~ N(0, I_d)`.
    Gaussian,
    /// Each coordinate uniform on `[-sqrt 3, sqrt 3]`.
    Uniform,
}

/// The regression tasks: `w ~ N(0, I_d)`, `y_i = w.x_i + noise`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TaskConfig {
    /// Input dimension `d`.
    pub d: usize,
    /// Context examples `N` per sequence (the query comes after them).
    pub n_context: usize,
    /// Standard deviation of the Gaussian label noise; 0 for noiseless tasks.
    pub noise_std: f64,
    pub x_dist: XDist,
}

/// The non-optimizer controls.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ControlConfig {
    /// `M`: the few-tasks control trains on a fixed pool of this many weight vectors. Far below
    /// the task-diversity threshold of Raventos et al. (2023), so the model can do well by
    /// recognising which pool task it sees rather than by solving the regression.
    pub pool_size: usize,
}

/// Training settings of one architecture.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ArchTraining {
    pub steps: usize,
    pub batch_size: usize,
    pub lr: f32,
    pub warmup_steps: usize,
    /// Random restarts: this many initialisations each train the first `restart_steps` steps,
    /// and the one with the lowest training loss over its last 50 of them trains on to `steps`
    /// (its run is exactly the uninterrupted run from its initialisation). 1 (the default)
    /// trains one initialisation.
    #[serde(default = "one")]
    pub restarts: usize,
    /// Steps of the restarts' common start; at most `steps`. Unused with one restart.
    #[serde(default)]
    pub restart_steps: usize,
}

fn one() -> usize {
    1
}

/// Sizes of the softmax transformer (the LSA model's sizes follow from `d`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SoftmaxSizes {
    pub d_model: usize,
    pub n_heads: usize,
    pub n_layers: usize,
    pub d_mlp: usize,
}

/// Everything `datasets/icl/*.toml` holds.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IclConfig {
    pub task: TaskConfig,
    pub controls: ControlConfig,
    /// Training of the one-layer linear self-attention model.
    pub lsa: ArchTraining,
    /// Training of the softmax transformer.
    pub softmax: ArchTraining,
    pub softmax_sizes: SoftmaxSizes,
}

impl Default for IclConfig {
    /// The defaults of `datasets/icl/default.toml`: d = 10, N = 10 as in von Oswald et al.
    fn default() -> Self {
        Self {
            task: TaskConfig {
                d: 10,
                n_context: 10,
                noise_std: 0.0,
                x_dist: XDist::Gaussian,
            },
            controls: ControlConfig { pool_size: 4 },
            lsa: ArchTraining {
                steps: 1500,
                batch_size: 128,
                lr: 1e-2,
                warmup_steps: 50,
                restarts: 3,
                restart_steps: 300,
            },
            softmax: ArchTraining {
                steps: 1000,
                batch_size: 64,
                lr: 1e-3,
                warmup_steps: 100,
                restarts: 1,
                restart_steps: 0,
            },
            softmax_sizes: SoftmaxSizes {
                d_model: 32,
                n_heads: 2,
                n_layers: 2,
                d_mlp: 64,
            },
        }
    }
}

impl IclConfig {
    /// Reads and validates a TOML config.
    pub fn load(path: &Path) -> Result<Self> {
        let config: Self = load_toml(path)?;
        config.validate_at(path)?;
        Ok(config)
    }

    /// Parses and validates TOML text; `path` only names the source in errors.
    pub fn from_toml(text: &str, path: &Path) -> Result<Self> {
        let config: Self = read_toml(text, path)?;
        config.validate_at(path)?;
        Ok(config)
    }

    /// Checks every value; `from_toml` calls it, code that builds a config by hand should too.
    pub fn validate(&self) -> Result<()> {
        self.validate_at(Path::new("<inline>"))
    }

    fn validate_at(&self, path: &Path) -> Result<()> {
        let bad = |field: &'static str, reason: &str| {
            Err(IclError::InvalidConfig {
                path: PathBuf::from(path),
                field,
                reason: reason.to_string(),
            })
        };
        let t = &self.task;
        if t.d == 0 {
            return bad("task.d", "the input dimension must be at least 1");
        }
        if t.n_context == 0 {
            return bad("task.n_context", "a task needs at least 1 context example");
        }
        if !t.noise_std.is_finite() || t.noise_std < 0.0 {
            return bad("task.noise_std", "must be a finite number >= 0");
        }
        if self.controls.pool_size == 0 {
            return bad(
                "controls.pool_size",
                "the few-tasks pool needs at least 1 task",
            );
        }
        for (name, a) in [("lsa", &self.lsa), ("softmax", &self.softmax)] {
            let field = |f: &'static str| -> &'static str {
                match (name, f) {
                    ("lsa", "steps") => "lsa.steps",
                    ("lsa", "batch_size") => "lsa.batch_size",
                    ("lsa", "restarts") => "lsa.restarts",
                    ("lsa", "restart_steps") => "lsa.restart_steps",
                    ("lsa", _) => "lsa.lr",
                    (_, "steps") => "softmax.steps",
                    (_, "batch_size") => "softmax.batch_size",
                    (_, "restarts") => "softmax.restarts",
                    (_, "restart_steps") => "softmax.restart_steps",
                    _ => "softmax.lr",
                }
            };
            if a.steps == 0 {
                return bad(field("steps"), "must be at least 1");
            }
            if a.batch_size == 0 {
                return bad(field("batch_size"), "must be at least 1");
            }
            if !(a.lr.is_finite() && a.lr > 0.0) {
                return bad(field("lr"), "must be a positive number");
            }
            if a.restarts == 0 {
                return bad(field("restarts"), "must be at least 1");
            }
            if a.restarts > 1 && (a.restart_steps == 0 || a.restart_steps > a.steps) {
                return bad(
                    field("restart_steps"),
                    "with more than one restart, must be between 1 and steps",
                );
            }
        }
        let s = &self.softmax_sizes;
        if s.d_model == 0 || s.n_heads == 0 || s.n_layers == 0 {
            return bad(
                "softmax_sizes",
                "d_model, n_heads and n_layers must be positive",
            );
        }
        if (s.d_model / s.n_heads) * s.n_heads != s.d_model {
            return bad("softmax_sizes.n_heads", "must divide d_model");
        }
        Ok(())
    }
}
