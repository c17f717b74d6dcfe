//! The organism's models and their ground truth: which architecture, trained on what.

use mesa_nn::{
    AttentionKind, Input, InputFront, ModelConfig, StepLog, Targets, TrainConfig, Trainer,
    Transformer,
};
use rand::rngs::StdRng;
use rand::SeedableRng;
use serde::{Deserialize, Serialize};

use crate::config::{ArchTraining, IclConfig};
use crate::error::Result;
use crate::task::{sample_tasks, training_batch, TaskSource};

/// The two architectures of the organism.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Arch {
    /// One layer of linear self-attention, no softmax, MLP or LayerNorm (von Oswald et al.):
    /// token width `d + 1`, one head of width `d + 1`.
    Lsa,
    /// A softmax transformer with MLPs and LayerNorm (Garg et al. 2022), sizes from the config.
    Softmax,
}

impl Arch {
    pub const ALL: [Arch; 2] = [Arch::Lsa, Arch::Softmax];

    pub fn name(self) -> &'static str {
        match self {
            Arch::Lsa => "lsa",
            Arch::Softmax => "softmax",
        }
    }
}

/// Ground truth per model: only `IclTrained` is an in-context optimizer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ModelKind {
    /// A fresh `w` per sequence: the model must solve each task in context.
    IclTrained,
    /// Control (a): the same architecture, untrained.
    RandomInit,
    /// Control (b): trained on one fixed `w`, which it can memorise.
    FixedW,
    /// Control (c): trained on a pool of `M` tasks, which it can recognise.
    FewTasks,
}

impl ModelKind {
    pub const ALL: [ModelKind; 4] = [
        ModelKind::IclTrained,
        ModelKind::RandomInit,
        ModelKind::FixedW,
        ModelKind::FewTasks,
    ];

    pub fn name(self) -> &'static str {
        match self {
            ModelKind::IclTrained => "icl-trained",
            ModelKind::RandomInit => "random-init",
            ModelKind::FixedW => "fixed-w",
            ModelKind::FewTasks => "few-tasks",
        }
    }

    /// The label a detector is scored against.
    pub fn is_mesa_optimizer(self) -> bool {
        self == ModelKind::IclTrained
    }
}

/// A built model with its ground truth and the tasks it was trained on.
#[derive(Clone, Debug)]
pub struct Organism {
    pub arch: Arch,
    pub kind: ModelKind,
    pub seed: u64,
    pub model: Transformer,
    /// The training distribution (`Fresh` for the random-init control, which saw none).
    pub source: TaskSource,
    /// Per-step training log; empty for the random-init control.
    pub log: Vec<StepLog>,
    /// Which initialisation was kept (0 with one restart, and for the random-init control).
    pub restart: usize,
    /// Mean training loss over the last 50 common steps of every restart, in restart order
    /// (empty with one restart).
    pub restart_losses: Vec<f64>,
}

/// The model shape of an architecture for tokens of width `d + 1`.
pub fn model_config(arch: Arch, config: &IclConfig) -> ModelConfig {
    let width = config.task.d + 1;
    match arch {
        Arch::Lsa => ModelConfig {
            preset: "custom".into(),
            input: InputFront::Vectors { dim: width },
            d_out: 1,
            d_model: width,
            n_heads: 1,
            d_head: width,
            n_layers: 1,
            d_mlp: 0,
            max_seq: 0,
            attention: AttentionKind::Linear,
            layer_norm: false,
        },
        Arch::Softmax => {
            let s = &config.softmax_sizes;
            ModelConfig {
                preset: "custom".into(),
                input: InputFront::Vectors { dim: width },
                d_out: 1,
                d_model: s.d_model,
                n_heads: s.n_heads,
                d_head: s.d_model / s.n_heads,
                n_layers: s.n_layers,
                d_mlp: s.d_mlp,
                // The query is always the last token and context order carries no meaning,
                // so the model needs no positional embedding.
                max_seq: 0,
                attention: AttentionKind::Softmax,
                layer_norm: true,
            }
        }
    }
}

/// Optimiser settings of an architecture; `seed` drives the batch order.
pub fn train_config(arch: Arch, config: &IclConfig, seed: u64) -> TrainConfig {
    let a = arch_training(arch, config);
    TrainConfig {
        steps: a.steps,
        batch_size: a.batch_size,
        lr: a.lr,
        warmup_steps: a.warmup_steps,
        // Weight decay would pull the LSA weights away from the GD solution it is meant to find.
        weight_decay: 0.0,
        seed,
        ..TrainConfig::default()
    }
}

