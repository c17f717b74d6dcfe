//! Model configuration: one transformer type with pluggable parts, and named presets.
//!
//! Presets are types (`Tiny`, `Small`) that fix the layer sizes; the parts that differ between
//! organisms (token or real-vector input, softmax or linear attention, MLP or not, output width)
//! are fields of [`ModelConfig`]. Batch size and sequence length are always runtime.

use serde::{Deserialize, Serialize};

use crate::error::{NnError, Result};

/// What the model reads at each position.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum InputFront {
    /// Token ids in `0..vocab`, looked up in an embedding table (`W_E`).
    Tokens { vocab: usize },
    /// Real vectors of width `dim`, mapped into the residual stream by a linear layer
    /// (in-context regression feeds `(x_i, y_i)` this way).
    Vectors { dim: usize },
}

/// How each block mixes positions.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AttentionKind {
    /// Causal softmax attention, scores scaled by `1/sqrt(d_head)`.
    Softmax,
    /// Causal linear attention: the pattern is the raw score `q.k` (no softmax), scaled by
    /// `1/n_positions` (von Oswald et al. 2023 use this form to show in-context gradient descent).
    Linear,
}

/// Full description of a model's shape. Stored in every checkpoint.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ModelConfig {
    /// Name of the preset the sizes came from (`tiny`, `small`, or `custom`).
    pub preset: String,
    pub input: InputFront,
    /// Width of the output head: vocabulary size for language models, 1 for regression, number
    /// of actions for a policy.
    pub d_out: usize,
    pub d_model: usize,
    pub n_heads: usize,
    pub d_head: usize,
    pub n_layers: usize,
    /// Hidden width of the MLP; 0 means the blocks have no MLP (attention-only model).
    pub d_mlp: usize,
    /// Longest sequence the learned positional embedding covers; 0 means no positional embedding.
    pub max_seq: usize,
    pub attention: AttentionKind,
    /// Pre-LayerNorm before attention, MLP and unembedding; false gives a LayerNorm-free model.
    pub layer_norm: bool,
}

/// A named set of layer sizes.
pub trait Preset {
    const NAME: &'static str;
    const D_MODEL: usize;
    const N_HEADS: usize;
    const N_LAYERS: usize;
    const D_MLP: usize;

    /// A causal softmax language model over `vocab` tokens with a learned positional embedding.
    fn language_model(vocab: usize, max_seq: usize) -> ModelConfig {
        ModelConfig {
            preset: Self::NAME.to_string(),
            input: InputFront::Tokens { vocab },
            d_out: vocab,
            d_model: Self::D_MODEL,
            n_heads: Self::N_HEADS,
            d_head: Self::D_MODEL / Self::N_HEADS,
            n_layers: Self::N_LAYERS,
            d_mlp: Self::D_MLP,
            max_seq,
            attention: AttentionKind::Softmax,
            layer_norm: true,
        }
    }
}

/// d_model 32, 2 heads, 2 layers, MLP 128: trains in seconds in tests.
#[derive(Clone, Copy, Debug)]
pub struct Tiny;
impl Preset for Tiny {
    const NAME: &'static str = "tiny";
    const D_MODEL: usize = 32;
    const N_HEADS: usize = 2;
    const N_LAYERS: usize = 2;
    const D_MLP: usize = 128;
}

/// d_model 64, 4 heads, 2 layers, MLP 256: the benchmark shape.
#[derive(Clone, Copy, Debug)]
pub struct Small;
impl Preset for Small {
    const NAME: &'static str = "small";
    const D_MODEL: usize = 64;
    const N_HEADS: usize = 4;
    const N_LAYERS: usize = 2;
    const D_MLP: usize = 256;
}

/// d_model 64, 4 heads, 4 layers, MLP 256.
#[derive(Clone, Copy, Debug)]
pub struct Small4;
impl Preset for Small4 {
    const NAME: &'static str = "small4";
    const D_MODEL: usize = 64;
    const N_HEADS: usize = 4;
    const N_LAYERS: usize = 4;
    const D_MLP: usize = 256;
}

