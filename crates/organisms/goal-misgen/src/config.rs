//! The organism config, as written in `datasets/goal-misgen/*.toml`, and its validation.
//!
//! One file describes the three gridworlds, the sweeps over randomization, the policy's size and
//! training run, and the evaluation. Loading checks every field and names the file and the field
//! in its error.

use std::path::Path;

use mesa_nn::config_file::{load_toml, read_toml, ConfigFileError};
use serde::{Deserialize, Serialize};

use crate::error::Result;

/// The `[model]` and `[train]` sections (the latter is behaviour cloning: every batch is drawn
/// fresh from the training distribution), shared with the other organisms.
pub use mesa_nn::config_file::{ModelSection, PresetName, TrainSection};

/// The whole config.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GoalMisgenConfig {
    /// Base seed; model `i` of a setting uses `seed + i` (levels, weights and batches).
    pub seed: u64,
    /// Independently trained models per setting (at least 1; the issue asks for >= 3).
    pub seeds_per_setting: usize,
    pub model: ModelSection,
    pub train: TrainSection,
    pub eval: EvalSection,
    pub corridor: CorridorConfig,
    pub maze: MazeConfig,
    pub keys_chests: KeysChestsConfig,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EvalSection {
    /// Episodes per split (training distribution, shifted distribution) per model.
    pub episodes: usize,
}

/// CoinRun at toy scale: the agent starts at the left end of a `width x height` strip with
/// random obstacles; the right end is the middle cell of the last column.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CorridorConfig {
    pub width: usize,
    pub height: usize,
    /// Probability that an interior cell is an obstacle (levels are redrawn until connected).
    pub obstacle_density: f64,
    pub max_steps: usize,
    /// The sweep: percent of training levels whose coin is anywhere instead of at the right end.
    pub random_percents: Vec<f64>,
    /// Behaviour-cloning steps for this environment, overriding `train.steps` (some tasks
    /// need more than others to reach the target training success).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub train_steps: Option<usize>,
}

/// Perfect mazes on a `size x size` grid (rooms on even coordinates, walls between them, no
/// outer border, as in Procgen); the agent starts bottom-left, the proxy is the top-right corner.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MazeConfig {
    pub size: usize,
    pub max_steps: usize,
    /// The sweep: side of the top-right region the training cheese lies in, or `"full"`.
    pub regions: Vec<Region>,
    /// Behaviour-cloning steps for this environment, overriding `train.steps` (some tasks
    /// need more than others to reach the target training success).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub train_steps: Option<usize>,
}

/// Where the training cheese may lie.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Region {
    /// The top-right `k x k` cells.
    Side(usize),
    /// Anywhere (no distribution shift).
    Full(FullWord),
}

/// The word `full` in a config.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum FullWord {
    #[serde(rename = "full")]
    Full,
}

impl Region {
    pub const FULL: Region = Region::Full(FullWord::Full);

    /// The region's side on a grid of side `size` (`full` = the whole grid).
    pub fn side(self, size: usize) -> usize {
        match self {
            Region::Side(k) => k.min(size),
            Region::Full(_) => size,
        }
    }

    pub fn label(self) -> String {
        match self {
            Region::Side(k) => k.to_string(),
            Region::Full(_) => "full".into(),
        }
    }
}

/// A room with keys and chests; a key opens one chest. Counts are inclusive ranges `[min, max]`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeysChestsConfig {
    pub size: usize,
    pub max_steps: usize,
    pub train_keys: [usize; 2],
    pub train_chests: [usize; 2],
    pub test_keys: [usize; 2],
    pub test_chests: [usize; 2],
    /// Behaviour-cloning steps for this environment, overriding `train.steps` (some tasks
    /// need more than others to reach the target training success).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub train_steps: Option<usize>,
}

/// Most keys or chests a level may hold (the planner keeps them in 16-bit masks).
pub const MAX_OBJECTS: usize = 8;