/// Builds (and, except for the random-init control, trains) one model. Everything derives
/// from `seed`: the weights, the control's fixed `w` or task pool, and the batches.
///
/// With `restarts > 1` for the architecture, restart `r` starts from the weights of seed
/// `restart_seed(seed, r)` (restart 0 from `seed` itself), all see the same batches, and the
/// one with the lowest mean training loss over the last 50 of the first `restart_steps` steps
/// trains on to `steps`; the kept run is the uninterrupted run from its initialisation. The
/// choice uses training loss only, and every trained kind (the controls too) gets it.
pub fn build(
    arch: Arch,
    kind: ModelKind,
    config: &IclConfig,
    seed: u64,
    show_progress: bool,
) -> Result<Organism> {
    config.validate()?;
    let init = |s: u64| -> Result<Transformer> {
        let mut model = Transformer::new(model_config(arch, config), s)?;
        if arch == Arch::Lsa {
            align_tokens_with_residual(&mut model);
        }
        Ok(model)
    };
    // A separate stream for the control's tasks, so that the controls share the icl-trained
    // model's candidate initial weights for the same seed.
    let mut task_rng = StdRng::seed_from_u64(seed ^ 0x5EED_7A5C);
    let d = config.task.d;
    let source = match kind {
        ModelKind::IclTrained | ModelKind::RandomInit => TaskSource::Fresh,
        ModelKind::FixedW => TaskSource::fixed(d, &mut task_rng),
        ModelKind::FewTasks => TaskSource::pool(d, config.controls.pool_size, &mut task_rng),
    };
    if kind == ModelKind::RandomInit {
        return Ok(Organism {
            arch,
            kind,
            seed,
            model: init(seed)?,
            source,
            log: Vec::new(),
            restart: 0,
            restart_losses: Vec::new(),
        });
    }
    let a = arch_training(arch, config);
    let tc = train_config(arch, config, seed.wrapping_add(1));
    let restarts = a.restarts.max(1);
    let common = if restarts > 1 {
        a.restart_steps.min(tc.steps)
    } else {
        tc.steps
    };
    let bar = progress(show_progress, restarts * common + (tc.steps - common));
    let mut runs = (0..restarts)
        .map(|r| Run::new(init(restart_seed(seed, r))?, &tc))
        .collect::<Result<Vec<Run>>>()?;
    for run in &mut runs {
        run.train(common, config, &source, &bar)?;
    }
    let restart_losses: Vec<f64> = runs.iter().map(Run::tail_loss).collect();
    let restart = if restarts > 1 {
        // The first of the lowest; a NaN never wins (training stops at a non-finite loss).
        (0..restarts)
            .min_by(|&i, &j| restart_losses[i].total_cmp(&restart_losses[j]))
            .unwrap_or(0)
    } else {
        0
    };
    let mut run = runs.swap_remove(restart);
    run.train(tc.steps - common, config, &source, &bar)?;
    bar.finish_and_clear();
    Ok(Organism {
        arch,
        kind,
        seed,
        model: run.model,
        source,
        log: run.log,
        restart,
        restart_losses: if restarts > 1 {
            restart_losses
        } else {
            Vec::new()
        },
    })
}

/// The weight seed of restart `r` of the model of `seed`: `seed` itself for restart 0.
pub fn restart_seed(seed: u64, r: usize) -> u64 {
    if r == 0 {
        seed
    } else {
        seed ^ (r as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)
    }
}

fn arch_training(arch: Arch, config: &IclConfig) -> &ArchTraining {
    match arch {
        Arch::Lsa => &config.lsa,
        Arch::Softmax => &config.softmax,
    }
}

fn progress(show: bool, steps: usize) -> indicatif::ProgressBar {
    if !show {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new(steps as u64);
    if let Ok(style) =
        indicatif::ProgressStyle::with_template("{bar:30} {pos}/{len} steps {elapsed}<{eta}")
    {
        bar.set_style(style);
    }
    bar
}

/// One training run in progress: a model, its optimiser, its batch stream and its log. Driven
/// in pieces, it takes exactly the steps `mesa_nn::train` would take in one go.
struct Run {
    model: Transformer,
    trainer: Trainer,
    rng: StdRng,
    batch: usize,
    log: Vec<StepLog>,
}

impl Run {
    fn new(model: Transformer, tc: &TrainConfig) -> Result<Self> {
        Ok(Self {
            trainer: Trainer::new(&model, tc.clone())?,
            model,
            rng: StdRng::seed_from_u64(tc.seed),
            batch: tc.batch_size,
            log: Vec::with_capacity(tc.steps),
        })
    }

    fn train(
        &mut self,
        steps: usize,
        config: &IclConfig,
        source: &TaskSource,
        bar: &indicatif::ProgressBar,
    ) -> Result<()> {
        for _ in 0..steps {
            let (input, targets) = self.next_batch(config, source)?;
            let entry = self.trainer.step(&mut self.model, &input, &targets)?;
            self.log.push(entry);
            bar.inc(1);
        }
        Ok(())
    }

    fn next_batch(&mut self, config: &IclConfig, source: &TaskSource) -> Result<(Input, Targets)> {
        let tasks = sample_tasks(
            &config.task,
            source,
            self.batch,
            config.task.n_context,
            &mut self.rng,
        );
        training_batch(&tasks)
    }

    /// Mean training loss over the last (up to) 50 steps.
    fn tail_loss(&self) -> f64 {
        let tail = &self.log[self.log.len().saturating_sub(50)..];
        tail.iter().map(|s| f64::from(s.loss)).sum::<f64>() / tail.len().max(1) as f64
    }
}

/// Sets the LSA model's embedding to the identity and its unembedding to "read the
/// y-coordinate", as in von Oswald et al., whose tokens are the residual stream. With mesa-nn's
/// default small random embedding the six-matrix product from input to output sits on a
/// plateau and one-step-GD loss is not reached in a CPU-sized budget; with this start it is.
/// The attention weights keep their random initialisation, and the random-init control gets
/// the same start, so the control is "this architecture before training".
pub fn align_tokens_with_residual(model: &mut Transformer) {
    let width = model.config().d_model;
    let y_coord = width - 1;
    model.visit_params_mut(&mut |name, mut p| {
        let n = p.values().len();
        let values: Vec<f32> = match name {
            "embed.W_in" => (0..n)
                .map(|i| if i / width == i % width { 1.0 } else { 0.0 })
                .collect(),
            "unembed.W_U" => (0..n)
                .map(|i| if i == y_coord { 1.0 } else { 0.0 })
                .collect(),
            _ => return,
        };
        p.set_values(&values);
    });
}
