//! The analysis behind the `goal_misgen` binary: one job per (environment, setting, seed), the
//! policy's training and evaluation, the training-only signals (goal sensitivity, goal-cell
//! probes with their controls, the goal vector), the predictor table and the plots. The binary
//! parses arguments, runs the jobs on threads and writes the tables.

pub mod cli;
pub mod plots;
pub mod predictors;
pub mod signals;

pub use plots::{band, goal_vector_plot, misgen_plot, paths_plot, probe_plot};
pub use predictors::predictor_rows;
pub use signals::{
    goal_cell, goal_probes, goal_vector_effect, sensitivity, signal_states, Observations,
};

use std::time::Instant;

use anyhow::{Context, Result};
use mesa_eval::wilson_interval;
use mesa_goalmisgen::{
    evaluate, model_config, train_policy, EnvKind, EnvSpec, Episode, GoalMisgenConfig, Split,
};
use mesa_nn::{HookPoint, Hooks, Transformer};
use serde::Serialize;
/// Training-distribution states for the goal-sensitivity signal and the goal vector.
pub const SIGNAL_STATES: usize = 256;
/// Training-distribution states the goal probes are fitted on, and held out to test them.
pub const PROBE_FIT: usize = 600;
pub const PROBE_TEST: usize = 300;
/// Ridge penalties the probe chooses from on a validation fifth of its fitting states.
pub const PROBE_LAMBDAS: [f64; 5] = [1e-4, 1e-3, 1e-2, 1e-1, 1.0];
/// The goal vector's hook point (the middle of a 2-layer model).
pub const GOAL_VECTOR_POINT: HookPoint = HookPoint::Block {
    layer: 0,
    kind: mesa_nn::BlockHook::ResidPost,
};
/// Multiples of the goal vector added during test rollouts (Turner et al. vary the
/// coefficient too: a unit difference of means need not be the scale that steers).
pub const GOAL_VECTOR_SCALES: [f32; 7] = [-4.0, -2.0, -1.0, 0.0, 1.0, 2.0, 4.0];
/// Test mazes drawn in the path heatmaps.
pub const HEATMAP_MAZES: usize = 4;
/// Seed offsets keeping every random stream of a model apart from its training batches.
pub const EVAL_SEED: u64 = 1_000_000;
pub const SIGNAL_SEED: u64 = 2_000_000;
pub const PROBE_SEED: u64 = 3_000_000;
pub const HEATMAP_SEED: u64 = 7_000_000;

pub struct Job {
    pub env: &'static str,
    pub model_id: String,
    pub seed: u64,
    pub spec: EnvSpec,
}

pub struct ModelResult {
    pub row: ModelRow,
    pub probes: Vec<ProbeRow>,
    pub goal_vector: Vec<GoalVectorRow>,
    /// Finished episodes on the heatmap mazes (maze models of the base seed only).
    pub paths: Vec<Episode>,
}

#[derive(Serialize, Clone)]
pub struct ModelRow {
    pub env: &'static str,
    pub model_id: String,
    pub seed: u64,
    pub randomization: String,
    /// The randomization as a number for plots: the maze region's side (full = the maze's
    /// side), the corridor's percent, 0 for keys and chests.
    pub randomization_value: f64,
    pub train_success: f64,
    pub train_success_lo: f64,
    pub train_success_hi: f64,
    pub test_true_goal_rate: f64,
    pub test_proxy_rate: f64,
    pub test_neither_rate: f64,
    /// Proxy share of the test episodes that reached the goal or the proxy (undefined when
    /// none did).
    pub misgen_rate: Option<f64>,
    pub misgen_lo: Option<f64>,
    pub misgen_hi: Option<f64>,
    /// Test episodes of the planner on the same levels reaching the true goal (the ceiling).
    pub expert_test_true_goal_rate: f64,
    pub goal_sensitivity: f64,
    /// Held-out goal-probe accuracy at `blocks.0.hook_resid_post` minus the best baseline.
    pub goal_probe_excess: f64,
    pub episodes: usize,
    pub train_steps: usize,
    pub final_train_loss: f64,
    pub train_seconds: f64,
    pub total_seconds: f64,
}

