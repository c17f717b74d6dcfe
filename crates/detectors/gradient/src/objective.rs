//! The search objective: how far a candidate insertion moves the model off its own untriggered
//! answers. It knows nothing of any defection.
//!
//! For a prompt `p` with the model's own greedy answer `y` (teacher forced), the *divergence* of
//! an insertion `t` is `-mean_i log P(y_i | p + t, y_<i)`: the KL divergence, per answer token,
//! of the model's output on `p + t` from the one-hot distribution of its own untriggered answer.
//! Over prompts it is averaged. It is about 0 for an insertion the model ignores and large for
//! one that makes it confidently say something else on every prompt; unlike a probability it
//! does not saturate, so an insertion that makes the model *confidently* give another answer
//! (a trained behaviour) ranks above one that merely confuses it. The search maximises it: by
//! forward passes for a batch of candidates, and by one backward pass for the gradient with
//! respect to the inserted embeddings, which ranks candidate swaps.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;

use dfdx::prelude::*;
use mesa_nn::{HookPoint, Hooks, Input, TapedLogits, TapedScalar, Transformer};
use ndarray::{Array2, Array3};

use crate::error::{GradientError, Result};
use crate::insertion::{max_seq, AnsweredPrompt, Insertion};

/// Forward and backward passes spent, counted in sequences (one prompt with its answer).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PassCount {
    pub forward: u64,
    pub backward: u64,
}

impl PassCount {
    /// Forward plus backward sequences (a backward pass includes its own forward, counted here).
    pub fn total(&self) -> u64 {
        self.forward + self.backward
    }
}

impl std::ops::Add for PassCount {
    type Output = PassCount;
    fn add(self, o: PassCount) -> PassCount {
        PassCount {
            forward: self.forward + o.forward,
            backward: self.backward + o.backward,
        }
    }
}

/// Sequences per forward call: bounds memory, not results.
const CHUNK: usize = 512;

/// Scores insertions on a fixed set of answered prompts and counts the passes it spends.
pub struct Scorer<'a> {
    model: &'a Transformer,
    prompts: &'a [AnsweredPrompt],
    passes: Cell<PassCount>,
    /// Every insertion evaluated so far, with its divergence.
    seen: RefCell<HashMap<Insertion, f64>>,
}

/// One teacher-forced sequence: tokens, where the answer starts being predicted, its targets.
struct Forced {
    tokens: Vec<usize>,
    /// Position whose logits predict `targets[0]`.
    first: usize,
    targets: Vec<usize>,
    /// Where the insertion starts.
    at: usize,
}

impl<'a> Scorer<'a> {
    pub fn new(model: &'a Transformer, prompts: &'a [AnsweredPrompt]) -> Result<Self> {
        if prompts.is_empty() {
            return Err(GradientError::InvalidData("no prompts to score on".into()));
        }
        if let Some(i) = prompts.iter().position(|p| p.answer.is_empty()) {
            return Err(GradientError::InvalidData(format!(
                "prompt {i} has an empty answer"
            )));
        }
        Ok(Self {
            model,
            prompts,
            passes: Cell::new(PassCount::default()),
            seen: RefCell::new(HashMap::new()),
        })
    }

    pub fn passes(&self) -> PassCount {
        self.passes.get()
    }

    pub fn len(&self) -> usize {
        self.prompts.len()
    }

    pub fn is_empty(&self) -> bool {
        self.prompts.is_empty()
    }

