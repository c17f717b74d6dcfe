//! Named hook points, the activation cache, and interventions.
//!
//! Hook points carry TransformerLens names (`blocks.0.hook_resid_post`, ...) so researchers know
//! them at once, but inside the code they are typed ([`HookPoint`]): a typo fails at compile time,
//! and strings are parsed only at the CLI edge ([`HookPoint::from_str`]).
//!
//! | name | shape |
//! |---|---|
//! | `hook_embed` | `[batch, pos, d_model]` |
//! | `hook_pos_embed` | `[batch, pos, d_model]` (only with a positional embedding) |
//! | `blocks.{i}.hook_resid_pre` | `[batch, pos, d_model]` |
//! | `blocks.{i}.attn.hook_pattern` | `[batch, head, query_pos, key_pos]` |
//! | `blocks.{i}.attn.hook_z` | `[batch, pos, head, d_head]` |
//! | `blocks.{i}.hook_attn_out` | `[batch, pos, d_model]` |
//! | `blocks.{i}.hook_resid_mid` | `[batch, pos, d_model]` |
//! | `blocks.{i}.hook_mlp_out` | `[batch, pos, d_model]` (only with an MLP) |
//! | `blocks.{i}.hook_resid_post` | `[batch, pos, d_model]` |
//! | `ln_final.hook_normalized` | `[batch, pos, d_model]` |

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use dfdx::prelude::*;
use ndarray::{Array3, ArrayD, Dimension, IxDyn};

use crate::config::ModelConfig;
use crate::error::{NnError, Result};
use crate::params::dense_values;

/// Where in a block a hook sits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum BlockHook {
    ResidPre,
    AttnPattern,
    AttnZ,
    AttnOut,
    ResidMid,
    MlpOut,
    ResidPost,
}

/// A hook point: a named place in the forward pass whose activation can be read or replaced.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum HookPoint {
    Embed,
    PosEmbed,
    Block { layer: usize, kind: BlockHook },
    LnFinal,
}

impl HookPoint {
    pub fn resid_pre(layer: usize) -> Self {
        Self::Block {
            layer,
            kind: BlockHook::ResidPre,
        }
    }
    pub fn resid_mid(layer: usize) -> Self {
        Self::Block {
            layer,
            kind: BlockHook::ResidMid,
        }
    }
    pub fn resid_post(layer: usize) -> Self {
        Self::Block {
            layer,
            kind: BlockHook::ResidPost,
        }
    }
    pub fn attn_pattern(layer: usize) -> Self {
        Self::Block {
            layer,
            kind: BlockHook::AttnPattern,
        }
    }
    pub fn attn_z(layer: usize) -> Self {
        Self::Block {
            layer,
            kind: BlockHook::AttnZ,
        }
    }
    pub fn attn_out(layer: usize) -> Self {
        Self::Block {
            layer,
            kind: BlockHook::AttnOut,
        }
    }
    pub fn mlp_out(layer: usize) -> Self {
        Self::Block {
            layer,
            kind: BlockHook::MlpOut,
        }
    }

    /// Every hook point a model with this config has, in forward order.
    pub fn all(config: &ModelConfig) -> Vec<HookPoint> {
        let mut points = vec![HookPoint::Embed];
        if config.max_seq > 0 {
            points.push(HookPoint::PosEmbed);
        }
        for layer in 0..config.n_layers {
            for kind in [
                BlockHook::ResidPre,
                BlockHook::AttnPattern,
                BlockHook::AttnZ,
                BlockHook::AttnOut,
                BlockHook::ResidMid,
                BlockHook::MlpOut,
                BlockHook::ResidPost,
            ] {
                if kind == BlockHook::MlpOut && config.d_mlp == 0 {
                    continue;
                }
                points.push(HookPoint::Block { layer, kind });
            }
        }
        points.push(HookPoint::LnFinal);
        points
    }

    /// The shape the activation has for a batch of `batch` sequences of `seq` positions.
    pub fn shape(&self, config: &ModelConfig, batch: usize, seq: usize) -> Vec<usize> {
        match self {
            HookPoint::Block {
                kind: BlockHook::AttnPattern,
                ..
            } => {
                vec![batch, config.n_heads, seq, seq]
            }
            HookPoint::Block {
                kind: BlockHook::AttnZ,
                ..
            } => {
                vec![batch, seq, config.n_heads, config.d_head]
            }
            _ => vec![batch, seq, config.d_model],
        }
    }