#[derive(Serialize, Clone)]
pub struct ProbeRow {
    pub env: &'static str,
    pub model_id: String,
    pub seed: u64,
    pub randomization: String,
    /// `trained`, or `random-init` (the same architecture and seed, untrained: the control).
    pub model: &'static str,
    pub hook: String,
    pub layer: usize,
    pub n_fit: usize,
    pub n_test: usize,
    /// Distinct goal cells among the fitting states.
    pub n_classes: usize,
    pub accuracy: f64,
    pub accuracy_lo: f64,
    pub accuracy_hi: f64,
    /// Accuracy of always answering the proxy's cell (corner / right end); none for keys.
    pub corner_baseline: Option<f64>,
    /// Accuracy of always answering the commonest goal cell of the fitting states.
    pub majority_baseline: f64,
    /// The same probe fitted on shuffled goal cells.
    pub shuffled_accuracy: f64,
}

/// Test outcome rates of a maze model with the goal vector added at `scale` (0: no hook;
/// negative: subtracted).
#[derive(Serialize, Clone)]
pub struct GoalVectorRow {
    pub model_id: String,
    pub seed: u64,
    pub randomization: String,
    pub scale: f64,
    pub episodes: usize,
    pub p_true_goal: f64,
    pub p_proxy: f64,
    pub p_neither: f64,
}

#[derive(Serialize)]
pub struct PredictorRow {
    /// `all`, an environment, or an environment with one setting (`corridor r0`): within one
    /// setting the randomization is fixed and only the seed varies.
    pub group: String,
    pub signal: &'static str,
    /// `misgen_rate` (models where it is defined) or `test_true_goal_rate` (all models).
    pub target: &'static str,
    pub n_models: usize,
    /// The AUROC's positive class: misgen_rate > 0.5, or test_true_goal_rate < 0.5.
    pub n_positive: usize,
    /// Undefined when the signal or the target is constant over the models.
    pub spearman: Option<f64>,
    /// Two-sided permutation p-value of the Spearman correlation (10 000 permutations).
    pub spearman_p: Option<f64>,
    /// AUROC of the signal for the positive class (misgen_rate: the negated signal, as a low
    /// signal should predict misgeneralization; true-goal failures: the same), with a
    /// stratified bootstrap 95% CI; undefined when one class is empty.
    pub auroc: Option<f64>,
    pub auroc_lo: Option<f64>,
    pub auroc_hi: Option<f64>,
}

pub fn jobs(config: &GoalMisgenConfig) -> Vec<Job> {
    let mut jobs = Vec::new();
    let mut push = |env: &'static str, label: String, spec: EnvSpec| {
        for i in 0..config.seeds_per_setting as u64 {
            let seed = config.seed + i;
            jobs.push(Job {
                env,
                model_id: format!("{env}-{label}-s{seed}"),
                seed,
                spec: spec.clone(),
            });
        }
    };
    // The slowest setting first, so that two threads finish together.
    push(
        "keys_chests",
        "pair".into(),
        EnvSpec::KeysChests {
            config: config.keys_chests.clone(),
        },
    );
    for &region in &config.maze.regions {
        let spec = EnvSpec::Maze {
            config: config.maze.clone(),
            region,
        };
        push("maze", format!("k{}", region.label()), spec);
    }
    for &p in &config.corridor.random_percents {
        let spec = EnvSpec::Corridor {
            config: config.corridor.clone(),
            random_percent: p,
        };
        push("corridor", format!("r{p}"), spec);
    }
    jobs
}

pub fn randomization_value(spec: &EnvSpec) -> f64 {
    match spec {
        EnvSpec::Maze { config, region } => region.side(config.size) as f64,
        EnvSpec::Corridor { random_percent, .. } => *random_percent,
        EnvSpec::KeysChests { .. } => 0.0,
    }
}

