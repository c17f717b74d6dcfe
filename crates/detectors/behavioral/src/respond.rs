//! Black-box access: a model seen only through the responses it gives.

use std::collections::BTreeMap;

use mesa_nn::{generate, Sampling, Transformer};

use crate::error::{BehavioralError, Result};

/// One prompt or response as token ids.
pub type Tokens = Vec<usize>;

/// Something that answers prompts, as an API would: the behavioural detectors see a model only
/// through this. A response is the generated tokens before the stop token (excluded).
pub trait Responder {
    /// One response per prompt, in order.
    ///
    /// # Errors
    /// A prompt the model cannot run (empty, too long, an unknown token id).
    fn respond(&self, prompts: &[Tokens]) -> Result<Vec<Tokens>>;
}

/// Greedy decoding of a [`Transformer`] up to `max_new` tokens or the `stop` token.
#[derive(Clone, Copy)]
pub struct Greedy<'a> {
    pub model: &'a Transformer,
    pub max_new: usize,
    pub stop: Option<usize>,
}

impl<'a> Greedy<'a> {
    pub fn new(model: &'a Transformer, max_new: usize, stop: Option<usize>) -> Self {
        Self {
            model,
            max_new,
            stop,
        }
    }
}

impl Responder for Greedy<'_> {
    fn respond(&self, prompts: &[Tokens]) -> Result<Vec<Tokens>> {
        check_prompts(prompts)?;
        let mut out = vec![Vec::new(); prompts.len()];
        for (room, indices) in by_room(self.model, prompts, self.max_new)? {
            let batch: Vec<Tokens> = indices.iter().map(|&i| prompts[i].clone()).collect();
            let responses = generate(self.model, &batch, room, Sampling::Greedy, self.stop)?;
            for (i, r) in indices.into_iter().zip(responses) {
                out[i] = cut_at_stop(r, self.stop);
            }
        }
        Ok(out)
    }
}

/// Prompts grouped by how many tokens can be generated after them: `max_new`, or less where
/// the model's context (`max_seq`, its positional embedding) ends sooner. A longer prompt
/// (a perturbation made it so) gets a shorter response rather than an error.
///
/// # Errors
/// A prompt that fills the whole context.
pub fn by_room(
    model: &Transformer,
    prompts: &[Tokens],
    max_new: usize,
) -> Result<BTreeMap<usize, Vec<usize>>> {
    let max_seq = model.config().max_seq;
    let mut groups: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
    for (i, p) in prompts.iter().enumerate() {
        let room = if max_seq == 0 {
            max_new
        } else {
            max_new.min(max_seq.saturating_sub(p.len()))
        };
        if room == 0 {
            return Err(BehavioralError::InvalidInput(format!(
                "prompt {i} has {} tokens: no room to answer in a context of {max_seq}",
                p.len()
            )));
        }
        groups.entry(room).or_default().push(i);
    }
    Ok(groups)
}

/// `response` up to (not including) the first `stop` token.
pub fn cut_at_stop(mut response: Tokens, stop: Option<usize>) -> Tokens {
    if let Some(i) = stop.and_then(|s| response.iter().position(|&t| t == s)) {
        response.truncate(i);
    }
    response
}

/// Errors on an empty prompt list or an empty prompt.
pub fn check_prompts(prompts: &[Tokens]) -> Result<()> {
    if prompts.is_empty() {
        return Err(BehavioralError::InvalidInput("no prompts".into()));
    }
    if let Some(i) = prompts.iter().position(Vec::is_empty) {
        return Err(BehavioralError::InvalidInput(format!(
            "prompt {i} is empty"
        )));
    }
    Ok(())
}
