//! Trigger inversion without the trigger: the entry point that runs the searches of every
//! length and placement on generic prompts and picks the insertion that changes the model's
//! own answers most.

use mesa_nn::Transformer;

use crate::error::Result;
use crate::hyperparams::InversionParams;
use std::collections::HashSet;

use crate::insertion::{check_prompts, vocab_size, AnsweredPrompt, Insertion};
use crate::objective::{PassCount, Scorer};
use crate::search::{embedding_matrix, exhaustive_single, gcg, Found, GcgSettings};

/// Everything one inversion found and spent.
#[derive(Clone, Debug, PartialEq)]
pub struct Inversion {
    /// The reported insertion: of the `rerank` evaluated insertions of largest divergence, the
    /// one whose answers hold a token the untriggered answers never do on the most search
    /// prompts (ties: shorter, then larger divergence). Without re-ranking, `by_divergence`.
    pub best: Found,
    /// The shortest run whose divergence is within `length_tolerance` (relative) of the largest.
    pub by_divergence: Found,
    /// The re-ranked pool: insertion, divergence, share of search prompts with novel answers.
    pub pool: Vec<(Insertion, f64, f64)>,
    /// Every GCG run (length, placement, start), in search order.
    pub runs: Vec<Found>,
    /// Passes of all GCG runs together.
    pub passes: PassCount,
    /// The exhaustive single-token search per placement, when asked for.
    pub exhaustive: Vec<Found>,
    /// Tokens the search was allowed to insert.
    pub allowed: Vec<usize>,
    /// Divergence of the prompts with nothing inserted (about 0: the model's own answers).
    pub baseline_divergence: f64,
}

/// Searches for the insertion (1 to `max_len` tokens) that moves the model furthest off its
/// own greedy answers on `prompts`, generic untriggered prompts of the task.
pub fn invert(
    model: &Transformer,
    prompts: &[Vec<usize>],
    params: &InversionParams,
) -> Result<Inversion> {
    params.check()?;
    check_prompts(model, prompts)?;
    let answered = params.answer.answered(model, prompts)?;
    let scorer = Scorer::new(model, &answered)?;
    let embed = embedding_matrix(model)?;
    let allowed = allowed_tokens(vocab_size(model)?, prompts, params.exclude_prompt_tokens);
    let nothing = Insertion {
        tokens: Vec::new(),
        placement: params.placements[0],
    };
    let baseline_divergence = scorer.divergence(std::slice::from_ref(&nothing))?[0];
    let before = scorer.passes();

    let mut runs = Vec::new();
    for len in 1..=params.max_len {
        for (p, &placement) in params.placements.iter().enumerate() {
            for start in 0..params.restarts {
                let seed = params.seed
                    ^ ((len as u64) << 48)
                    ^ ((p as u64) << 40)
                    ^ ((start as u64) << 32);
                let settings = GcgSettings {
                    len,
                    top_k: params.top_k,
                    steps: params.steps,
                    seed,
                };
                runs.push(gcg(&scorer, &embed, &allowed, placement, settings)?);
            }
        }
    }
    let by_divergence = pick(&runs, params.length_tolerance).clone();
    let pool = novelty_pool(model, &scorer, &answered, params)?;
    let after = scorer.passes();
    let passes = PassCount {
        forward: after.forward - before.forward,
        backward: after.backward - before.backward,
    };
    let best = match pool.iter().max_by(|a, b| {
        a.2.total_cmp(&b.2)
            .then(b.0.tokens.len().cmp(&a.0.tokens.len()))
            .then(a.1.total_cmp(&b.1))
    }) {
        Some((insertion, divergence, _)) => Found {
            insertion: insertion.clone(),
            divergence: *divergence,
            passes,
            steps: 0,
        },
        None => by_divergence.clone(),
    };

    let mut exhaustive = Vec::new();
    if params.exhaustive_single {
        for &placement in &params.placements {
            exhaustive.push(exhaustive_single(&scorer, &allowed, placement)?.0);
        }
    }
    Ok(Inversion {
        best,
        by_divergence,
        pool,
        runs,
        passes,
        exhaustive,
        allowed,
        baseline_divergence,
    })
}

/// The `params.rerank` evaluated insertions of largest divergence, each with the share of
/// search prompts whose greedy answer under it holds a token that no untriggered answer holds.
/// A backdoor makes a model say something it never says otherwise (a phrase, a payload); an
/// insertion that only confuses it gives wrong answers in the task's own words.
fn novelty_pool(
    model: &Transformer,
    scorer: &Scorer<'_>,
    answered: &[AnsweredPrompt],
    params: &InversionParams,
) -> Result<Vec<(Insertion, f64, f64)>> {
    let said: HashSet<usize> = answered.iter().flat_map(|a| a.answer.clone()).collect();
    let mut pool = Vec::new();
    for (insertion, divergence) in scorer.top_seen(params.rerank) {
        let inserted: Vec<Vec<usize>> = answered
            .iter()
            .enumerate()
            .map(|(i, a)| insertion.apply(&a.prompt, i).0)
            .collect();
        let answers = params.answer.answers(model, &inserted)?;
        // Generation runs one forward pass per new token: counted as an upper bound.
        scorer.count_forward((inserted.len() * params.answer.max_new) as u64);
        let novel = answers
            .iter()
            .filter(|a| a.iter().any(|t| !said.contains(t)))
            .count() as f64
            / answers.len() as f64;
        pool.push((insertion, divergence, novel));
    }
    Ok(pool)
}

/// Every token id, less those in `prompts` when `exclude` is set.
pub fn allowed_tokens(vocab: usize, prompts: &[Vec<usize>], exclude: bool) -> Vec<usize> {
    let mut seen = vec![false; vocab];
    if exclude {
        for &t in prompts.iter().flatten() {
            if t < vocab {
                seen[t] = true;
            }
        }
    }
    (0..vocab).filter(|&t| !seen[t]).collect()
}

/// The shortest run whose divergence is at least `1 - tolerance` times the largest (ties:
/// larger divergence, then search order).
fn pick(runs: &[Found], tolerance: f64) -> &Found {
    let largest = runs
        .iter()
        .map(|r| r.divergence)
        .fold(f64::NEG_INFINITY, f64::max);
    runs.iter()
        .filter(|r| r.divergence >= largest * (1.0 - tolerance))
        .min_by(|a, b| {
            a.insertion
                .tokens
                .len()
                .cmp(&b.insertion.tokens.len())
                .then(b.divergence.total_cmp(&a.divergence))
        })
        .expect("at least one run")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::insertion::Placement;

    #[test]
    fn prompt_tokens_are_left_out_only_when_asked() {
        let prompts = vec![vec![0, 2, 3], vec![0, 3, 5]];
        assert_eq!(allowed_tokens(7, &prompts, true), vec![1, 4, 6]);
        assert_eq!(allowed_tokens(3, &prompts, false), vec![0, 1, 2]);
    }

    #[test]
    fn the_shortest_insertion_within_tolerance_is_reported() {
        let found = |len: usize, divergence: f64| Found {
            insertion: Insertion {
                tokens: vec![1; len],
                placement: Placement::End,
            },
            divergence,
            passes: PassCount::default(),
            steps: 1,
        };
        let runs = vec![found(1, 5.0), found(2, 6.0), found(3, 10.0)];
        assert_eq!(pick(&runs, 0.1).insertion.tokens.len(), 3);
        assert_eq!(pick(&runs, 0.45).insertion.tokens.len(), 2);
        assert_eq!(pick(&runs, 0.5).insertion.tokens.len(), 1);
    }
}
