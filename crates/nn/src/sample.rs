//! Batched generation for behavioural evaluation: greedy or temperature sampling.

use std::collections::BTreeMap;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::error::{NnError, Result};
use crate::model::{Input, Transformer};

/// How the next token is chosen.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Sampling {
    /// The most likely token (ties go to the lowest id).
    Greedy,
    /// A draw from `softmax(logits / temperature)`, seeded.
    Temperature { temperature: f32, seed: u64 },
}

/// Continues each prompt by up to `max_new` tokens, stopping a sequence after `stop` if given.
/// Returns only the generated tokens (the stop token included). Prompts of equal length are
/// run as one batch.
///
/// # Errors
/// [`NnError::NonFiniteLogits`] if the model puts out a NaN or an infinity where a token is
/// chosen: a broken model is an error, never a run of token 0 that an evaluator would read as
/// "never defects".
pub fn generate(
    model: &Transformer,
    prompts: &[Vec<usize>],
    max_new: usize,
    sampling: Sampling,
    stop: Option<usize>,
) -> Result<Vec<Vec<usize>>> {
    if let Sampling::Temperature { temperature, .. } = sampling {
        if !(temperature.is_finite() && temperature > 0.0) {
            return Err(NnError::InvalidInput(format!(
                "temperature must be positive, got {temperature}"
            )));
        }
    }
    let mut rng = match sampling {
        Sampling::Temperature { seed, .. } => StdRng::seed_from_u64(seed),
        Sampling::Greedy => StdRng::seed_from_u64(0),
    };
    let mut by_len: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
    for (i, p) in prompts.iter().enumerate() {
        by_len.entry(p.len()).or_default().push(i);
    }
    let mut out = vec![Vec::new(); prompts.len()];
    for indices in by_len.values() {
        let mut seqs: Vec<Vec<usize>> = indices.iter().map(|&i| prompts[i].clone()).collect();
        let mut done = vec![false; seqs.len()];
        for _ in 0..max_new {
            if done.iter().all(|&d| d) {
                break;
            }
            let logits = model.forward(&Input::tokens(&seqs)?)?;
            let last = logits.shape()[1] - 1;
            for (row, seq) in seqs.iter_mut().enumerate() {
                let l = logits.slice(ndarray::s![row, last, ..]);
                if let Some(token) = l.iter().position(|x| !x.is_finite()) {
                    return Err(NnError::NonFiniteLogits {
                        prompt: indices[row],
                        position: seq.len() - 1,
                        token,
                    });
                }
                let next = match sampling {
                    Sampling::Greedy => argmax(l.iter().copied()),
                    Sampling::Temperature { temperature, .. } => {
                        sample_softmax(l.iter().map(|x| x / temperature), &mut rng)
                    }
                };
                seq.push(next);
                if !done[row] {
                    out[indices[row]].push(next);
                    done[row] = stop == Some(next);
                }
            }
        }
    }
    Ok(out)
}

fn argmax(xs: impl Iterator<Item = f32>) -> usize {
    let mut best = (0, f32::NEG_INFINITY);
    for (i, x) in xs.enumerate() {
        if x > best.1 {
            best = (i, x);
        }
    }
    best.0
}

fn sample_softmax(xs: impl Iterator<Item = f32>, rng: &mut StdRng) -> usize {
    let xs: Vec<f32> = xs.collect();
    let max = xs.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let weights: Vec<f64> = xs.iter().map(|x| ((x - max) as f64).exp()).collect();
    let total: f64 = weights.iter().sum();
    let mut u = rng.gen::<f64>() * total;
    for (i, w) in weights.iter().enumerate() {
        if u < *w {
            return i;
        }
        u -= w;
    }
    weights.len() - 1
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Preset, Tiny};

    /// A model whose unembedding bias holds `value` for token 3.
    fn model_with_bias(value: f32) -> Transformer {
        let mut model = Transformer::new(Tiny::language_model(6, 8), 1).expect("model");
        model.visit_params_mut(&mut |name, mut p| {
            if name == "unembed.b_U" {
                let mut b = p.values();
                b[3] = value;
                p.set_values(&b);
            }
        });
        model
    }

    #[test]
    fn greedy_decoding_picks_the_largest_logit() {
        let model = model_with_bias(100.0);
        let out = generate(&model, &[vec![1, 2], vec![4]], 3, Sampling::Greedy, None).unwrap();
        assert_eq!(out, [vec![3, 3, 3], vec![3, 3, 3]]);
    }

    #[test]
    fn non_finite_logits_are_an_error_not_token_zero() {
        for value in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
            let model = model_with_bias(value);
            for sampling in [
                Sampling::Greedy,
                Sampling::Temperature {
                    temperature: 1.0,
                    seed: 0,
                },
            ] {
                let err = generate(&model, &[vec![1, 2], vec![4, 5, 1]], 2, sampling, None)
                    .expect_err("non-finite logits must fail");
                match err {
                    NnError::NonFiniteLogits {
                        prompt,
                        position,
                        token,
                    } => {
                        // Prompts run shortest first: prompt 0 (2 tokens) fails at position 1.
                        assert_eq!((prompt, position, token), (0, 1, 3), "{value} {sampling:?}");
                    }
                    other => panic!("unexpected error {other}"),
                }
            }
        }
    }
}
