//! Greedy generation while hooks act on every forward pass: the model under an intervention,
//! seen through its responses.

use std::collections::BTreeMap;

use mesa_behavioral::{by_room, check_prompts, cut_at_stop, BehavioralError, Responder, Tokens};
use mesa_nn::{Hooks, Input, Transformer};

/// Builds the hooks of one forward pass (hooks are scoped to one call and are not `Clone`).
pub type HookFactory<'a> = dyn Fn() -> Hooks + 'a;

/// Greedy decoding of `model` with the hooks `hooks()` on every step, up to `max_new` tokens or
/// the `stop` token (excluded from the response).
pub struct HookedGreedy<'a> {
    pub model: &'a Transformer,
    pub max_new: usize,
    pub stop: Option<usize>,
    pub hooks: &'a HookFactory<'a>,
}

impl Responder for HookedGreedy<'_> {
    fn respond(&self, prompts: &[Tokens]) -> mesa_behavioral::Result<Vec<Tokens>> {
        check_prompts(prompts)?;
        // Equal length and equal room: one batch.
        let mut groups: BTreeMap<(usize, usize), Vec<usize>> = BTreeMap::new();
        for (room, indices) in by_room(self.model, prompts, self.max_new)? {
            for i in indices {
                groups.entry((prompts[i].len(), room)).or_default().push(i);
            }
        }
        let mut out = vec![Vec::new(); prompts.len()];
        for (&(_, room), indices) in &groups {
            let mut seqs: Vec<Tokens> = indices.iter().map(|&i| prompts[i].clone()).collect();
            let mut done = vec![false; seqs.len()];
            for _ in 0..room {
                if done.iter().all(|&d| d) {
                    break;
                }
                let logits = self
                    .model
                    .run_with_hooks(&Input::tokens(&seqs)?, &(self.hooks)())
                    .map_err(BehavioralError::from)?;
                let last = logits.shape()[1] - 1;
                for (row, seq) in seqs.iter_mut().enumerate() {
                    let next = argmax(logits.slice(ndarray::s![row, last, ..]).iter().copied());
                    seq.push(next);
                    if !done[row] {
                        out[indices[row]].push(next);
                        done[row] = self.stop == Some(next);
                    }
                }
            }
        }
        Ok(out.into_iter().map(|r| cut_at_stop(r, self.stop)).collect())
    }
}

/// Index of the largest value (ties to the lowest index, as `mesa_nn::generate`).
pub fn argmax(xs: impl Iterator<Item = f32>) -> usize {
    let mut best = (0, f32::NEG_INFINITY);
    for (i, x) in xs.enumerate() {
        if x > best.1 {
            best = (i, x);
        }
    }
    best.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use mesa_behavioral::Greedy;
    use mesa_nn::{Preset, Tiny};

    #[test]
    fn no_hooks_gives_the_plain_greedy_responses() {
        let model = Transformer::new(Tiny::language_model(12, 24), 5).expect("model");
        let prompts = vec![vec![1, 2, 3], vec![4, 5], vec![6, 7, 8]];
        let plain = Greedy::new(&model, 6, Some(11))
            .respond(&prompts)
            .expect("plain");
        let none = Hooks::new;
        let hooked = HookedGreedy {
            model: &model,
            max_new: 6,
            stop: Some(11),
            hooks: &none,
        };
        assert_eq!(hooked.respond(&prompts).expect("hooked"), plain);
    }
}