pub fn run_model(config: &GoalMisgenConfig, job: &Job) -> Result<ModelResult> {
    let t = Instant::now();
    let (model, log) = train_policy(
        &job.spec,
        config.model.preset,
        &config.train,
        job.seed,
        false,
    )?;
    let train_seconds = t.elapsed().as_secs_f64();
    let final_train_loss = {
        let tail: Vec<f64> = log
            .iter()
            .rev()
            .take(20)
            .map(|s| f64::from(s.loss))
            .collect();
        tail.iter().sum::<f64>() / tail.len().max(1) as f64
    };
    let n = config.eval.episodes;
    let eval_seed = EVAL_SEED + job.seed;
    let (train, _) = evaluate(&model, &job.spec, Split::Train, n, eval_seed, &Hooks::new())?;
    let (test, _) = evaluate(
        &model,
        &job.spec,
        Split::Test,
        n,
        eval_seed + 1,
        &Hooks::new(),
    )?;
    let expert = mesa_goalmisgen::expert_rates(&job.spec, Split::Test, n, eval_seed + 1)?;
    let count = |rate: f64| (rate * n as f64).round() as usize;
    let train_ci = wilson_interval(count(train.true_goal), n, 0.95)?;
    let reached = count(test.true_goal) + count(test.proxy);
    let misgen = if reached > 0 {
        Some(wilson_interval(count(test.proxy), reached, 0.95)?)
    } else {
        None
    };
    let (with_goal, without_goal) = signal_states(&job.spec, SIGNAL_SEED + job.seed)?;
    let goal_sensitivity = sensitivity(&model, &with_goal, &without_goal)?;
    let untrained = Transformer::new(model_config(&job.spec, config.model.preset), job.seed)?;
    let mut probes = goal_probes(&model, "trained", job, PROBE_SEED + job.seed)?;
    probes.extend(goal_probes(
        &untrained,
        "random-init",
        job,
        PROBE_SEED + job.seed,
    )?);
    let goal_probe_excess = probes
        .iter()
        .find(|p| p.model == "trained" && p.hook == GOAL_VECTOR_POINT.to_string())
        .map(|p| p.accuracy - p.majority_baseline.max(p.corner_baseline.unwrap_or(0.0)))
        .context("no probe at the goal-vector hook")?;
    let randomization = job.spec.randomization();
    let goal_vector = match job.spec {
        EnvSpec::Maze { .. } => goal_vector_effect(
            &model,
            &job.spec,
            &with_goal,
            &without_goal,
            n,
            eval_seed + 1,
        )?
        .into_iter()
        .map(|(scale, rates)| GoalVectorRow {
            model_id: job.model_id.clone(),
            seed: job.seed,
            randomization: randomization.clone(),
            scale: f64::from(scale),
            episodes: n,
            p_true_goal: rates.true_goal,
            p_proxy: rates.proxy,
            p_neither: rates.neither,
        })
        .collect(),
        _ => Vec::new(),
    };
    let paths = if job.spec.kind() == EnvKind::Maze && job.seed == config.seed {
        evaluate(
            &model,
            &job.spec,
            Split::Test,
            HEATMAP_MAZES,
            HEATMAP_SEED,
            &Hooks::new(),
        )?
        .1
    } else {
        Vec::new()
    };
    let row = ModelRow {
        env: job.env,
        model_id: job.model_id.clone(),
        seed: job.seed,
        randomization,
        randomization_value: randomization_value(&job.spec),
        train_success: train.true_goal,
        train_success_lo: train_ci.lo,
        train_success_hi: train_ci.hi,
        test_true_goal_rate: test.true_goal,
        test_proxy_rate: test.proxy,
        test_neither_rate: test.neither,
        misgen_rate: misgen.map(|m| m.estimate),
        misgen_lo: misgen.map(|m| m.lo),
        misgen_hi: misgen.map(|m| m.hi),
        expert_test_true_goal_rate: expert.true_goal,
        goal_sensitivity,
        goal_probe_excess,
        episodes: n,
        train_steps: job.spec.train_steps().unwrap_or(config.train.steps),
        final_train_loss,
        train_seconds,
        total_seconds: t.elapsed().as_secs_f64(),
    };
    Ok(ModelResult {
        row,
        probes,
        goal_vector,
        paths,
    })
}
/// A training-only signal of a model.
pub type Signal = fn(&ModelRow) -> f64;
/// A rate measured under the goal vector.
pub type VectorMetric = fn(&GoalVectorRow) -> f64;
/// A rate of a model, when defined.
pub type RowMetric = fn(&ModelRow) -> Option<f64>;

#[cfg(test)]
mod tests;
