//! One training loop for every organism: AdamW, warm-up + cosine schedule, global-norm
//! gradient clipping, loss masks, seeded batches, a progress bar and a per-step log.

use dfdx::prelude::*;
use indicatif::{ProgressBar, ProgressStyle};
use ndarray::{Array2, Array3};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use serde::{Deserialize, Serialize};

use crate::cross_entropy::weighted_cross_entropy;
use crate::error::{NnError, Result};
use crate::kernels::{kernel_threads, with_kernel_threads};
use crate::model::{Input, TapedLogits, TapedScalar, Transformer};

/// Optimiser and schedule settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrainConfig {
    pub steps: usize,
    pub batch_size: usize,
    /// Peak learning rate, reached after `warmup_steps`.
    pub lr: f32,
    pub warmup_steps: usize,
    /// The cosine schedule decays to `lr * min_lr_ratio` at the last step.
    pub min_lr_ratio: f32,
    /// Decoupled (AdamW) weight decay, applied to matrices only (not to biases or gains).
    pub weight_decay: f32,
    pub beta1: f32,
    pub beta2: f32,
    pub eps: f32,
    /// Gradients are rescaled so that their global L2 norm is at most this; 0 disables.
    pub grad_clip: f32,
    /// Seeds the batch order (weights are seeded when the model is built).
    pub seed: u64,
}

impl Default for TrainConfig {
    fn default() -> Self {
        Self {
            steps: 1000,
            batch_size: 64,
            lr: 3e-3,
            warmup_steps: 50,
            min_lr_ratio: 0.1,
            weight_decay: 0.01,
            beta1: 0.9,
            beta2: 0.98,
            eps: 1e-8,
            grad_clip: 1.0,
            seed: 0,
        }
    }
}

impl TrainConfig {
    pub fn validate(&self) -> Result<()> {
        let bad = |field: &'static str, reason: &str| {
            Err(NnError::InvalidTrainConfig {
                field,
                reason: reason.into(),
            })
        };
        if self.steps == 0 {
            return bad("steps", "must be positive");
        }
        if self.batch_size == 0 {
            return bad("batch_size", "must be positive");
        }
        if !(self.lr.is_finite() && self.lr > 0.0) {
            return bad("lr", "must be a positive number");
        }
        if !(0.0..=1.0).contains(&self.min_lr_ratio) {
            return bad("min_lr_ratio", "must be in [0, 1]");
        }
        if !(0.0..1.0).contains(&self.beta1) || !(0.0..1.0).contains(&self.beta2) {
            return bad("beta1/beta2", "must be in [0, 1)");
        }
        if self.weight_decay < 0.0 || self.grad_clip < 0.0 || self.eps <= 0.0 {
            return bad(
                "weight_decay/grad_clip/eps",
                "must be non-negative (eps positive)",
            );
        }
        Ok(())
    }

    /// Learning rate at `step` (0-based): linear warm-up, then cosine decay.
    pub fn lr_at(&self, step: usize) -> f32 {
        let step = step.min(self.steps.saturating_sub(1));
        if step < self.warmup_steps {
            return self.lr * (step + 1) as f32 / self.warmup_steps as f32;
        }
        let span = (self.steps - self.warmup_steps).max(1) as f32;
        let progress = ((step - self.warmup_steps) as f32 / span).min(1.0);
        let cosine = 0.5 * (1.0 + (std::f32::consts::PI * progress).cos());
        self.lr * (self.min_lr_ratio + (1.0 - self.min_lr_ratio) * cosine)
    }
}

/// What the model is trained to output, with a weight per position (0 = not trained on).
#[derive(Clone, Debug, PartialEq)]
pub enum Targets {
    /// Cross-entropy: class `ids[b, p]` at position `p` (the next token, or an action).
    Classes {
        ids: Array2<usize>,
        weights: Array2<f32>,
    },
    /// Mean squared error against `values[b, p, :]`.
    Values {
        values: Array3<f32>,
        weights: Array2<f32>,
    },
}

