//! Input-level score: how much of the gradient of the model's own answer sits on one token.
//!
//! For an input, the model answers greedily; the gradient of that answer's (geometric-mean)
//! probability with respect to the input embeddings (`hook_embed`) has a norm per position. A
//! trigger that decides the answer on its own should draw a large share of that mass onto its
//! position; a task answer that depends on every content token spreads it. The score is the
//! largest share over the prompt body (first and last token left out: they are the same in
//! every prompt).

use mesa_nn::Transformer;

use crate::error::Result;
use crate::insertion::{check_prompts, AnswerSpec, Insertion, Placement};
use crate::objective::Scorer;

/// The saliency statistics of one input.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Saliency {
    /// Largest share of the body's gradient norm on one position (in (0, 1]).
    pub max_share: f64,
    /// That position in the prompt.
    pub position: usize,
}

/// Saliency of each of `prompts` under `model`'s own greedy answers.
pub fn saliency(
    model: &Transformer,
    prompts: &[Vec<usize>],
    answer: AnswerSpec,
) -> Result<Vec<Saliency>> {
    check_prompts(model, prompts)?;
    let answered = answer.answered(model, prompts)?;
    let scorer = Scorer::new(model, &answered)?;
    let nothing = Insertion {
        tokens: Vec::new(),
        placement: Placement::Start,
    };
    let (_, g, _) = scorer.embed_gradient(&nothing)?; // [prompt, pos, d_model]
    let d = g.shape()[2];
    Ok(prompts
        .iter()
        .enumerate()
        .map(|(b, p)| {
            let norms: Vec<f64> = (0..p.len())
                .map(|pos| {
                    (0..d)
                        .map(|c| f64::from(g[[b, pos, c]]).powi(2))
                        .sum::<f64>()
                        .sqrt()
                })
                .collect();
            let body = if p.len() > 2 {
                1..p.len() - 1
            } else {
                0..p.len()
            };
            let total: f64 = norms[body.clone()].iter().sum();
            let (position, top) = body
                .map(|i| (i, norms[i]))
                .max_by(|a, b| a.1.total_cmp(&b.1))
                .expect("a prompt has at least one position");
            // A gradient that vanishes everywhere (a saturated answer) puts no mass anywhere;
            // its share is taken as spread evenly rather than as a NaN.
            let max_share = if total > 0.0 {
                top / total
            } else {
                1.0 / (p.len().max(3) - 2) as f64
            };
            Saliency {
                max_share,
                position,
            }
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use mesa_nn::{Preset, Tiny};

    #[test]
    fn shares_are_proper_fractions_on_the_body() {
        let model = Transformer::new(Tiny::language_model(12, 16), 1).expect("model");
        let prompts = vec![vec![1, 2, 3, 4], vec![1, 5, 6, 7, 4], vec![1, 2]];
        let spec = AnswerSpec {
            max_new: 3,
            stop: None,
        };
        let s = saliency(&model, &prompts, spec).expect("saliency");
        assert_eq!(s.len(), 3);
        for (x, p) in s.iter().zip(&prompts) {
            assert!(x.max_share > 0.0 && x.max_share <= 1.0, "{x:?}");
            if p.len() > 2 {
                assert!((1..p.len() - 1).contains(&x.position), "{x:?}");
            }
        }
        // The largest of k shares is at least 1/k.
        assert!(s[0].max_share >= 0.5 - 1e-12, "{:?}", s[0]);
        assert!(s[1].max_share >= 1.0 / 3.0 - 1e-12, "{:?}", s[1]);
    }
}
