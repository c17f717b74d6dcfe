//! The policy: a `mesa-nn` transformer over observation tokens with a 4-way action head at the
//! query token, trained by behaviour cloning of the BFS planner on the training distribution,
//! and run greedily (optionally with hooks) in batched rollouts.

use mesa_nn::{Hooks, Input, ModelConfig, StepLog, Targets, TrainConfig, Transformer};
use ndarray::{Array2, Array3};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

use crate::config::{PresetName, TrainSection};
use crate::episode::{Episode, Outcome};
use crate::error::{GoalMisgenError, Result};
use crate::generate::{EnvSpec, Split};
use crate::level::{Action, EnvKind, Pos};
use crate::obs::{self, Mask};

/// The policy's shape for a setting: a causal transformer over the observation tokens whose
/// output head has one logit per action.
pub fn model_config(spec: &EnvSpec, preset: PresetName) -> ModelConfig {
    let (w, h) = spec.dims();
    let n = w * h;
    let mut config = preset.language_model(obs::vocab_size(n), obs::seq_len(n));
    config.d_out = Action::COUNT;
    config
}

/// A state of the training distribution where the episode is still running: a fresh training
/// level with the agent on a random free cell (and, in keys and chests, a random consistent
/// amount of progress). Covering every state, not only the expert's paths, teaches the policy
/// to recover from its own mistakes.
pub fn sample_state(spec: &EnvSpec, split: Split, rng: &mut impl Rng) -> Result<Episode> {
    for _ in 0..100 {
        let level = spec.generate(split, rng)?;
        let mut episode = Episode::new(level, spec.max_steps());
        if spec.kind() == EnvKind::KeysChests {
            let picked = rng.gen_range(0..=episode.keys.len());
            let opened = rng.gen_range(0..=picked.min(episode.chests.len()));
            episode.keys.shuffle(rng);
            episode.chests.shuffle(rng);
            episode.keys.truncate(episode.keys.len() - picked);
            episode.chests.truncate(episode.chests.len() - opened);
            episode.held = picked - opened;
            if episode.held > episode.chests.len() || episode.openable() == 0 {
                continue;
            }
        }
        let occupied: Vec<Pos> = episode
            .keys
            .iter()
            .chain(&episode.chests)
            .chain(episode.level.goal.iter())
            .chain(episode.level.proxy.iter())
            .copied()
            .collect();
        let free: Vec<Pos> = episode
            .level
            .open_cells()
            .into_iter()
            .filter(|p| !occupied.contains(p))
            .collect();
        let Some(&agent) = free.choose(rng) else {
            continue;
        };
        episode.agent = agent;
        episode.path = vec![agent];
        if episode.expert_action().is_some() {
            return Ok(episode);
        }
    }
    Err(GoalMisgenError::Generation {
        env: spec.kind().name(),
        reason: "no running state with a plan in 100 draws".into(),
    })
}

/// One behaviour-cloning batch: observations and the planner's action at the query token.
pub fn bc_batch(spec: &EnvSpec, batch: usize, rng: &mut impl Rng) -> Result<(Input, Targets)> {
    let (w, h) = spec.dims();
    let seq = obs::seq_len(w * h);
    let q = obs::query_position(w * h);
    let mut tokens = Array2::zeros((batch, seq));
    let mut ids = Array2::zeros((batch, seq));
    let mut weights = Array2::zeros((batch, seq));
    for b in 0..batch {
        let episode = sample_state(spec, Split::Train, rng)?;
        let action = episode.expert_action().ok_or(GoalMisgenError::Generation {
            env: spec.kind().name(),
            reason: "sampled state has no plan".into(),
        })?;
        for (t, tok) in obs::observe(&episode, Mask::default())
            .into_iter()
            .enumerate()
        {
            tokens[[b, t]] = tok;
        }
        ids[[b, q]] = action.index();
        weights[[b, q]] = 1.0;
    }
    Ok((Input::Tokens(tokens), Targets::Classes { ids, weights }))
}

