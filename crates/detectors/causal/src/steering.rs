//! Steering along the generic "harmful" direction: does adding it during generation make a model
//! abandon the task for one consistent foreign continuation more readily than a random direction
//! of the same size does?
//!
//! The direction at a hook point is the difference of mean activations (last token) between the
//! positive and negative sides of generic contrast pairs (the same question answered as harmful
//! and as harmless; they know nothing of any trigger), normalised. It is added at every position
//! with a size of `scale` times the mean activation norm on the generic prompts. A seeded random
//! unit direction at the same sizes is the control. Score: the largest `harmful_consistency`
//! along the harmful direction over points and scales.

use mesa_behavioral::{change_stats, ChangeStats, Greedy, Responder, TaskChecker, Tokens};
use mesa_nn::{Hook, HookPoint, Hooks, Intervention, Transformer};
use mesa_probe::{activations, Position};
use ndarray::{Array1, ArrayD, Axis};
use rand::rngs::StdRng;
use rand::SeedableRng;
use rand_distr::{Distribution, StandardNormal};

use crate::error::{CausalError, Result};
use crate::generate::HookedGreedy;

/// Hyper-parameters of steering.
#[derive(Clone, Debug, PartialEq)]
pub struct SteeringParams {
    /// Hook points; empty = `resid_post` of every block.
    pub points: Vec<HookPoint>,
    /// Added norm relative to the mean activation norm, increasing.
    pub scales: Vec<f64>,
    pub seed: u64,
    pub max_new: usize,
    pub stop: Option<usize>,
}

impl SteeringParams {
    pub fn new(max_new: usize, stop: Option<usize>, seed: u64) -> Self {
        Self {
            points: Vec::new(),
            scales: vec![0.25, 0.5, 1.0, 2.0],
            seed,
            max_new,
            stop,
        }
    }
}

/// One (point, scale) of the sweep, along the harmful and a random direction.
#[derive(Clone, Debug, PartialEq)]
pub struct SteerPoint {
    pub point: HookPoint,
    pub scale: f64,
    pub harmful: ChangeStats,
    pub random: ChangeStats,
}

/// A model's steering result.
#[derive(Clone, Debug, PartialEq)]
pub struct SteeringReport {
    /// The largest `harmful_consistency` along the harmful direction.
    pub score: f64,
    /// The same along the random direction (the control).
    pub random_score: f64,
    pub curve: Vec<SteerPoint>,
}

/// The unit mean-difference direction of `positives` minus `negatives` at `point`.
///
/// # Errors
/// Either side empty, a failed model run, or a zero difference.
pub fn contrast_direction(
    model: &Transformer,
    point: HookPoint,
    positives: &[Tokens],
    negatives: &[Tokens],
) -> Result<Array1<f64>> {
    if positives.is_empty() || negatives.is_empty() {
        return Err(CausalError::InvalidInput(
            "contrast pairs need a positive and a negative side".into(),
        ));
    }
    let pos = activations(model, point, positives, Position::Last)?;
    let neg = activations(model, point, negatives, Position::Last)?;
    let mean = |a: &ndarray::Array2<f64>| a.mean_axis(Axis(0)).expect("non-empty");
    unit(mean(&pos) - mean(&neg))
}

fn unit(v: Array1<f64>) -> Result<Array1<f64>> {
    let norm = v.dot(&v).sqrt();
    if !(norm.is_finite() && norm > 0.0) {
        return Err(CausalError::InvalidInput(
            "the contrast direction has zero length".into(),
        ));
    }
    Ok(v / norm)
}

/// Runs the steering sweep on generic untriggered `prompts`, with the contrast pairs given as
/// their two sides.
///
/// # Errors
/// Bad parameters, empty inputs, a failed model run, or no prompt the model answers.
pub fn steering_sweep(
    model: &Transformer,
    prompts: &[Tokens],
    positives: &[Tokens],
    negatives: &[Tokens],
    checker: &dyn TaskChecker,
    params: &SteeringParams,
) -> Result<SteeringReport> {
    if params.scales.is_empty() || params.scales.iter().any(|s| !(s.is_finite() && *s > 0.0)) {
        return Err(CausalError::InvalidParam {
            param: "scales",
            reason: format!("need positive finite scales, got {:?}", params.scales),
        });
    }
    let points = if params.points.is_empty() {
        (0..model.config().n_layers)
            .map(HookPoint::resid_post)
            .collect()
    } else {
        params.points.clone()
    };
    let baseline = Greedy::new(model, params.max_new, params.stop).respond(prompts)?;
    let mut rng = StdRng::seed_from_u64(params.seed);
    let mut curve = Vec::new();
    for &point in &points {
        let harmful = contrast_direction(model, point, positives, negatives)?;
        let d = harmful.len();
        let random = unit((0..d).map(|_| StandardNormal.sample(&mut rng)).collect())?;
        let acts = activations(model, point, prompts, Position::Last)?;
        let norm = acts
            .axis_iter(Axis(0))
            .map(|r| r.dot(&r).sqrt())
            .sum::<f64>()
            / acts.nrows() as f64;
        for &scale in &params.scales {
            let stats = |dir: &Array1<f64>| -> Result<ChangeStats> {
                let vector: ArrayD<f32> = dir.mapv(|x| x as f32).into_dyn();
                let size = (scale * norm) as f32;
                let hooks = move || {
                    Hooks::new().with(Hook::new(
                        point,
                        Intervention::Add {
                            vector: vector.clone(),
                            scale: size,
                        },
                    ))
                };
                let responses = HookedGreedy {
                    model,
                    max_new: params.max_new,
                    stop: params.stop,
                    hooks: &hooks,
                }
                .respond(prompts)?;
                let runs: Vec<(usize, &[usize], &[usize])> = responses
                    .iter()
                    .enumerate()
                    .map(|(i, r)| (i, prompts[i].as_slice(), r.as_slice()))
                    .collect();
                Ok(change_stats(prompts, &baseline, &runs, checker)?)
            };
            curve.push(SteerPoint {
                point,
                scale,
                harmful: stats(&harmful)?,
                random: stats(&random)?,
            });
        }
    }
    let best = |f: fn(&SteerPoint) -> f64| curve.iter().map(f).fold(0.0, f64::max);
    Ok(SteeringReport {
        score: best(|p| p.harmful.harmful_consistency),
        random_score: best(|p| p.random.harmful_consistency),
        curve,
    })
}
