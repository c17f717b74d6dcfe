//! Activations at one hook point and one position per input, as an `[n_inputs, d]` matrix.

use mesa_nn::{BlockHook, CacheFilter, HookPoint, Input, Transformer};
use ndarray::{s, Array2, Axis, Ix3};

use crate::error::{ProbeError, Result};

/// Which position of each input a probe reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Position {
    /// The last token of the input (the default: the position that has read the whole prompt).
    #[default]
    Last,
    /// The mean over every token of the input.
    Mean,
}

/// Inputs are run in batches of this many; shorter ones are right-padded, which a causal model
/// cannot see from the positions that are read.
const BATCH: usize = 64;

/// The activation at `hook` for each input, read at `position`, as `[n_inputs, d]` (`d` is
/// `d_model`, or `n_heads * d_head` for `attn.hook_z`).
///
/// # Errors
/// No inputs, an empty input, a hook the model lacks or that has no position axis of its own
/// (`attn.hook_pattern`), or a failed model run.
pub fn activations(
    model: &Transformer,
    hook: HookPoint,
    inputs: &[Vec<usize>],
    position: Position,
) -> Result<Array2<f64>> {
    if inputs.is_empty() {
        return Err(ProbeError::InvalidData("no inputs".into()));
    }
    if let Some(i) = inputs.iter().position(Vec::is_empty) {
        return Err(ProbeError::InvalidData(format!("input {i} is empty")));
    }
    if matches!(
        hook,
        HookPoint::Block {
            kind: BlockHook::AttnPattern,
            ..
        }
    ) {
        return Err(ProbeError::InvalidData(format!(
            "{hook} has no per-token vector to probe; use a residual-stream hook"
        )));
    }
    let filter = CacheFilter::Only(vec![hook]);
    let mut rows: Vec<f64> = Vec::new();
    let mut width = 0;
    for chunk in inputs.chunks(BATCH) {
        let longest = chunk.iter().map(Vec::len).max().unwrap_or(0);
        let padded: Vec<Vec<usize>> = chunk
            .iter()
            .map(|t| {
                let mut t = t.clone();
                t.resize(longest, 0);
                t
            })
            .collect();
        let (_, cache) = model.run_with_cache(&Input::tokens(&padded)?, &filter)?;
        let act = cache.array(hook)?;
        let shape = act.shape().to_vec();
        // [batch, pos, ...] -> [batch, pos, features]
        let features: usize = shape[2..].iter().product();
        let act = act
            .into_shape_with_order((shape[0], shape[1], features))
            .map_err(|e| ProbeError::InvalidData(format!("{hook}: {e}")))?
            .into_dimensionality::<Ix3>()
            .map_err(|e| ProbeError::InvalidData(format!("{hook}: {e}")))?;
        width = features;
        for (b, tokens) in chunk.iter().enumerate() {
            let len = tokens.len();
            let row = match position {
                Position::Last => act.slice(s![b, len - 1, ..]).to_owned(),
                Position::Mean => act
                    .slice(s![b, ..len, ..])
                    .mean_axis(Axis(0))
                    .expect("len >= 1"),
            };
            rows.extend(row.iter().map(|&v| f64::from(v)));
        }
    }
    Array2::from_shape_vec((inputs.len(), width), rows)
        .map_err(|e| ProbeError::InvalidData(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use mesa_nn::{Preset, Tiny};

    #[test]
    fn right_padding_does_not_change_the_last_token_activation() {
        let model = Transformer::new(Tiny::language_model(12, 16), 3).expect("model");
        let hook = HookPoint::resid_post(0);
        let short = vec![vec![1, 2, 3]];
        let mixed = vec![vec![1, 2, 3], vec![4, 5, 6, 7, 8]];
        let alone = activations(&model, hook, &short, Position::Last).expect("alone");
        let batched = activations(&model, hook, &mixed, Position::Last).expect("batched");
        assert_eq!(batched.nrows(), 2);
        for (a, b) in alone.row(0).iter().zip(batched.row(0)) {
            assert!((a - b).abs() < 1e-5, "{a} vs {b}");
        }
        let mean = activations(&model, hook, &short, Position::Mean).expect("mean");
        assert_eq!(mean.ncols(), alone.ncols());
    }

    #[test]
    fn attention_pattern_and_empty_inputs_are_errors() {
        let model = Transformer::new(Tiny::language_model(12, 16), 3).expect("model");
        let pattern = HookPoint::attn_pattern(0);
        assert!(activations(&model, pattern, &[vec![1]], Position::Last).is_err());
        let hook = HookPoint::resid_post(0);
        assert!(activations(&model, hook, &[], Position::Last).is_err());
        assert!(activations(&model, hook, &[vec![]], Position::Last).is_err());
    }
}