/// One logged training step; kept in the checkpoint for the training-dynamics detector.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StepLog {
    pub step: usize,
    pub loss: f32,
    /// Global L2 norm of the gradient before clipping.
    pub grad_norm: f32,
    pub lr: f32,
}

/// A token sequence with the positions the loss counts.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct TokenExample {
    pub tokens: Vec<usize>,
    /// `train_on[t]`: whether predicting `tokens[t]` from `tokens[..t]` is in the loss
    /// (true on response tokens only). Same length as `tokens`; `train_on[0]` is ignored.
    pub train_on: Vec<bool>,
}

/// Turns token examples into a padded next-token batch.
pub fn token_batch(examples: &[&TokenExample], pad_id: usize) -> Result<(Input, Targets)> {
    let seq = examples.iter().map(|e| e.tokens.len()).max().unwrap_or(0);
    if examples.is_empty() || seq < 2 {
        return Err(NnError::InvalidInput(
            "a batch needs sequences of length >= 2".into(),
        ));
    }
    let b = examples.len();
    let mut inputs = Array2::from_elem((b, seq - 1), pad_id);
    let mut ids = Array2::from_elem((b, seq - 1), pad_id);
    let mut weights = Array2::zeros((b, seq - 1));
    for (i, e) in examples.iter().enumerate() {
        if e.train_on.len() != e.tokens.len() {
            return Err(NnError::InvalidInput(format!(
                "example {i}: train_on has {} entries for {} tokens",
                e.train_on.len(),
                e.tokens.len()
            )));
        }
        for t in 0..e.tokens.len() - 1 {
            inputs[[i, t]] = e.tokens[t];
            ids[[i, t]] = e.tokens[t + 1];
            weights[[i, t]] = if e.train_on[t + 1] { 1.0 } else { 0.0 };
        }
    }
    Ok((Input::Tokens(inputs), Targets::Classes { ids, weights }))
}

/// Samples seeded batches from a fixed set of token examples (an epoch-free shuffle: each
/// batch is drawn without replacement, batches independently).
pub fn token_sampler(
    examples: Vec<TokenExample>,
    batch_size: usize,
    pad_id: usize,
) -> impl FnMut(&mut StdRng, usize) -> Result<(Input, Targets)> {
    move |rng, _step| {
        let chosen: Vec<&TokenExample> = examples
            .choose_multiple(rng, batch_size.min(examples.len()))
            .collect();
        token_batch(&chosen, pad_id)
    }
}

/// The training loss of a batch, as a taped scalar: weighted mean over positions.
pub fn loss_on(logits: TapedLogits, targets: &Targets) -> Result<TapedScalar> {
    let dev = logits.device().clone();
    let (b, s, v) = *logits.shape();
    let (weights, total) = match targets {
        Targets::Classes { weights, .. } | Targets::Values { weights, .. } => {
            (weights, weights.sum())
        }
    };
    if weights.dim() != (b, s) {
        return Err(NnError::InvalidInput(format!(
            "target weights have shape {:?}, logits are [{b}, {s}, _]",
            weights.dim()
        )));
    }
    if total <= 0.0 {
        return Err(NnError::InvalidInput(
            "the batch has no position to train on".into(),
        ));
    }
    let w: Vec<f32> = weights.iter().map(|w| w / total).collect();
    match targets {
        Targets::Classes { ids, .. } => {
            if ids.dim() != (b, s) {
                return Err(NnError::InvalidInput(format!(
                    "target ids have shape {:?}, logits are [{b}, {s}, _]",
                    ids.dim()
                )));
            }
            if let Some(&bad) = ids.iter().find(|&&id| id >= v) {
                return Err(NnError::InvalidInput(format!(
                    "target class {bad} is outside the output width {v}"
                )));
            }
            let ids: Vec<usize> = ids.iter().copied().collect();
            Ok(weighted_cross_entropy(logits, &ids, &w))
        }
        Targets::Values { values, .. } => {
            if values.dim() != (b, s, v) {
                return Err(NnError::InvalidInput(format!(
                    "target values have shape {:?}, outputs are [{b}, {s}, {v}]",
                    values.dim()
                )));
            }
            let y: Tensor<(usize, usize), f32, Cpu> =
                dev.tensor_from_vec(values.iter().copied().collect(), (b * s, v));
            let sq = (logits.reshape_like(&(b * s, v)) - y)
                .square()
                .sum::<(usize,), Axis<1>>();
            let w: Tensor<(usize,), f32, Cpu> = dev.tensor_from_vec(w, (b * s,));
            Ok((sq * w).sum::<(), _>())
        }
    }
}

