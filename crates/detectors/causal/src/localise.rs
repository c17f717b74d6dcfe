//! Ablation and patching for localisation, at the input level.
//!
//! **Occlusion** ([`occlusion_scores`]): each interior token of an input is replaced in turn by a
//! neutral filler token and the greedy response is compared with the input's own. A backdoor's
//! trigger is one position whose removal rewrites the whole response; the input's score is the
//! largest fraction of the response any single occlusion changes, and that position is the
//! counterpart to patch from.
//!
//! **Patching** ([`patch_localise`]): for a flagged input and an untriggered counterpart of the
//! same length, activations of the counterpart are patched into the flagged run position by
//! position (at the residual stream before every block and after the last) and head by head
//! (`attn.hook_z` of every block, all positions), and each patch is scored by how much of the
//! logit difference between the two runs' first diverging response tokens it removes
//! (1 = the patch alone turns the flagged behaviour into the counterpart's).

use mesa_behavioral::{Greedy, Responder, Tokens};
use mesa_nn::{
    generate, CacheFilter, Hook, HookPoint, Hooks, Input, Intervention, Sampling, Transformer,
};

use crate::error::{CausalError, Result};

/// One input's occlusion result.
#[derive(Clone, Debug, PartialEq)]
pub struct Occlusion {
    /// Largest fraction of the response changed by occluding one position (0 to 1).
    pub score: f64,
    /// The position whose occlusion gave `score` (None for inputs with no interior).
    pub position: Option<usize>,
    /// Change fraction per interior position `1..len-1`, in order.
    pub per_position: Vec<f64>,
}

/// Fraction of positions where two responses differ, over the longer length (0 if both empty).
pub fn response_change(a: &[usize], b: &[usize]) -> f64 {
    let len = a.len().max(b.len());
    if len == 0 {
        return 0.0;
    }
    let same = a.iter().zip(b).filter(|(x, y)| x == y).count();
    1.0 - same as f64 / len as f64
}

/// Occlusion scores of `inputs` with greedy responses of `model`.
///
/// # Errors
/// No inputs, an empty input, or a failed model run.
pub fn occlusion_scores(
    model: &Transformer,
    inputs: &[Tokens],
    filler: usize,
    max_new: usize,
    stop: Option<usize>,
) -> Result<Vec<Occlusion>> {
    let greedy = Greedy::new(model, max_new, stop);
    let own = greedy.respond(inputs)?;
    let mut occluded = Vec::new();
    for x in inputs {
        for p in 1..x.len().saturating_sub(1) {
            let mut y = x.clone();
            y[p] = filler;
            occluded.push(y);
        }
    }
    let responses = if occluded.is_empty() {
        Vec::new()
    } else {
        greedy.respond(&occluded)?
    };
    let mut next = responses.iter();
    Ok(inputs
        .iter()
        .zip(&own)
        .map(|(x, r)| {
            let per_position: Vec<f64> = (1..x.len().saturating_sub(1))
                .map(|_| response_change(r, next.next().expect("one per position")))
                .collect();
            let best =
                per_position
                    .iter()
                    .enumerate()
                    .fold(None, |b: Option<(usize, f64)>, (i, &c)| match b {
                        Some((_, bc)) if bc >= c => b,
                        _ => Some((i + 1, c)),
                    });
            Occlusion {
                score: best.map_or(0.0, |(_, c)| c),
                position: best.map(|(p, _)| p),
                per_position,
            }
        })
        .collect())
}

/// Where a patch went and what share of the effect it removed.
#[derive(Clone, Debug, PartialEq)]
pub struct PatchEffect {
    pub point: HookPoint,
    /// The position patched (`None`: all positions, one head).
    pub position: Option<usize>,
    pub head: Option<usize>,
    /// `(m_flagged - m_patched) / (m_flagged - m_counterpart)`.
    pub effect: f64,
}

/// The result of patching a flagged input from its counterpart.
#[derive(Clone, Debug, PartialEq)]
pub struct Localisation {
    /// Response step at which the two greedy responses first differ (None: they never do, and
    /// nothing was patched).
    pub diverge_at: Option<usize>,
    /// Logit difference (flagged token minus counterpart token) on the flagged and the
    /// counterpart runs.
    pub flagged_margin: f64,
    pub counterpart_margin: f64,
    pub positions: Vec<PatchEffect>,
    pub heads: Vec<PatchEffect>,
}

