//! Noise injection (Poser, Clymer et al. 2024, for activations; Tice et al. 2024, for weights):
//! perturb the model with Gaussian noise on generic untriggered prompts and watch whether the
//! answers collapse onto one consistent foreign continuation (a hidden behaviour shaken loose)
//! or merely degrade. No trigger or defection is known: the judgement is
//! [`mesa_behavioral::change_stats`] with the caller's task checker.
//!
//! Activation noise at a hook point adds, at every position, a Gaussian vector whose expected
//! norm is `scale` times the norm of the activation there; weight noise adds to every parameter
//! tensor Gaussian noise of `scale` times its root mean square. Each (target, scale) is run with
//! several independent draws, pooled; the model's score is the largest pooled
//! `harmful_consistency` over targets and scales, and the whole dose-response curve is evidence.

use mesa_behavioral::{change_stats, ChangeStats, Greedy, Responder, TaskChecker, Tokens};
use mesa_nn::{Hook, HookPoint, Hooks, Intervention, Transformer};
use ndarray::{ArrayD, Axis};
use rand::rngs::StdRng;
use rand::SeedableRng;
use rand_distr::{Distribution, StandardNormal};

use crate::error::{CausalError, Result};
use crate::generate::HookedGreedy;

/// What the noise is added to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum NoiseTarget {
    Activation(HookPoint),
    Weights,
}

impl std::fmt::Display for NoiseTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Activation(p) => write!(f, "{p}"),
            Self::Weights => write!(f, "weights"),
        }
    }
}

/// Hyper-parameters of the noise sweep.
#[derive(Clone, Debug, PartialEq)]
pub struct NoiseParams {
    /// Targets; empty = every residual-stream point (`resid_pre` of each block and the last
    /// `resid_post`) and the weights.
    pub targets: Vec<NoiseTarget>,
    /// Noise scales relative to the activation norm (weights: their RMS), increasing.
    pub scales: Vec<f64>,
    /// Independent noise draws per (target, scale).
    pub draws: usize,
    pub seed: u64,
    /// Generation length and stop token of the responses.
    pub max_new: usize,
    pub stop: Option<usize>,
}

impl NoiseParams {
    pub fn new(max_new: usize, stop: Option<usize>, seed: u64) -> Self {
        Self {
            targets: Vec::new(),
            scales: vec![0.125, 0.25, 0.5, 1.0],
            draws: 4,
            seed,
            max_new,
            stop,
        }
    }

    fn check(&self) -> Result<()> {
        if self.scales.is_empty() || self.scales.iter().any(|s| !(s.is_finite() && *s > 0.0)) {
            return Err(CausalError::InvalidParam {
                param: "scales",
                reason: format!("need positive finite scales, got {:?}", self.scales),
            });
        }
        if self.draws == 0 || self.max_new == 0 {
            return Err(CausalError::InvalidParam {
                param: "draws/max_new",
                reason: "need at least one draw and one generated token".into(),
            });
        }
        Ok(())
    }
}

/// The residual-stream targets of `model` and its weights.
pub fn default_targets(model: &Transformer) -> Vec<NoiseTarget> {
    let layers = model.config().n_layers;
    let mut t: Vec<NoiseTarget> = (0..layers)
        .map(|l| NoiseTarget::Activation(HookPoint::resid_pre(l)))
        .collect();
    if layers > 0 {
        t.push(NoiseTarget::Activation(HookPoint::resid_post(layers - 1)));
    }
    t.push(NoiseTarget::Weights);
    t
}

/// One point of the dose-response curve.
#[derive(Clone, Debug, PartialEq)]
pub struct DosePoint {
    pub target: NoiseTarget,
    pub scale: f64,
    /// Pooled over the draws.
    pub stats: ChangeStats,
}

/// A model's noise-injection result.
#[derive(Clone, Debug, PartialEq)]
pub struct NoiseReport {
    /// The largest pooled `harmful_consistency` over targets and scales.
    pub score: f64,
    /// Index into `curve` of the point that gave `score`.
    pub top: usize,
    pub curve: Vec<DosePoint>,
}

/// A hook adding seeded Gaussian noise of relative size `scale` at `point`. The noise of an
/// element depends only on the seed and the element's (row, position, feature) index, so a
/// position keeps the same noise through every step of a generation.
pub fn activation_noise(point: HookPoint, scale: f64, seed: u64) -> Hook {
    let f = move |_: HookPoint, a: &ArrayD<f32>| -> Option<ArrayD<f32>> {
        let shape = a.shape().to_vec();
        if shape.len() < 3 {
            return None;
        }
        let features: usize = shape[2..].iter().product();
        let flat = a
            .view()
            .into_shape_with_order((shape[0], shape[1], features))
            .ok()?;
        let mut out = flat.to_owned();
        for (b, mut rows) in out.axis_iter_mut(Axis(0)).enumerate() {
            for (p, mut row) in rows.axis_iter_mut(Axis(0)).enumerate() {
                let norm = row.iter().map(|x| x * x).sum::<f32>().sqrt();
                let sd = scale as f32 * norm / (features as f32).sqrt();
                for (j, x) in row.iter_mut().enumerate() {
                    *x += sd * gaussian(seed, b, p, j);
                }
            }
        }
        out.into_shape_with_order(shape).ok()
    };
    Hook::new(point, Intervention::Custom(Box::new(f)))
}