impl GoalMisgenConfig {
    /// Reads and validates a config file.
    pub fn load(path: &Path) -> Result<Self> {
        let config: Self = load_toml(path)?;
        config.validate(path)?;
        Ok(config)
    }

    /// Parses and validates TOML text; `path` is used in error messages only.
    pub fn from_toml(text: &str, path: &Path) -> Result<Self> {
        let config: Self = read_toml(text, path)?;
        config.validate(path)?;
        Ok(config)
    }

    /// Checks every value; errors name `path` and the field.
    pub fn validate(&self, path: &Path) -> Result<()> {
        let bad = |field: &str, reason: &str| {
            Err(ConfigFileError::invalid_field(path, field, reason).into())
        };
        if self.seeds_per_setting == 0 {
            return bad("seeds_per_setting", "must be at least 1");
        }
        let t = &self.train;
        t.validate(path)?;
        for (field, steps) in [
            ("corridor.train_steps", self.corridor.train_steps),
            ("maze.train_steps", self.maze.train_steps),
            ("keys_chests.train_steps", self.keys_chests.train_steps),
        ] {
            if steps.is_some_and(|s| s <= t.warmup_steps) {
                return bad(field, "must be larger than train.warmup_steps");
            }
        }
        if self.eval.episodes == 0 {
            return bad("eval.episodes", "must be positive");
        }
        let c = &self.corridor;
        if c.width < 4 || c.width > 32 {
            return bad("corridor.width", "must be in 4..=32");
        }
        if c.height == 0 || c.height > 9 {
            return bad("corridor.height", "must be in 1..=9");
        }
        if !(0.0..=0.5).contains(&c.obstacle_density) {
            return bad("corridor.obstacle_density", "must be in [0, 0.5]");
        }
        if c.max_steps == 0 {
            return bad("corridor.max_steps", "must be positive");
        }
        if c.random_percents.is_empty() {
            return bad("corridor.random_percents", "must list at least one value");
        }
        if c.random_percents
            .iter()
            .any(|p| !(p.is_finite() && (0.0..=100.0).contains(p)))
        {
            return bad(
                "corridor.random_percents",
                "every value must be in [0, 100]",
            );
        }
        let m = &self.maze;
        if m.size < 3 || m.size > 15 || m.size.is_multiple_of(2) {
            return bad("maze.size", "must be odd and in 3..=15");
        }
        if m.max_steps == 0 {
            return bad("maze.max_steps", "must be positive");
        }
        if m.regions.is_empty() {
            return bad("maze.regions", "must list at least one region");
        }
        for r in &m.regions {
            if let Region::Side(k) = r {
                if *k == 0 || *k > m.size {
                    return bad(
                        "maze.regions",
                        &format!("region side {k} must be in 1..={} or \"full\"", m.size),
                    );
                }
            }
        }
        let k = &self.keys_chests;
        if k.size < 3 || k.size > 12 {
            return bad("keys_chests.size", "must be in 3..=12");
        }
        if k.max_steps == 0 {
            return bad("keys_chests.max_steps", "must be positive");
        }
        for (field, [lo, hi]) in [
            ("keys_chests.train_keys", k.train_keys),
            ("keys_chests.train_chests", k.train_chests),
            ("keys_chests.test_keys", k.test_keys),
            ("keys_chests.test_chests", k.test_chests),
        ] {
            if lo == 0 || lo > hi || hi > MAX_OBJECTS {
                return bad(
                    field,
                    &format!("must be [min, max] with 1 <= min <= max <= {MAX_OBJECTS}"),
                );
            }
        }
        let most = k.train_keys[1].max(k.test_keys[1]) + k.train_chests[1].max(k.test_chests[1]);
        if most + 1 > k.size * k.size {
            return bad(
                "keys_chests.size",
                "the room is too small for the most keys and chests plus the agent",
            );
        }
        Ok(())
    }
}
