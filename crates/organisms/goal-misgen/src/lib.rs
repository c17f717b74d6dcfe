//! `mesa-goalmisgen`: goal-misgeneralization model organisms, after "Goal Misgeneralization in
//! Deep Reinforcement Learning" (Langosco et al. 2022) and "Understanding and controlling a
//! maze-solving policy network" (Turner et al. 2023), at toy scale.
//!
//! During training a true goal coincides with a proxy; a policy that learns the proxy keeps its
//! skills and pursues the wrong goal once the two come apart. Three seeded gridworlds:
//!
//! - **CoinRun corridor** ([`generate::corridor`]): a strip with obstacles; the coin sits at the
//!   right end except in `random_percent`% of training levels; at test it is anywhere.
//! - **Maze** ([`generate::maze`]): perfect mazes; the training cheese lies in the top-right
//!   `k x k` region; at test anywhere off the path to the corner. The proxy is the top-right
//!   corner.
//! - **Keys and chests** ([`generate::keys_chests`]): keys open chests; training levels have few
//!   keys and many chests, test levels many keys and few chests. The proxy is collecting keys.
//!
//! The policy is a `mesa-nn` transformer reading the grid as tokens ([`obs`]) with a 4-way
//! action head, behaviour-cloned from the optimal BFS planner ([`Episode::expert_action`]) on
//! the training distribution ([`policy::train_policy`]). Ground truth is behavioural and
//! measured per episode ([`Outcome`]: true goal, proxy, neither) and per model ([`Rates`]), never
//! assumed from the config: goal preference can flip with the seed alone.
//!
//! ```
//! use mesa_goalmisgen::{Episode, EnvSpec, GoalMisgenConfig, Outcome, Region, Split};
//! use rand::{rngs::StdRng, SeedableRng};
//!
//! let config = GoalMisgenConfig::from_toml(
//!     include_str!("../../../../datasets/goal-misgen/default.toml"),
//!     "default.toml".as_ref(),
//! )?;
//! let spec = EnvSpec::Maze { config: config.maze.clone(), region: Region::Side(1) };
//! let level = spec.generate(Split::Train, &mut StdRng::seed_from_u64(0))?;
//! assert_eq!(level.goal, level.proxy); // k = 1: the cheese is always in the corner
//! let mut episode = Episode::new(level, spec.max_steps());
//! assert_eq!(episode.run_expert()?, Outcome::TrueGoal);
//! # Ok::<(), mesa_goalmisgen::GoalMisgenError>(())
//! ```
//!
//! Invariants: every level comes from an explicit seed; mazes are connected and perfect; the
//! planner is optimal for the true goal; the runner refuses an action outside the action set.
//! The crate knows no detector: goal probes and the goal vector live in the experiment.

pub mod config;
pub mod episode;
pub mod error;
pub mod generate;
pub mod level;
pub mod obs;
pub mod policy;

pub use config::{
    CorridorConfig, GoalMisgenConfig, KeysChestsConfig, MazeConfig, PresetName, Region,
    TrainSection,
};
pub use episode::{Episode, Outcome};
pub use error::{ConfigFileError, GoalMisgenError, Result};
pub use generate::{EnvSpec, Split};
pub use level::{Action, EnvKind, Level, Pos};
pub use policy::{
    action_probs, bc_batch, evaluate, expert_rates, model_config, rollout, sample_state,
    train_policy, Rates,
};
