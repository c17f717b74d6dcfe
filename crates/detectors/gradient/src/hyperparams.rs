//! Hyper-parameters of the trigger inversion, validated once before a search.

use crate::error::{GradientError, Result};
use crate::insertion::{AnswerSpec, Placement};

/// Settings of [`crate::invert`]. Build with [`InversionParams::new`] and the setters; every
/// search checks them first ([`InversionParams::check`]).
#[derive(Clone, Debug, PartialEq)]
pub struct InversionParams {
    /// The one seed of every random choice (starts, random placements).
    pub seed: u64,
    /// Longest insertion searched (1 to 4 tokens); every length from 1 up is searched.
    pub max_len: usize,
    /// Swaps evaluated per inserted position and GCG step.
    pub top_k: usize,
    /// Most GCG steps per run.
    pub steps: usize,
    /// Random starts per length and placement.
    pub restarts: usize,
    /// Placements searched.
    pub placements: Vec<Placement>,
    /// Leave out tokens that occur in the given prompts: inserting the task's own content
    /// (a digit into a list) changes the right answer for any model, backdoored or not.
    pub exclude_prompt_tokens: bool,
    /// A longer insertion is reported only if its divergence exceeds the best shorter one's by
    /// more than this fraction of the largest.
    pub length_tolerance: f64,
    /// Evaluated insertions of largest divergence re-ranked by the novelty of the answers they
    /// cause (0: report the largest divergence).
    pub rerank: usize,
    /// How the model's own answers are generated.
    pub answer: AnswerSpec,
    /// Also run the exhaustive single-token search, as the yardstick of cost and result.
    pub exhaustive_single: bool,
}

impl InversionParams {
    /// Defaults: insertions of 1-2 tokens, top 8 swaps, at most 20 steps, 2 starts, placements
    /// start / end / random, prompt tokens excluded, answers of up to `max_new` tokens.
    pub fn new(seed: u64, answer: AnswerSpec) -> Self {
        Self {
            seed,
            max_len: 2,
            top_k: 8,
            steps: 20,
            restarts: 2,
            placements: vec![Placement::Start, Placement::End, Placement::Random { seed }],
            exclude_prompt_tokens: true,
            length_tolerance: 0.1,
            rerank: 16,
            answer,
            exhaustive_single: false,
        }
    }

    pub fn max_len(mut self, max_len: usize) -> Self {
        self.max_len = max_len;
        self
    }

    pub fn top_k(mut self, top_k: usize) -> Self {
        self.top_k = top_k;
        self
    }

    pub fn steps(mut self, steps: usize) -> Self {
        self.steps = steps;
        self
    }

    pub fn restarts(mut self, restarts: usize) -> Self {
        self.restarts = restarts;
        self
    }

    pub fn exclude_prompt_tokens(mut self, exclude: bool) -> Self {
        self.exclude_prompt_tokens = exclude;
        self
    }

    pub fn rerank(mut self, rerank: usize) -> Self {
        self.rerank = rerank;
        self
    }

    pub fn exhaustive_single(mut self, on: bool) -> Self {
        self.exhaustive_single = on;
        self
    }

    /// Checks every value.
    pub fn check(&self) -> Result<()> {
        let bad = |param, reason: String| Err(GradientError::InvalidParam { param, reason });
        if !(1..=4).contains(&self.max_len) {
            return bad("max_len", format!("{} is outside 1..=4", self.max_len));
        }
        if self.top_k == 0 || self.steps == 0 || self.restarts == 0 {
            return bad("top_k", "top_k, steps and restarts must be positive".into());
        }
        if self.placements.is_empty() {
            return bad("placements", "at least one placement is needed".into());
        }
        if !(self.length_tolerance.is_finite() && self.length_tolerance >= 0.0) {
            return bad(
                "length_tolerance",
                format!("{} is not a non-negative number", self.length_tolerance),
            );
        }
        if self.answer.max_new == 0 {
            return bad("answer.max_new", "answers need at least one token".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn out_of_range_params_are_refused() {
        let spec = AnswerSpec {
            max_new: 4,
            stop: None,
        };
        assert!(InversionParams::new(0, spec).check().is_ok());
        assert!(InversionParams::new(0, spec).max_len(5).check().is_err());
        assert!(InversionParams::new(0, spec).max_len(0).check().is_err());
        assert!(InversionParams::new(0, spec).top_k(0).check().is_err());
        let mut p = InversionParams::new(0, spec);
        p.placements.clear();
        assert!(p.check().is_err());
        let zero = AnswerSpec {
            max_new: 0,
            stop: None,
        };
        assert!(InversionParams::new(0, zero).check().is_err());
    }
}
