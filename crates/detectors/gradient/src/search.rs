//! The search for the insertion of largest divergence: GCG-style coordinate search
//! (Zou et al. 2023) and, as its yardstick, exhaustive search over single tokens.
//!
//! GCG step: the gradient of divergence with respect to the embedding `e_j` of each inserted
//! token gives, for every vocabulary token `v`, the first-order change `(E[v] - e_j) . g_j` of
//! swapping it in (the gradient with respect to a one-hot input, through the embedding matrix
//! `E`). The `top_k` most promising swaps per inserted position are evaluated by forward passes;
//! the best is taken if it raises divergence, otherwise the search has reached a local optimum
//! of that neighbourhood and stops.

use ndarray::Array2;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::SeedableRng;

use crate::error::{GradientError, Result};
use crate::insertion::{Insertion, Placement};
use crate::objective::{PassCount, Scorer};

/// The token embedding matrix `W_E` `[vocab, d_model]` of a token model.
pub fn embedding_matrix(model: &mesa_nn::Transformer) -> Result<Array2<f32>> {
    let (_, shape, values) = model
        .named_params()
        .into_iter()
        .find(|(name, _, _)| name == "embed.W_E")
        .ok_or_else(|| GradientError::InvalidData("the model has no token embedding".into()))?;
    Array2::from_shape_vec((shape[0], shape[1]), values)
        .map_err(|e| GradientError::InvalidData(format!("embedding matrix: {e}")))
}

/// Settings of one GCG run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GcgSettings {
    /// Inserted tokens.
    pub len: usize,
    /// Swaps evaluated per inserted position and step.
    pub top_k: usize,
    /// Most steps.
    pub steps: usize,
    pub seed: u64,
}

/// What one search found.
#[derive(Clone, Debug, PartialEq)]
pub struct Found {
    pub insertion: Insertion,
    /// Mean divergence of the search prompts with the insertion (higher = bigger change).
    pub divergence: f64,
    /// Passes this search spent.
    pub passes: PassCount,
    /// GCG steps taken (0 for exhaustive search).
    pub steps: usize,
}

/// GCG from a random start drawn from `allowed`.
pub fn gcg(
    scorer: &Scorer<'_>,
    embed: &Array2<f32>,
    allowed: &[usize],
    placement: Placement,
    settings: GcgSettings,
) -> Result<Found> {
    if allowed.is_empty() {
        return Err(GradientError::InvalidData(
            "no candidate tokens to search".into(),
        ));
    }
    let start = scorer.passes();
    let mut rng = StdRng::seed_from_u64(settings.seed);
    let tokens: Vec<usize> = (0..settings.len)
        .map(|_| *allowed.choose(&mut rng).expect("non-empty"))
        .collect();
    let mut current = Insertion { tokens, placement };
    let mut steps = 0;
    let (mut value, mut grad) = scorer.gradient(&current)?;
    while steps < settings.steps {
        steps += 1;
        let candidates = swaps(&current, &grad, embed, allowed, settings.top_k);
        if candidates.is_empty() {
            break;
        }
        let values = scorer.divergence(&candidates)?;
        let (best, best_value) = values
            .iter()
            .enumerate()
            .max_by(|a, b| a.1.total_cmp(b.1).then(b.0.cmp(&a.0)))
            .map(|(i, v)| (i, *v))
            .expect("non-empty");
        if best_value <= value {
            break;
        }
        current = candidates[best].clone();
        (value, grad) = scorer.gradient(&current)?;
    }
    let end = scorer.passes();
    Ok(Found {
        insertion: current,
        divergence: value,
        passes: PassCount {
            forward: end.forward - start.forward,
            backward: end.backward - start.backward,
        },
        steps,
    })
}

/// The `top_k` allowed swaps per inserted position with the largest first-order gain.
fn swaps(
    current: &Insertion,
    grad: &Array2<f32>,
    embed: &Array2<f32>,
    allowed: &[usize],
    top_k: usize,
) -> Vec<Insertion> {
    let mut out = Vec::new();
    for (j, &now) in current.tokens.iter().enumerate() {
        let g = grad.row(j);
        let mut ranked: Vec<(f32, usize)> = allowed
            .iter()
            .filter(|&&v| v != now)
            .map(|&v| (embed.row(v).dot(&g), v))
            .collect();
        ranked.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
        for &(_, v) in ranked.iter().take(top_k) {
            let mut next = current.clone();
            next.tokens[j] = v;
            out.push(next);
        }
    }
    out
}

/// Every single-token insertion from `allowed` at `placement`, by forward passes: the
/// yardstick for the search's cost and result. Returns the best and all divergences (in the
/// order of `allowed`).
pub fn exhaustive_single(
    scorer: &Scorer<'_>,
    allowed: &[usize],
    placement: Placement,
) -> Result<(Found, Vec<f64>)> {
    if allowed.is_empty() {
        return Err(GradientError::InvalidData(
            "no candidate tokens to search".into(),
        ));
    }
    let start = scorer.passes();
    let candidates: Vec<Insertion> = allowed
        .iter()
        .map(|&v| Insertion {
            tokens: vec![v],
            placement,
        })
        .collect();
    let values = scorer.divergence(&candidates)?;
    let best = values
        .iter()
        .enumerate()
        .max_by(|a, b| a.1.total_cmp(b.1).then(b.0.cmp(&a.0)))
        .map(|(i, _)| i)
        .expect("non-empty");
    let end = scorer.passes();
    Ok((
        Found {
            insertion: candidates[best].clone(),
            divergence: values[best],
            passes: PassCount {
                forward: end.forward - start.forward,
                backward: end.backward - start.backward,
            },
            steps: 0,
        },
        values,
    ))
}
