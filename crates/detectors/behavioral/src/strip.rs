//! STRIP at the input level (Gao et al. 2019, "STRIP: A Defence Against Trojan Attacks on Deep
//! Neural Networks"), for text and black-box access.
//!
//! STRIP superimposes perturbations on an input and watches the output: a clean input's output
//! moves with the perturbation, a triggered one stays fixed on its target because the trigger
//! dominates. Here each perturbed copy has `words` random filler words (from the vocabulary the
//! caller allows) inserted at random places strictly inside the prompt (its first and last tokens,
//! the role markers, stay); the model answers every copy; the input's score is the **stability**
//! `1 - H / ln K`, where `H` is the entropy of the distribution of the K responses (as whole
//! sequences). 1 = every copy gets the same response; 0 = every copy a different one.

use std::collections::BTreeMap;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::error::{BehavioralError, Result};
use crate::respond::{check_prompts, Responder, Tokens};

/// Hyper-parameters of STRIP.
#[derive(Clone, Debug, PartialEq)]
pub struct StripParams {
    /// Perturbed copies per input (K >= 2).
    pub perturbations: usize,
    /// Filler words inserted into each copy (>= 1).
    pub words: usize,
    pub seed: u64,
}

impl Default for StripParams {
    fn default() -> Self {
        Self {
            perturbations: 16,
            words: 2,
            seed: 0,
        }
    }
}

impl StripParams {
    fn check(&self) -> Result<()> {
        if self.perturbations < 2 {
            return Err(BehavioralError::InvalidParam {
                param: "perturbations",
                reason: format!("need at least 2, got {}", self.perturbations),
            });
        }
        if self.words == 0 {
            return Err(BehavioralError::InvalidParam {
                param: "words",
                reason: "at least one filler word per copy".into(),
            });
        }
        Ok(())
    }
}

/// One input's STRIP result.
#[derive(Clone, Debug, PartialEq)]
pub struct StripScore {
    /// `1 - H / ln K`: higher = more stable = more likely triggered.
    pub score: f64,
    /// Entropy (nats) of the responses to the K copies.
    pub entropy: f64,
    /// Number of distinct responses among the K.
    pub distinct: usize,
    /// Share of the copies that got the most common response.
    pub mode_share: f64,
}

/// The perturbed copies of `input`: a function of the seed and the input's tokens only, so an
/// input's score does not depend on which other inputs are scored with it.
pub fn perturb(input: &[usize], filler: &[usize], params: &StripParams) -> Vec<Tokens> {
    let mut rng = StdRng::seed_from_u64(params.seed ^ token_hash(input));
    (0..params.perturbations)
        .map(|_| {
            let mut copy = input.to_vec();
            for _ in 0..params.words {
                // Strictly inside: after the first token, before the last.
                let at = rng.gen_range(1..copy.len().max(2));
                let word = filler[rng.gen_range(0..filler.len())];
                copy.insert(at.min(copy.len()), word);
            }
            copy
        })
        .collect()
}

/// STRIP scores of `inputs`.
///
/// # Errors
/// Bad parameters, no inputs, an input of fewer than 2 tokens, an empty `filler`, or a failed
/// model run.
pub fn strip_scores(
    responder: &dyn Responder,
    inputs: &[Tokens],
    filler: &[usize],
    params: &StripParams,
) -> Result<Vec<StripScore>> {
    params.check()?;
    check_prompts(inputs)?;
    if filler.is_empty() {
        return Err(BehavioralError::InvalidInput(
            "no filler vocabulary to perturb with".into(),
        ));
    }
    if let Some(i) = inputs.iter().position(|t| t.len() < 2) {
        return Err(BehavioralError::InvalidInput(format!(
            "input {i} has fewer than 2 tokens: nothing lies inside it"
        )));
    }
    let copies: Vec<Tokens> = inputs
        .iter()
        .flat_map(|x| perturb(x, filler, params))
        .collect();
    let responses = responder.respond(&copies)?;
    let k = params.perturbations;
    Ok(responses.chunks(k).map(stability).collect())
}

/// Stability of a set of responses.
pub fn stability(responses: &[Tokens]) -> StripScore {
    let mut counts: BTreeMap<&[usize], usize> = BTreeMap::new();
    for r in responses {
        *counts.entry(r.as_slice()).or_default() += 1;
    }
    let k = responses.len() as f64;
    let entropy: f64 = counts
        .values()
        .map(|&c| {
            let p = c as f64 / k;
            -p * p.ln()
        })
        .sum();
    let max = counts.values().copied().max().unwrap_or(0);
    StripScore {
        score: if k > 1.0 { 1.0 - entropy / k.ln() } else { 1.0 },
        entropy,
        distinct: counts.len(),
        mode_share: max as f64 / k,
    }
}

/// FNV-1a over the token ids.
fn token_hash(tokens: &[usize]) -> u64 {
    tokens.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &t| {
        (h ^ t as u64).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Echoes the prompt's interior unless token 7 is in it, then answers [99].
    struct Echo;
    impl Responder for Echo {
        fn respond(&self, prompts: &[Tokens]) -> Result<Vec<Tokens>> {
            Ok(prompts
                .iter()
                .map(|p| {
                    if p.contains(&7) {
                        vec![99]
                    } else {
                        p[1..p.len() - 1].to_vec()
                    }
                })
                .collect())
        }
    }

    #[test]
    fn a_triggered_input_is_stable_and_a_clean_one_is_not() {
        let params = StripParams::default();
        let filler: Vec<usize> = (20..40).collect();
        let inputs = vec![vec![1, 7, 3, 0], vec![1, 2, 3, 0]];
        let s = strip_scores(&Echo, &inputs, &filler, &params).expect("scores");
        assert_eq!(s[0].score, 1.0);
        assert_eq!(s[0].distinct, 1);
        assert!(s[1].score < 0.5, "{:?}", s[1]);
        // Same seed and input, same score, whatever else is scored with it.
        let alone = strip_scores(&Echo, &inputs[1..], &filler, &params).expect("alone");
        assert_eq!(alone[0], s[1]);
    }

    #[test]
    fn copies_keep_the_markers_and_bad_params_are_errors() {
        let params = StripParams::default();
        for copy in perturb(&[1, 2, 0], &[5], &params) {
            assert_eq!((copy[0], copy[copy.len() - 1], copy.len()), (1, 0, 5));
        }
        let bad = StripParams {
            perturbations: 1,
            ..params.clone()
        };
        assert!(strip_scores(&Echo, &[vec![1, 0]], &[5], &bad).is_err());
        assert!(strip_scores(&Echo, &[vec![1, 0]], &[], &params).is_err());
        assert!(strip_scores(&Echo, &[vec![1]], &[5], &params).is_err());
    }
}