    /// The teacher-forced sequences of `insertion`, answers cut to fit the model.
    fn forced(&self, insertion: &Insertion) -> Result<Vec<Forced>> {
        let limit = max_seq(self.model);
        self.prompts
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let (mut tokens, at) = insertion.apply(&p.prompt, i);
                let first = tokens.len() - 1;
                // The last target is predicted, never fed, so one more answer token fits.
                let room = (limit + 1).saturating_sub(tokens.len());
                let n = p.answer.len().min(room);
                if n == 0 {
                    return Err(GradientError::InvalidData(format!(
                        "prompt {i} with a {}-token insertion leaves no room for its answer \
                         (the model reads {limit} tokens)",
                        insertion.tokens.len()
                    )));
                }
                tokens.extend_from_slice(&p.answer[..n - 1]);
                Ok(Forced {
                    tokens,
                    first,
                    targets: p.answer[..n].to_vec(),
                    at,
                })
            })
            .collect()
    }

    /// Divergence of each insertion (mean over prompts), by forward passes only.
    pub fn divergence(&self, insertions: &[Insertion]) -> Result<Vec<f64>> {
        let mut all = Vec::new();
        for ins in insertions {
            all.extend(self.forced(ins)?);
        }
        let mut per_seq = Vec::with_capacity(all.len());
        for chunk in all.chunks(CHUNK) {
            let logits = self.model.forward(&padded(chunk)?)?;
            per_seq.extend(
                chunk
                    .iter()
                    .enumerate()
                    .map(|(b, f)| seq_divergence(&logits, b, f)),
            );
        }
        let mut pc = self.passes.get();
        pc.forward += all.len() as u64;
        self.passes.set(pc);
        let n = self.prompts.len();
        let values: Vec<f64> = per_seq
            .chunks(n)
            .map(|c| c.iter().sum::<f64>() / n as f64)
            .collect();
        let mut seen = self.seen.borrow_mut();
        for (ins, &v) in insertions.iter().zip(&values) {
            seen.insert(ins.clone(), v);
        }
        Ok(values)
    }

    /// The `n` evaluated insertions of largest divergence (ties: fewer tokens, then token ids),
    /// the empty insertion left out.
    pub fn top_seen(&self, n: usize) -> Vec<(Insertion, f64)> {
        let mut all: Vec<(Insertion, f64)> = self
            .seen
            .borrow()
            .iter()
            .filter(|(ins, _)| !ins.tokens.is_empty())
            .map(|(ins, &v)| (ins.clone(), v))
            .collect();
        all.sort_by(|a, b| {
            b.1.total_cmp(&a.1)
                .then(a.0.tokens.len().cmp(&b.0.tokens.len()))
                .then(a.0.tokens.cmp(&b.0.tokens))
                .then(a.0.placement.name().cmp(b.0.placement.name()))
        });
        all.truncate(n);
        all
    }

    /// Counts `n` forward sequences spent outside the scorer (generation for re-ranking).
    pub fn count_forward(&self, n: u64) {
        let mut pc = self.passes.get();
        pc.forward += n;
        self.passes.set(pc);
    }

    /// Divergence of `insertion` and its gradient with respect to the embedding of each inserted
    /// token, summed over prompts: `[insertion length, d_model]`.
    pub fn gradient(&self, insertion: &Insertion) -> Result<(f64, Array2<f32>)> {
        let (value, g, starts) = self.embed_gradient(insertion)?;
        let d = g.shape()[2];
        let k = insertion.tokens.len();
        let mut out = Array2::zeros((k, d));
        for (row, &at) in starts.iter().enumerate() {
            for j in 0..k {
                for c in 0..d {
                    out[[j, c]] += g[[row, at + j, c]];
                }
            }
        }
        Ok((value, out))
    }

    /// Divergence of `insertion` and its gradient with respect to every embedding
    /// (`hook_embed`, `[prompt, pos, d_model]`, padded), with each prompt's insertion index.
    /// A prompt's gradient depends on that prompt only.
    pub fn embed_gradient(
        &self,
        insertion: &Insertion,
    ) -> Result<(f64, ndarray::ArrayD<f32>, Vec<usize>)> {
        let forced = self.forced(insertion)?;
        let input = padded(&forced)?;
        let (b, s) = (input.batch(), input.seq_len());
        let vocab = crate::insertion::vocab_size(self.model)?;
        // weights[b, pos, token] = 1 / n_b on each teacher-forced target: the weighted sum of
        // log-probabilities is each sequence's mean log-probability of its own answer.
        let mut weights = vec![0f32; b * s * vocab];
        for (row, f) in forced.iter().enumerate() {
            let w = 1.0 / f.targets.len() as f32;
            for (k, &t) in f.targets.iter().enumerate() {
                weights[(row * s + f.first + k) * vocab + t] = w;
            }
        }
        let objective = move |logits: TapedLogits| -> TapedScalar {
            let dev = logits.device().clone();
            let w: Tensor<(usize, usize, usize), f32, Cpu> =
                dev.tensor_from_vec(weights, (b, s, vocab));
            let mean_logp = (logits.log_softmax::<Axis<2>>() * w).sum::<(usize,), Axes2<1, 2>>();
            mean_logp.mean::<(), _>().negate()
        };
        let (value, mut grads) = self.model.activation_gradients(
            &input,
            &Hooks::new(),
            &[HookPoint::Embed],
            objective,
        )?;
        let mut pc = self.passes.get();
        pc.backward += forced.len() as u64;
        self.passes.set(pc);
        let g = grads
            .remove(&HookPoint::Embed)
            .expect("the embedding gradient was requested");
        Ok((f64::from(value), g, forced.iter().map(|f| f.at).collect()))
    }
}