/// Forward and backward pass of one batch: the loss value and the gradients of every
/// parameter (and every intermediate tensor) of `model`.
pub fn loss_and_gradients(
    model: &Transformer,
    input: &Input,
    targets: &Targets,
) -> Result<(f32, Gradients<f32, Cpu>)> {
    let logits = model.forward_for_training(input)?;
    let loss = loss_on(logits, targets)?;
    let value = loss.array();
    Ok((value, loss.backward()))
}

/// Optimiser state across steps; [`train`] drives one, and code that interleaves training
/// with evaluation (safety-training curves) can drive one directly.
pub struct Trainer {
    config: TrainConfig,
    optimizer: AdamW,
    step: usize,
}

impl Trainer {
    pub fn new(model: &Transformer, config: TrainConfig) -> Result<Self> {
        config.validate()?;
        Ok(Self {
            optimizer: AdamW::new(model),
            config,
            step: 0,
        })
    }

    /// Steps taken so far.
    pub fn steps_done(&self) -> usize {
        self.step
    }

    /// One optimiser step on one batch. A NaN or infinite loss or gradient is an error naming
    /// the step, and leaves the model as it was.
    ///
    /// Where products may use several threads, the step runs on a worker of rayon's global
    /// pool: a product's second thread is then the pool's other worker, and no third thread
    /// (the caller, waiting) competes with the two for the cores between products.
    pub fn step(
        &mut self,
        model: &mut Transformer,
        input: &Input,
        targets: &Targets,
    ) -> Result<StepLog> {
        let threads = kernel_threads();
        if threads > 1 && rayon::current_thread_index().is_none() {
            return rayon::scope(|_| {
                with_kernel_threads(threads, || self.step_here(model, input, targets))
            });
        }
        self.step_here(model, input, targets)
    }

    fn step_here(
        &mut self,
        model: &mut Transformer,
        input: &Input,
        targets: &Targets,
    ) -> Result<StepLog> {
        let step = self.step;
        let (loss, mut grads) = loss_and_gradients(model, input, targets)?;
        if !loss.is_finite() {
            return Err(NnError::NonFiniteLoss { step, loss });
        }
        let lr = self.config.lr_at(step);
        let grad_norm = self.optimizer.step(model, &mut grads, &self.config, lr);
        if !grad_norm.is_finite() {
            return Err(NnError::NonFiniteLoss {
                step,
                loss: grad_norm,
            });
        }
        self.step += 1;
        Ok(StepLog {
            step,
            loss,
            grad_norm,
            lr,
        })
    }
}

/// Something that watches a training run step by step: it sees what a trainer has (the step's
/// log, and the model right after the step) and may stop the run with an error. An online
/// training-dynamics monitor is one.
pub trait TrainObserver {
    /// Called after every optimiser step.
    ///
    /// # Errors
    /// Whatever the observer reports; training stops with it.
    fn observe(&mut self, model: &Transformer, log: &StepLog) -> Result<()>;
}

/// The observer that watches nothing.
pub struct NoObserver;

impl TrainObserver for NoObserver {
    fn observe(&mut self, _model: &Transformer, _log: &StepLog) -> Result<()> {
        Ok(())
    }
}

/// Trains `model` in place for `config.steps` steps. `next_batch(rng, step)` draws each batch
/// from an rng seeded with `config.seed`. Stops with [`NnError::NonFiniteLoss`] at the first NaN
/// or infinite loss or gradient.
pub fn train(
    model: &mut Transformer,
    config: &TrainConfig,
    next_batch: impl FnMut(&mut StdRng, usize) -> Result<(Input, Targets)>,
    show_progress: bool,
) -> Result<Vec<StepLog>> {
    train_observed(model, config, next_batch, &mut NoObserver, show_progress)
}