    /// Axis that indexes heads, for per-head interventions.
    pub fn head_axis(&self) -> Option<usize> {
        match self {
            HookPoint::Block {
                kind: BlockHook::AttnPattern,
                ..
            } => Some(1),
            HookPoint::Block {
                kind: BlockHook::AttnZ,
                ..
            } => Some(2),
            _ => None,
        }
    }

    /// Axis that indexes positions (query positions for the attention pattern).
    pub fn position_axis(&self) -> usize {
        match self {
            HookPoint::Block {
                kind: BlockHook::AttnPattern,
                ..
            } => 2,
            _ => 1,
        }
    }

    /// Whether a model with this config has this hook point.
    pub fn exists_in(&self, config: &ModelConfig) -> bool {
        match self {
            HookPoint::Embed | HookPoint::LnFinal => true,
            HookPoint::PosEmbed => config.max_seq > 0,
            HookPoint::Block { layer, kind } => {
                *layer < config.n_layers && !(*kind == BlockHook::MlpOut && config.d_mlp == 0)
            }
        }
    }
}

impl fmt::Display for HookPoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HookPoint::Embed => write!(f, "hook_embed"),
            HookPoint::PosEmbed => write!(f, "hook_pos_embed"),
            HookPoint::LnFinal => write!(f, "ln_final.hook_normalized"),
            HookPoint::Block { layer, kind } => {
                let suffix = match kind {
                    BlockHook::ResidPre => "hook_resid_pre",
                    BlockHook::AttnPattern => "attn.hook_pattern",
                    BlockHook::AttnZ => "attn.hook_z",
                    BlockHook::AttnOut => "hook_attn_out",
                    BlockHook::ResidMid => "hook_resid_mid",
                    BlockHook::MlpOut => "hook_mlp_out",
                    BlockHook::ResidPost => "hook_resid_post",
                };
                write!(f, "blocks.{layer}.{suffix}")
            }
        }
    }
}

impl FromStr for HookPoint {
    type Err = NnError;
    fn from_str(s: &str) -> Result<Self> {
        let unknown = || NnError::UnknownHookName(s.to_string());
        match s {
            "hook_embed" => return Ok(HookPoint::Embed),
            "hook_pos_embed" => return Ok(HookPoint::PosEmbed),
            "ln_final.hook_normalized" => return Ok(HookPoint::LnFinal),
            _ => {}
        }
        let rest = s.strip_prefix("blocks.").ok_or_else(unknown)?;
        let (layer, suffix) = rest.split_once('.').ok_or_else(unknown)?;
        let layer: usize = layer.parse().map_err(|_| unknown())?;
        let kind = match suffix {
            "hook_resid_pre" => BlockHook::ResidPre,
            "attn.hook_pattern" => BlockHook::AttnPattern,
            "attn.hook_z" => BlockHook::AttnZ,
            "hook_attn_out" => BlockHook::AttnOut,
            "hook_resid_mid" => BlockHook::ResidMid,
            "hook_mlp_out" => BlockHook::MlpOut,
            "hook_resid_post" => BlockHook::ResidPost,
            _ => return Err(unknown()),
        };
        Ok(HookPoint::Block { layer, kind })
    }
}

/// A stored activation. Holds the dfdx tensor itself (no copy), so caching costs almost
/// nothing and gradients can be looked up by the tensor's id after a backward pass.
#[derive(Clone, Debug)]
pub enum CachedTensor {
    Rank3(Tensor<(usize, usize, usize), f32, Cpu>),
    Rank4(Tensor<(usize, usize, usize, usize), f32, Cpu>),
}

impl CachedTensor {
    pub fn shape(&self) -> Vec<usize> {
        match self {
            CachedTensor::Rank3(t) => {
                let (a, b, c) = *t.shape();
                vec![a, b, c]
            }
            CachedTensor::Rank4(t) => {
                let (a, b, c, d) = *t.shape();
                vec![a, b, c, d]
            }
        }
    }

    /// The values as an ndarray (a copy, in row-major order).
    pub fn to_array(&self) -> ArrayD<f32> {
        let (shape, data) = match self {
            CachedTensor::Rank3(t) => (self.shape(), dense_values(t)),
            CachedTensor::Rank4(t) => (self.shape(), dense_values(t)),
        };
        ArrayD::from_shape_vec(IxDyn(&shape), data).expect("tensor length matches its shape")
    }