impl ModelConfig {
    /// Width of the input front: vocabulary size or vector width.
    pub fn d_in(&self) -> usize {
        match self.input {
            InputFront::Tokens { vocab } => vocab,
            InputFront::Vectors { dim } => dim,
        }
    }

    /// Checks every size; called by every constructor and loader. Every width is at most
    /// [`MAX_WIDTH`], the depth at most [`MAX_LAYERS`] and the parameter count at most
    /// [`MAX_PARAMS`], so a crafted checkpoint sidecar cannot make a loader allocate without
    /// limit.
    pub fn validate(&self) -> Result<()> {
        let bad =
            |field: &'static str, reason: String| Err(NnError::InvalidConfig { field, reason });
        let widths = [
            ("input", self.d_in()),
            ("d_out", self.d_out),
            ("d_model", self.d_model),
            ("n_heads", self.n_heads),
            ("d_head", self.d_head),
            ("d_mlp", self.d_mlp),
            ("max_seq", self.max_seq),
        ];
        for (field, value) in widths {
            if value > MAX_WIDTH {
                return bad(field, format!("{value} is above the limit of {MAX_WIDTH}"));
            }
        }
        if self.d_in() == 0 {
            return bad(
                "input",
                "vocabulary size / vector width must be positive".into(),
            );
        }
        if self.d_out == 0 {
            return bad("d_out", "must be positive".into());
        }
        if self.d_model == 0 {
            return bad("d_model", "must be positive".into());
        }
        if self.n_heads == 0 || self.d_head == 0 {
            return bad("n_heads", "n_heads and d_head must be positive".into());
        }
        if self.n_heads * self.d_head > MAX_WIDTH {
            return bad(
                "n_heads",
                format!(
                    "n_heads * d_head = {} is above the limit of {MAX_WIDTH}",
                    self.n_heads * self.d_head
                ),
            );
        }
        if self.n_layers == 0 || self.n_layers > MAX_LAYERS {
            return bad("n_layers", format!("must be in 1..={MAX_LAYERS}"));
        }
        let params: u128 = self
            .param_shapes()
            .iter()
            .map(|(_, shape)| shape.iter().map(|&d| d as u128).product::<u128>())
            .sum();
        if params > MAX_PARAMS as u128 {
            return bad(
                "d_model",
                format!("the sizes make {params} parameters, above the limit of {MAX_PARAMS}"),
            );
        }
        Ok(())
    }

    /// The name and shape of every parameter this config makes, in checkpoint order (the
    /// names and shapes of [`Transformer::named_params`](crate::Transformer::named_params),
    /// without building the model).
    pub fn param_shapes(&self) -> Vec<(String, Vec<usize>)> {
        let d = self.d_model;
        let hd = self.n_heads * self.d_head;
        let mut out: Vec<(String, Vec<usize>)> = Vec::new();
        let mut push = |name: String, shape: Vec<usize>| out.push((name, shape));
        match self.input {
            InputFront::Tokens { vocab } => push("embed.W_E".into(), vec![vocab, d]),
            InputFront::Vectors { dim } => {
                push("embed.W_in".into(), vec![dim, d]);
                push("embed.b_in".into(), vec![d]);
            }
        }
        if self.max_seq > 0 {
            push("pos_embed.W_pos".into(), vec![self.max_seq, d]);
        }
        for i in 0..self.n_layers {
            if self.layer_norm {
                push(format!("blocks.{i}.ln1.w"), vec![d]);
                push(format!("blocks.{i}.ln1.b"), vec![d]);
            }
            for x in ["Q", "K", "V"] {
                push(format!("blocks.{i}.attn.W_{x}"), vec![d, hd]);
                push(format!("blocks.{i}.attn.b_{x}"), vec![hd]);
            }
            push(format!("blocks.{i}.attn.W_O"), vec![hd, d]);
            push(format!("blocks.{i}.attn.b_O"), vec![d]);
            if self.d_mlp > 0 {
                if self.layer_norm {
                    push(format!("blocks.{i}.ln2.w"), vec![d]);
                    push(format!("blocks.{i}.ln2.b"), vec![d]);
                }
                push(format!("blocks.{i}.mlp.W_in"), vec![d, self.d_mlp]);
                push(format!("blocks.{i}.mlp.b_in"), vec![self.d_mlp]);
                push(format!("blocks.{i}.mlp.W_out"), vec![self.d_mlp, d]);
                push(format!("blocks.{i}.mlp.b_out"), vec![d]);
            }
        }
        if self.layer_norm {
            push("ln_final.w".into(), vec![d]);
            push("ln_final.b".into(), vec![d]);
        }
        push("unembed.W_U".into(), vec![d, self.d_out]);
        push("unembed.b_U".into(), vec![self.d_out]);
        out
    }
}