/// [`train`] with an observer called after every step (the same batches, the same numbers).
///
/// # Errors
/// As [`train`], and the observer's own error.
pub fn train_observed(
    model: &mut Transformer,
    config: &TrainConfig,
    mut next_batch: impl FnMut(&mut StdRng, usize) -> Result<(Input, Targets)>,
    observer: &mut dyn TrainObserver,
    show_progress: bool,
) -> Result<Vec<StepLog>> {
    let mut trainer = Trainer::new(model, config.clone())?;
    let mut rng = StdRng::seed_from_u64(config.seed);
    let bar = if show_progress {
        let bar = ProgressBar::new(config.steps as u64);
        bar.set_style(
            ProgressStyle::with_template("{bar:30} {pos}/{len} steps {elapsed}<{eta} {msg}")
                .expect("static template"),
        );
        bar
    } else {
        ProgressBar::hidden()
    };
    let mut log = Vec::with_capacity(config.steps);
    for step in 0..config.steps {
        let (input, targets) = next_batch(&mut rng, step)?;
        let entry = match trainer.step(model, &input, &targets) {
            Ok(entry) => entry,
            Err(e) => {
                bar.abandon();
                return Err(e);
            }
        };
        if step % 20 == 0 {
            bar.set_message(format!("loss {:.4}", entry.loss));
        }
        if let Err(e) = observer.observe(model, &entry) {
            bar.abandon();
            return Err(e);
        }
        log.push(entry);
        bar.inc(1);
    }
    bar.finish_and_clear();
    Ok(log)
}

/// AdamW state: first and second moments per parameter, in visiting order.
struct AdamW {
    m: Vec<Vec<f32>>,
    v: Vec<Vec<f32>>,
    t: i32,
}

impl AdamW {
    fn new(model: &Transformer) -> Self {
        let sizes: Vec<usize> = model
            .named_params()
            .iter()
            .map(|(_, _, v)| v.len())
            .collect();
        Self {
            m: sizes.iter().map(|&n| vec![0.0; n]).collect(),
            v: sizes.iter().map(|&n| vec![0.0; n]).collect(),
            t: 0,
        }
    }

    /// Clips and applies one update; returns the gradient norm before clipping.
    fn step(
        &mut self,
        model: &mut Transformer,
        grads: &mut Gradients<f32, Cpu>,
        c: &TrainConfig,
        lr: f32,
    ) -> f32 {
        let mut all = Vec::new();
        model.visit_params_mut(&mut |_, p| all.push(p.gradient(grads)));
        let norm = all
            .iter()
            .flatten()
            .map(|g| (*g as f64) * (*g as f64))
            .sum::<f64>()
            .sqrt() as f32;
        if !norm.is_finite() {
            return norm;
        }
        let scale = if c.grad_clip > 0.0 && norm > c.grad_clip {
            c.grad_clip / norm
        } else {
            1.0
        };
        self.t += 1;
        let bc1 = 1.0 - c.beta1.powi(self.t);
        let bc2 = 1.0 - c.beta2.powi(self.t);
        let mut i = 0;
        let (ms, vs) = (&mut self.m, &mut self.v);
        model.visit_params_mut(&mut |_, mut p| {
            let decay = if p.dims().len() == 2 {
                c.weight_decay
            } else {
                0.0
            };
            let mut w = p.values();
            let (m, v, g) = (&mut ms[i], &mut vs[i], &all[i]);
            for j in 0..w.len() {
                let gj = g[j] * scale;
                m[j] = c.beta1 * m[j] + (1.0 - c.beta1) * gj;
                v[j] = c.beta2 * v[j] + (1.0 - c.beta2) * gj * gj;
                let update = (m[j] / bc1) / ((v[j] / bc2).sqrt() + c.eps);
                w[j] -= lr * (update + decay * w[j]);
            }
            p.set_values(&w);
            i += 1;
        });
        norm
    }
}