    /// The gradient of the last backward pass with respect to this activation, if it was
    /// part of that pass.
    pub(crate) fn gradient(&self, grads: &Gradients<f32, Cpu>) -> ArrayD<f32> {
        let (shape, data) = match self {
            CachedTensor::Rank3(t) => (self.shape(), dense_values(&grads.get(t))),
            CachedTensor::Rank4(t) => (self.shape(), dense_values(&grads.get(t))),
        };
        ArrayD::from_shape_vec(IxDyn(&shape), data).expect("gradient length matches its shape")
    }
}

/// Activations of one run, keyed by hook point.
#[derive(Clone, Debug, Default)]
pub struct ActivationCache {
    entries: BTreeMap<HookPoint, CachedTensor>,
}

impl ActivationCache {
    pub(crate) fn insert(&mut self, point: HookPoint, tensor: CachedTensor) {
        self.entries.insert(point, tensor);
    }

    pub fn get(&self, point: HookPoint) -> Option<&CachedTensor> {
        self.entries.get(&point)
    }

    /// The activation at `point` as an ndarray, or an error naming the missing point.
    pub fn array(&self, point: HookPoint) -> Result<ArrayD<f32>> {
        self.get(point)
            .map(CachedTensor::to_array)
            .ok_or_else(|| NnError::InvalidHook {
                point: point.to_string(),
                reason: "not in the cache (filtered out, or the model has no such point)".into(),
            })
    }

    /// A residual-stream-shaped activation `[batch, pos, d_model]` as a 3-d array.
    pub fn array3(&self, point: HookPoint) -> Result<Array3<f32>> {
        let a = self.array(point)?;
        a.into_dimensionality().map_err(|_| NnError::InvalidHook {
            point: point.to_string(),
            reason: "activation is not 3-dimensional".into(),
        })
    }