/// The largest width a [`ModelConfig`] may have (vocabulary, vector width, `d_out`, `d_model`,
/// `n_heads * d_head`, `d_mlp`, `max_seq`).
pub const MAX_WIDTH: usize = 1 << 16;
/// The most blocks a [`ModelConfig`] may have.
pub const MAX_LAYERS: usize = 256;
/// The most parameters a [`ModelConfig`] may make (1 GiB of f32).
pub const MAX_PARAMS: usize = 1 << 28;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Transformer;

    #[test]
    fn param_shapes_match_the_built_model() {
        let mut configs = vec![Tiny::language_model(7, 5), Small4::language_model(3, 0)];
        let mut vectors = Small::language_model(2, 4);
        vectors.input = InputFront::Vectors { dim: 3 };
        vectors.d_out = 1;
        vectors.d_mlp = 0;
        vectors.layer_norm = false;
        vectors.attention = AttentionKind::Linear;
        configs.push(vectors);
        let mut no_norm = Tiny::language_model(4, 3);
        no_norm.layer_norm = false;
        configs.push(no_norm);
        for config in configs {
            let built: Vec<(String, Vec<usize>)> = Transformer::new(config.clone(), 0)
                .expect("model")
                .named_params()
                .into_iter()
                .map(|(name, shape, _)| (name, shape))
                .collect();
            assert_eq!(config.param_shapes(), built, "{config:?}");
        }
    }

    #[test]
    fn sizes_above_the_limits_are_refused_naming_the_field() {
        let base = Tiny::language_model(10, 16);
        base.validate().expect("tiny is valid");
        let check = |config: ModelConfig, field: &str| match config.validate() {
            Err(NnError::InvalidConfig { field: f, .. }) => assert_eq!(f, field, "{config:?}"),
            other => panic!("{config:?}: expected an error on {field}, got {other:?}"),
        };
        check(
            ModelConfig {
                input: InputFront::Tokens { vocab: usize::MAX },
                ..base.clone()
            },
            "input",
        );
        check(
            ModelConfig {
                d_model: MAX_WIDTH + 1,
                ..base.clone()
            },
            "d_model",
        );
        check(
            ModelConfig {
                max_seq: usize::MAX,
                ..base.clone()
            },
            "max_seq",
        );
        check(
            ModelConfig {
                n_heads: 1 << 10,
                d_head: 1 << 10,
                ..base.clone()
            },
            "n_heads",
        );
        check(
            ModelConfig {
                n_layers: MAX_LAYERS + 1,
                ..base.clone()
            },
            "n_layers",
        );
        // Every width within its limit, but together far too many parameters.
        check(
            ModelConfig {
                input: InputFront::Tokens { vocab: MAX_WIDTH },
                d_out: MAX_WIDTH,
                d_model: MAX_WIDTH,
                ..base.clone()
            },
            "d_model",
        );
    }
}