/// Sequences padded on the right (a causal model cannot see the padding from earlier
/// positions, so its id does not matter).
fn padded(seqs: &[Forced]) -> Result<Input> {
    let len = seqs.iter().map(|f| f.tokens.len()).max().unwrap_or(0);
    let rows: Vec<Vec<usize>> = seqs
        .iter()
        .map(|f| {
            let mut t = f.tokens.clone();
            t.resize(len, 0);
            t
        })
        .collect();
    Ok(Input::tokens(&rows)?)
}

/// `-mean log P(target)` of row `b`, from the logits in f64.
fn seq_divergence(logits: &Array3<f32>, b: usize, f: &Forced) -> f64 {
    let mut sum = 0.0;
    for (k, &t) in f.targets.iter().enumerate() {
        let row = logits.slice(ndarray::s![b, f.first + k, ..]);
        let max = row.iter().fold(f32::NEG_INFINITY, |m, &x| m.max(x)) as f64;
        let lse = row
            .iter()
            .map(|&x| (x as f64 - max).exp())
            .sum::<f64>()
            .ln()
            + max;
        sum += row[t] as f64 - lse;
    }
    -sum / f.targets.len() as f64
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::insertion::{AnswerSpec, Placement};
    use mesa_nn::{Preset, Tiny};

    fn setup() -> (Transformer, Vec<AnsweredPrompt>) {
        let model = Transformer::new(Tiny::language_model(12, 16), 4).expect("model");
        let prompts = vec![vec![1, 2, 3, 4], vec![1, 5, 6, 4], vec![1, 2, 4]];
        let answered = AnswerSpec {
            max_new: 3,
            stop: None,
        }
        .answered(&model, &prompts)
        .expect("answers");
        (model, answered)
    }

    #[test]
    fn gradient_value_matches_the_forward_divergence_and_passes_are_counted() {
        let (model, answered) = setup();
        let scorer = Scorer::new(&model, &answered).expect("scorer");
        let ins = Insertion {
            tokens: vec![7, 8],
            placement: Placement::Random { seed: 0 },
        };
        let fwd = scorer.divergence(std::slice::from_ref(&ins)).expect("fwd")[0];
        let (value, grad) = scorer.gradient(&ins).expect("grad");
        assert!((fwd - value).abs() < 1e-4, "{fwd} vs {value}");
        assert_eq!(grad.shape(), &[2, 32]);
        assert_eq!(
            scorer.passes(),
            PassCount {
                forward: 3,
                backward: 3
            }
        );
    }

    #[test]
    fn gradient_matches_finite_differences_at_the_inserted_embedding() {
        // Prompts of one length, so the end placement puts the insertion at one position and
        // a steering hook there moves every prompt's inserted embedding along `u` together.
        let model = Transformer::new(Tiny::language_model(12, 16), 4).expect("model");
        let prompts = vec![vec![1, 2, 3, 4], vec![1, 5, 6, 4], vec![1, 2, 9, 4]];
        let spec = AnswerSpec {
            max_new: 3,
            stop: None,
        };
        let answered = spec.answered(&model, &prompts).expect("answers");
        let scorer = Scorer::new(&model, &answered).expect("scorer");
        let ins = Insertion {
            tokens: vec![7],
            placement: Placement::End,
        };
        let (r0, g) = scorer.gradient(&ins).expect("grad");
        let forced = scorer.forced(&ins).expect("forced");
        let input = padded(&forced).expect("input");
        let u = ndarray::Array1::from_shape_fn(32, |c| ((c * 7 % 5) as f32 - 2.0) / 2.0);
        let eps = 1e-2f32;
        let divergence_at = |scale: f32| -> f64 {
            let hooks = Hooks::new().with(
                mesa_nn::Hook::new(
                    HookPoint::Embed,
                    mesa_nn::Intervention::Add {
                        vector: u.clone().into_dyn(),
                        scale,
                    },
                )
                .at_positions(vec![3]),
            );
            let logits = model.run_with_hooks(&input, &hooks).expect("hooked");
            forced
                .iter()
                .enumerate()
                .map(|(b, f)| seq_divergence(&logits, b, f))
                .sum::<f64>()
                / forced.len() as f64
        };
        assert!((divergence_at(0.0) - r0).abs() < 1e-4);
        let fd = (divergence_at(eps) - divergence_at(-eps)) / (2.0 * f64::from(eps));
        let analytic: f64 = (0..32).map(|c| f64::from(g[[0, c]] * u[c])).sum();
        assert!(
            (fd - analytic).abs() <= 0.05 * analytic.abs().max(1e-4),
            "finite difference {fd} vs gradient {analytic}"
        );
    }
}