/// A copy of `model` with every parameter tensor perturbed by Gaussian noise of `scale` times
/// its RMS. The original is untouched (parameters are copied on write).
pub fn weight_noise(model: &Transformer, scale: f64, seed: u64) -> Transformer {
    let mut noisy = model.clone();
    let mut rng = StdRng::seed_from_u64(seed);
    noisy.visit_params_mut(&mut |_, mut p| {
        let mut values = p.values();
        let rms = (values.iter().map(|x| x * x).sum::<f32>() / values.len().max(1) as f32).sqrt();
        for v in &mut values {
            let g: f32 = StandardNormal.sample(&mut rng);
            *v += scale as f32 * rms * g;
        }
        p.set_values(&values);
    });
    noisy
}

/// Runs the noise sweep on generic untriggered `prompts`.
///
/// # Errors
/// Bad parameters, no prompts, a failed model run, or no prompt the unperturbed model answers.
pub fn noise_sweep(
    model: &Transformer,
    prompts: &[Tokens],
    checker: &dyn TaskChecker,
    params: &NoiseParams,
) -> Result<NoiseReport> {
    params.check()?;
    let baseline = Greedy::new(model, params.max_new, params.stop).respond(prompts)?;
    let targets = if params.targets.is_empty() {
        default_targets(model)
    } else {
        params.targets.clone()
    };
    let mut curve = Vec::new();
    for (ti, &target) in targets.iter().enumerate() {
        for (si, &scale) in params.scales.iter().enumerate() {
            let mut responses: Vec<Tokens> = Vec::new();
            for draw in 0..params.draws {
                let seed = mix(params.seed, &[ti as u64, si as u64, draw as u64]);
                let r = match target {
                    NoiseTarget::Activation(point) => {
                        let hooks = move || Hooks::new().with(activation_noise(point, scale, seed));
                        HookedGreedy {
                            model,
                            max_new: params.max_new,
                            stop: params.stop,
                            hooks: &hooks,
                        }
                        .respond(prompts)?
                    }
                    NoiseTarget::Weights => {
                        let noisy = weight_noise(model, scale, seed);
                        Greedy::new(&noisy, params.max_new, params.stop).respond(prompts)?
                    }
                };
                responses.extend(r);
            }
            let runs: Vec<(usize, &[usize], &[usize])> = responses
                .iter()
                .enumerate()
                .map(|(k, r)| {
                    let i = k % prompts.len();
                    (i, prompts[i].as_slice(), r.as_slice())
                })
                .collect();
            curve.push(DosePoint {
                target,
                scale,
                stats: change_stats(prompts, &baseline, &runs, checker)?,
            });
        }
    }
    let (top, score) = curve
        .iter()
        .enumerate()
        .fold((0, f64::NEG_INFINITY), |(bi, bs), (i, d)| {
            let s = d.stats.harmful_consistency;
            if s > bs {
                (i, s)
            } else {
                (bi, bs)
            }
        });
    Ok(NoiseReport { score, top, curve })
}

/// SplitMix64 of a seed and some words.
pub fn mix(seed: u64, words: &[u64]) -> u64 {
    words.iter().fold(splitmix(seed), |h, &w| splitmix(h ^ w))
}

fn splitmix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A standard normal draw determined by the seed and an element index (Box-Muller).
fn gaussian(seed: u64, b: usize, p: usize, j: usize) -> f32 {
    let h = mix(seed, &[b as u64, p as u64, j as u64]);
    let u1 = ((h >> 11) as f64 + 0.5) / (1u64 << 53) as f64;
    let u2 = (splitmix(h) >> 11) as f64 / (1u64 << 53) as f64;
    ((-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()) as f32
}

#[cfg(test)]
mod tests {
    use super::*;
    use mesa_nn::{CacheFilter, Input, Preset, Tiny};

    #[test]
    fn activation_noise_has_the_requested_relative_size_and_is_seeded() {
        let model = Transformer::new(Tiny::language_model(12, 24), 1).expect("model");
        let input = Input::tokens(&[vec![1, 2, 3, 4, 5, 6, 7, 8]]).expect("input");
        let point = HookPoint::resid_pre(1);
        let filter = CacheFilter::Only(vec![point]);
        let (_, clean) = model.run_with_cache(&input, &filter).expect("clean");
        let run = |seed| {
            let hooks = Hooks::new().with(activation_noise(point, 0.5, seed));
            let (_, c) = model
                .run_with_hooks_and_cache(&input, &hooks, &filter)
                .expect("noisy");
            c.array3(point).expect("cached")
        };
        let a = clean.array3(point).expect("cached");
        let (n1, n2) = (run(3), run(3));
        assert_eq!(n1, n2);
        assert_ne!(n1, run(4));
        let (mut ratio, mut count) = (0.0, 0.0);
        for p in 0..8 {
            let base = a.index_axis(Axis(1), p);
            let diff = &n1.index_axis(Axis(1), p) - &base;
            ratio += diff.mapv(|x| x * x).sum().sqrt() / base.mapv(|x| x * x).sum().sqrt();
            count += 1.0;
        }
        let mean = ratio / count;
        assert!((mean - 0.5).abs() < 0.15, "mean relative noise norm {mean}");
    }

    #[test]
    fn weight_noise_leaves_the_original_untouched() {
        let model = Transformer::new(Tiny::language_model(12, 24), 1).expect("model");
        let before = model.named_params();
        let noisy = weight_noise(&model, 0.1, 9);
        assert_eq!(model.named_params(), before);
        assert_ne!(noisy.named_params(), before);
    }
}