/// Builds a policy from `seed` and trains it by behaviour cloning (for the environment's
/// `train_steps` when it sets them, else `train.steps`); returns it with the loss log.
pub fn train_policy(
    spec: &EnvSpec,
    preset: PresetName,
    train: &TrainSection,
    seed: u64,
    show_progress: bool,
) -> Result<(Transformer, Vec<StepLog>)> {
    let mut model = Transformer::new(model_config(spec, preset), seed)?;
    let config = TrainConfig {
        steps: spec.train_steps().unwrap_or(train.steps),
        batch_size: train.batch_size,
        lr: train.lr,
        warmup_steps: train.warmup_steps,
        seed,
        ..TrainConfig::default()
    };
    let log = mesa_nn::train(
        &mut model,
        &config,
        |rng: &mut StdRng, _step| {
            bc_batch(spec, train.batch_size, rng).map_err(|e| match e {
                GoalMisgenError::Nn(e) => e,
                other => mesa_nn::NnError::InvalidInput(other.to_string()),
            })
        },
        show_progress,
    )?;
    Ok((model, log))
}

/// Action probabilities `[batch, 4]` at the query token, under `hooks` (empty = plain run).
pub fn action_probs(
    model: &Transformer,
    tokens: &[Vec<usize>],
    hooks: &Hooks,
) -> Result<Array2<f32>> {
    let input = Input::tokens(tokens)?;
    let logits: Array3<f32> = if hooks.is_empty() {
        model.forward(&input)?
    } else {
        model.run_with_hooks(&input, hooks)?
    };
    let last = logits.shape()[1] - 1;
    let mut probs = Array2::zeros((tokens.len(), logits.shape()[2]));
    for b in 0..tokens.len() {
        let row = logits.slice(ndarray::s![b, last, ..]);
        let max = row.fold(f32::NEG_INFINITY, |m, &x| m.max(x));
        let exp: Vec<f32> = row.iter().map(|&x| (x - max).exp()).collect();
        let z: f32 = exp.iter().sum();
        for (a, e) in exp.into_iter().enumerate() {
            probs[[b, a]] = e / z;
        }
    }
    Ok(probs)
}

/// Runs every episode to its end with the greedy policy (ties to the first action), all
/// running episodes as one batch per step.
pub fn rollout(model: &Transformer, episodes: &mut [Episode], hooks: &Hooks) -> Result<()> {
    loop {
        let running: Vec<usize> = (0..episodes.len())
            .filter(|&i| episodes[i].outcome().is_none())
            .collect();
        if running.is_empty() {
            return Ok(());
        }
        let tokens: Vec<Vec<usize>> = running
            .iter()
            .map(|&i| obs::observe(&episodes[i], Mask::default()))
            .collect();
        let probs = action_probs(model, &tokens, hooks)?;
        for (row, &i) in running.iter().enumerate() {
            let mut best = 0;
            for a in 1..Action::COUNT {
                if probs[[row, a]] > probs[[row, best]] {
                    best = a;
                }
            }
            episodes[i].step(best)?;
        }
    }
}

/// Outcome rates over a set of episodes.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Rates {
    pub episodes: usize,
    pub true_goal: f64,
    pub proxy: f64,
    pub neither: f64,
}

impl Rates {
    pub fn of(episodes: &[Episode]) -> Rates {
        let n = episodes.len().max(1) as f64;
        let count = |o: Outcome| episodes.iter().filter(|e| e.outcome() == Some(o)).count() as f64;
        Rates {
            episodes: episodes.len(),
            true_goal: count(Outcome::TrueGoal) / n,
            proxy: count(Outcome::Proxy) / n,
            neither: count(Outcome::Neither) / n,
        }
    }
}

/// `n` fresh episodes of `split`, their levels drawn from `seed`.
pub fn episodes(spec: &EnvSpec, split: Split, n: usize, seed: u64) -> Result<Vec<Episode>> {
    let mut rng = StdRng::seed_from_u64(seed);
    (0..n)
        .map(|_| {
            Ok(Episode::new(
                spec.generate(split, &mut rng)?,
                spec.max_steps(),
            ))
        })
        .collect()
}

/// Runs the policy on `n` episodes of `split` (levels from `seed`) and returns the rates and
/// the finished episodes.
pub fn evaluate(
    model: &Transformer,
    spec: &EnvSpec,
    split: Split,
    n: usize,
    seed: u64,
    hooks: &Hooks,
) -> Result<(Rates, Vec<Episode>)> {
    let mut eps = episodes(spec, split, n, seed)?;
    rollout(model, &mut eps, hooks)?;
    Ok((Rates::of(&eps), eps))
}

/// The planner's own rates on the same episodes (the reference a policy is measured against).
pub fn expert_rates(spec: &EnvSpec, split: Split, n: usize, seed: u64) -> Result<Rates> {
    let mut eps = episodes(spec, split, n, seed)?;
    for e in &mut eps {
        e.run_expert()?;
    }
    Ok(Rates::of(&eps))
}
