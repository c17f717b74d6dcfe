//! The organism's models and their ground truth: which architecture, trained on what.

use mesa_nn::{train, AttentionKind, InputFront, ModelConfig, StepLog, TrainConfig, Transformer};
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
    let a: &ArchTraining = match arch {
        Arch::Lsa => &config.lsa,
        Arch::Softmax => &config.softmax,
    };
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
pub fn build(
    arch: Arch,
    kind: ModelKind,
    config: &IclConfig,
    seed: u64,
    show_progress: bool,
) -> Result<Organism> {
    config.validate()?;
    let mut model = Transformer::new(model_config(arch, config), seed)?;
    if arch == Arch::Lsa {
        align_tokens_with_residual(&mut model);
    }
    // A separate stream for the control's tasks, so that the controls share the icl-trained
    // model's initial weights for the same seed.
    let mut task_rng = StdRng::seed_from_u64(seed ^ 0x5EED_7A5C);
    let d = config.task.d;
    let source = match kind {
        ModelKind::IclTrained | ModelKind::RandomInit => TaskSource::Fresh,
        ModelKind::FixedW => TaskSource::fixed(d, &mut task_rng),
        ModelKind::FewTasks => TaskSource::pool(d, config.controls.pool_size, &mut task_rng),
    };
    let log = if kind == ModelKind::RandomInit {
        Vec::new()
    } else {
        let tc = train_config(arch, config, seed.wrapping_add(1));
        let (task_config, n) = (&config.task, config.task.n_context);
        let batch = tc.batch_size;
        let src = source.clone();
        train(
            &mut model,
            &tc,
            move |rng, _| {
                let tasks = sample_tasks(task_config, &src, batch, n, rng);
                training_batch(&tasks).map_err(|e| match e {
                    crate::IclError::Nn(e) => e,
                    other => mesa_nn::NnError::InvalidInput(other.to_string()),
                })
            },
            show_progress,
        )?
    };
    Ok(Organism {
        arch,
        kind,
        seed,
        model,
        source,
        log,
    })
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