    pub fn points(&self) -> impl Iterator<Item = HookPoint> + '_ {
        self.entries.keys().copied()
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// Which hook points a cached run keeps.
#[derive(Clone, Debug)]
pub enum CacheFilter {
    All,
    Only(Vec<HookPoint>),
}

impl CacheFilter {
    pub fn wants(&self, point: HookPoint) -> bool {
        match self {
            CacheFilter::All => true,
            CacheFilter::Only(points) => points.contains(&point),
        }
    }
}

/// A custom hook function: sees the activation and returns its replacement, or `None` to leave
/// it alone. The replacement is a constant for autograd (gradients stop at replaced values).
pub type HookFn = Box<dyn Fn(HookPoint, &ArrayD<f32>) -> Option<ArrayD<f32>>>;

/// What a hook does to an activation.
pub enum Intervention {
    /// Replace with the given values, for example the same point from another run's cache
    /// (activation patching). Shape must equal the activation's.
    Patch(ArrayD<f32>),
    /// Replace with zeros.
    Zero,
    /// Replace with a mean activation; `mean` has the activation's trailing shape (for a
    /// residual point `[d_model]`) and is broadcast over batch and positions.
    Mean(ArrayD<f32>),
    /// Add `scale * vector` (steering); `vector` has the activation's trailing shape.
    Add { vector: ArrayD<f32>, scale: f32 },
    /// Any function of the activation.
    Custom(HookFn),
}

/// One hook: an intervention at a hook point, restricted to some positions and heads.
pub struct Hook {
    pub point: HookPoint,
    pub intervention: Intervention,
    /// Positions it applies to (query positions for the attention pattern); `None` = all.
    pub positions: Option<Vec<usize>>,
    /// Heads it applies to (pattern and `hook_z` only); `None` = all.
    pub heads: Option<Vec<usize>>,
}

impl Hook {
    pub fn new(point: HookPoint, intervention: Intervention) -> Self {
        Self {
            point,
            intervention,
            positions: None,
            heads: None,
        }
    }
    pub fn at_positions(mut self, positions: Vec<usize>) -> Self {
        self.positions = Some(positions);
        self
    }
    pub fn at_heads(mut self, heads: Vec<usize>) -> Self {
        self.heads = Some(heads);
        self
    }
}

/// The hooks of one call. Hooks are scoped to the call they are passed to: nothing is left
/// registered on the model afterwards.
#[derive(Default)]
pub struct Hooks {
    hooks: Vec<Hook>,
}

impl Hooks {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn with(mut self, hook: Hook) -> Self {
        self.hooks.push(hook);
        self
    }
    pub fn push(&mut self, hook: Hook) {
        self.hooks.push(hook);
    }
    pub fn is_empty(&self) -> bool {
        self.hooks.is_empty()
    }
    pub(crate) fn at(&self, point: HookPoint) -> impl Iterator<Item = &Hook> {
        self.hooks.iter().filter(move |h| h.point == point)
    }
    pub(crate) fn validate(&self, config: &ModelConfig) -> Result<()> {
        for hook in &self.hooks {
            if !hook.point.exists_in(config) {
                return Err(NnError::InvalidHook {
                    point: hook.point.to_string(),
                    reason: "the model has no such hook point".into(),
                });
            }
            if hook.heads.is_some() && hook.point.head_axis().is_none() {
                return Err(NnError::InvalidHook {
                    point: hook.point.to_string(),
                    reason: "per-head selection applies only to attn.hook_pattern and attn.hook_z"
                        .into(),
                });
            }
            if let Some(heads) = &hook.heads {
                if let Some(&h) = heads.iter().find(|&&h| h >= config.n_heads) {
                    return Err(NnError::InvalidHook {
                        point: hook.point.to_string(),
                        reason: format!("head {h} out of range (model has {})", config.n_heads),
                    });
                }
            }
        }
        Ok(())
    }
}

/// Turns a hook into `new = old * keep + add`, with `keep` in {0, 1}. Every intervention has
/// this form, so one tensor expression applies them all and gradients flow through `old` where
/// `keep` is 1. Returns `None` when the hook leaves everything as it is.
pub(crate) fn keep_and_add(hook: &Hook, old: &ArrayD<f32>) -> Result<Option<(Vec<f32>, Vec<f32>)>> {
    let shape = old.shape().to_vec();
    let err = |reason: String| NnError::InvalidHook {
        point: hook.point.to_string(),
        reason,
    };
    let trailing_broadcast = |v: &ArrayD<f32>| -> Result<ArrayD<f32>> {
        v.broadcast(IxDyn(&shape))
            .map(|b| b.to_owned())
            .ok_or_else(|| {
                err(format!(
                    "vector of shape {:?} does not broadcast to activation shape {:?}",
                    v.shape(),
                    shape
                ))
            })
    };
    let (replace, values): (bool, ArrayD<f32>) = match &hook.intervention {
        Intervention::Patch(values) => {
            if values.shape() != shape.as_slice() {
                return Err(err(format!(
                    "patch of shape {:?} does not match activation shape {:?}",
                    values.shape(),
                    shape
                )));
            }
            (true, values.clone())
        }
        Intervention::Zero => (true, ArrayD::zeros(IxDyn(&shape))),
        Intervention::Mean(mean) => (true, trailing_broadcast(mean)?),
        Intervention::Add { vector, scale } => (false, trailing_broadcast(vector)? * *scale),
        Intervention::Custom(f) => match f(hook.point, old) {
            None => return Ok(None),
            Some(values) => {
                if values.shape() != shape.as_slice() {
                    return Err(err(format!(
                        "custom hook returned shape {:?}, activation shape is {:?}",
                        values.shape(),
                        shape
                    )));
                }
                (true, values)
            }
        },
    };
    let pos_axis = hook.point.position_axis();
    if let Some(positions) = &hook.positions {
        if let Some(&p) = positions.iter().find(|&&p| p >= shape[pos_axis]) {
            return Err(err(format!(
                "position {p} out of range (sequence length {})",
                shape[pos_axis]
            )));
        }
    }
    let selected = |index: &[usize]| -> bool {
        let pos_ok = hook
            .positions
            .as_ref()
            .is_none_or(|ps| ps.contains(&index[pos_axis]));
        let head_ok = match (hook.point.head_axis(), &hook.heads) {
            (Some(axis), Some(hs)) => hs.contains(&index[axis]),
            _ => true,
        };
        pos_ok && head_ok
    };
    let n = old.len();
    let mut keep = vec![1.0f32; n];
    let mut add = vec![0.0f32; n];
    for (flat, (index, value)) in values.indexed_iter().enumerate() {
        if !selected(index.slice()) {
            continue;
        }
        if replace {
            keep[flat] = 0.0;
        }
        add[flat] = *value;
    }
    Ok(Some((keep, add)))
}