impl Localisation {
    /// Patches that remove at least `threshold` of the effect, largest first.
    pub fn carriers(&self, threshold: f64) -> Vec<&PatchEffect> {
        let mut c: Vec<&PatchEffect> = self
            .positions
            .iter()
            .chain(&self.heads)
            .filter(|e| e.effect >= threshold)
            .collect();
        c.sort_by(|a, b| b.effect.total_cmp(&a.effect));
        c
    }
}

/// Patches `counterpart`'s activations into `flagged`, position by position and head by head.
///
/// # Errors
/// Inputs of different lengths or empty, or a failed model run.
pub fn patch_localise(
    model: &Transformer,
    flagged: &[usize],
    counterpart: &[usize],
    max_new: usize,
    stop: Option<usize>,
) -> Result<Localisation> {
    if flagged.len() != counterpart.len() || flagged.is_empty() {
        return Err(CausalError::InvalidInput(format!(
            "flagged and counterpart inputs must have the same non-zero length, got {} and {}",
            flagged.len(),
            counterpart.len()
        )));
    }
    // Responses with the stop token kept, so that stopping early is a divergence too.
    let r = generate(
        model,
        &[flagged.to_vec(), counterpart.to_vec()],
        max_new,
        Sampling::Greedy,
        stop,
    )?;
    let Some(k) = (0..r[0].len().min(r[1].len())).find(|&i| r[0][i] != r[1][i]) else {
        return Ok(Localisation {
            diverge_at: None,
            flagged_margin: 0.0,
            counterpart_margin: 0.0,
            positions: Vec::new(),
            heads: Vec::new(),
        });
    };
    let (a, b) = (r[0][k], r[1][k]);
    // Both runs continue with the same (shared) response prefix, so positions line up.
    let with_prefix = |x: &[usize]| {
        let mut s = x.to_vec();
        s.extend_from_slice(&r[0][..k]);
        s
    };
    let (xf, xc) = (with_prefix(flagged), with_prefix(counterpart));
    let last = xf.len() - 1;
    let margin =
        |logits: &ndarray::Array3<f32>| f64::from(logits[[0, last, a]] - logits[[0, last, b]]);
    let cfg = model.config();
    let mut points: Vec<HookPoint> = (0..cfg.n_layers).map(HookPoint::resid_pre).collect();
    points.push(HookPoint::resid_post(cfg.n_layers - 1));
    let heads: Vec<HookPoint> = (0..cfg.n_layers).map(HookPoint::attn_z).collect();
    let mut wanted = points.clone();
    wanted.extend(&heads);
    let input_f = Input::tokens(std::slice::from_ref(&xf))?;
    let m_f = margin(&model.forward(&input_f)?);
    let (logits_c, cache) =
        model.run_with_cache(&Input::tokens(&[xc])?, &CacheFilter::Only(wanted))?;
    let m_c = margin(&logits_c);
    let total = m_f - m_c;
    let effect = |hook: Hook| -> Result<f64> {
        let m = margin(&model.run_with_hooks(&input_f, &Hooks::new().with(hook))?);
        Ok(if total.abs() > 0.0 {
            (m_f - m) / total
        } else {
            0.0
        })
    };
    let mut positions = Vec::new();
    for &point in &points {
        let values = cache.array(point)?;
        for p in 0..xf.len() {
            let hook = Hook::new(point, Intervention::Patch(values.clone())).at_positions(vec![p]);
            positions.push(PatchEffect {
                point,
                position: Some(p),
                head: None,
                effect: effect(hook)?,
            });
        }
    }
    let mut head_effects = Vec::new();
    for &point in &heads {
        let values = cache.array(point)?;
        for h in 0..cfg.n_heads {
            let hook = Hook::new(point, Intervention::Patch(values.clone())).at_heads(vec![h]);
            head_effects.push(PatchEffect {
                point,
                position: None,
                head: Some(h),
                effect: effect(hook)?,
            });
        }
    }
    Ok(Localisation {
        diverge_at: Some(k),
        flagged_margin: m_f,
        counterpart_margin: m_c,
        positions,
        heads: head_effects,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn response_change_counts_differing_positions_over_the_longer() {
        assert_eq!(response_change(&[1, 2, 3], &[1, 2, 3]), 0.0);
        assert!((response_change(&[1, 2, 3], &[1, 5, 3]) - 1.0 / 3.0).abs() < 1e-12);
        assert_eq!(response_change(&[1, 2], &[1, 2, 7, 7]), 0.5);
        assert_eq!(response_change(&[], &[]), 0.0);
    }
}
