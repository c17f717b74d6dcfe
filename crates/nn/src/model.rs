//! The transformer: parameters, the hooked forward pass, cached and hooked runs, gradients.
//!
//! One forward function, generic over dfdx's tape type, serves every use: the plain forward
//! (no tape), the training step (owned tape), cached runs and hooked runs. A hook site applies
//! the call's interventions and records the activation, then the computation goes on with
//! the (possibly replaced) tensor, so a gradient flows through hooked runs as through plain ones.

use std::collections::BTreeMap;

use dfdx::prelude::*;
use ndarray::{Array2, Array3, ArrayD, IxDyn};
use rand::rngs::StdRng;
use rand::SeedableRng;

use crate::config::{InputFront, ModelConfig};
use crate::error::{NnError, Result};
use crate::fused::{self, Activation};
use crate::hooks::{
    keep_and_add, ActivationCache, BlockHook, CacheFilter, CachedTensor, HookPoint, Hooks,
};
use crate::params::{constant_vector, dense_values, normal_matrix, Matrix, ParamMut, Vector};

type T3<T> = Tensor<(usize, usize, usize), f32, Cpu, T>;
type T4<T> = Tensor<(usize, usize, usize, usize), f32, Cpu, T>;
/// Logits `[batch, pos, d_out]` carrying the gradient tape, as given to a gradient objective.
pub type TapedLogits = T3<OwnedTape<f32, Cpu>>;
/// A scalar carrying the gradient tape: what a gradient objective returns.
pub type TapedScalar = Tensor<(), f32, Cpu, OwnedTape<f32, Cpu>>;

const LN_EPS: f32 = 1e-5;

/// A batch of model inputs: token ids `[batch, pos]` or real vectors `[batch, pos, dim]`.
#[derive(Clone, Debug, PartialEq)]
pub enum Input {
    Tokens(Array2<usize>),
    Vectors(Array3<f32>),
}

impl Input {
    /// Token sequences of equal length as one batch.
    pub fn tokens(sequences: &[Vec<usize>]) -> Result<Self> {
        let seq = sequences.first().map_or(0, Vec::len);
        if sequences.is_empty() || seq == 0 {
            return Err(NnError::InvalidInput(
                "empty batch or empty sequence".into(),
            ));
        }
        if let Some(bad) = sequences.iter().position(|s| s.len() != seq) {
            return Err(NnError::InvalidInput(format!(
                "sequence {bad} has length {}, sequence 0 has {seq}; pad them to one length",
                sequences[bad].len()
            )));
        }
        let flat = sequences.iter().flatten().copied().collect();
        Ok(Input::Tokens(
            Array2::from_shape_vec((sequences.len(), seq), flat).expect("lengths checked"),
        ))
    }

    pub fn batch(&self) -> usize {
        match self {
            Input::Tokens(t) => t.nrows(),
            Input::Vectors(v) => v.shape()[0],
        }
    }

    pub fn seq_len(&self) -> usize {
        match self {
            Input::Tokens(t) => t.ncols(),
            Input::Vectors(v) => v.shape()[1],
        }
    }
}

#[derive(Clone, Debug)]
struct LayerNorm {
    w: Vector,
    b: Vector,
}

#[derive(Clone, Debug)]
struct Linear {
    w: Matrix,
    b: Vector,
}

#[derive(Clone, Debug)]
struct Block {
    ln1: Option<LayerNorm>,
    q: Linear,
    k: Linear,
    v: Linear,
    o: Linear,
    ln2: Option<LayerNorm>,
    mlp: Option<(Linear, Linear)>,
}

#[derive(Clone, Debug)]
enum Embed {
    Tokens(Matrix),
    Vectors(Linear),
}

/// A decoder-only transformer with named hook points. See the crate docs for the tensor names.
#[derive(Clone, Debug)]
pub struct Transformer {
    config: ModelConfig,
    dev: Cpu,
    embed: Embed,
    pos: Option<Matrix>,
    blocks: Vec<Block>,
    ln_final: Option<LayerNorm>,
    unembed: Linear,
}

/// State of one forward pass: the call's hooks and what it caches.
struct Run<'a> {
    hooks: &'a Hooks,
    filter: Option<&'a CacheFilter>,
    cache: ActivationCache,
}

impl Transformer {
    /// A model with freshly initialised weights (normal, std 0.02, output projections scaled
    /// down by depth as in GPT-2), all drawn from `seed`.
    pub fn new(config: ModelConfig, seed: u64) -> Result<Self> {
        config.validate()?;
        let dev = Cpu::default();
        let mut rng = StdRng::seed_from_u64(seed);
        let d = config.d_model;
        let hd = config.n_heads * config.d_head;
        let std = 0.02;
        let out_std = std / (2.0 * config.n_layers as f32).sqrt();
        let linear = |rng: &mut StdRng, i: usize, o: usize, s: f32| Linear {
            w: normal_matrix(&dev, rng, i, o, s),
            b: constant_vector(&dev, o, 0.0),
        };
        let ln = |on: bool| {
            on.then(|| LayerNorm {
                w: constant_vector(&dev, d, 1.0),
                b: constant_vector(&dev, d, 0.0),
            })
        };
        let embed = match config.input {
            InputFront::Tokens { vocab } => {
                Embed::Tokens(normal_matrix(&dev, &mut rng, vocab, d, std))
            }
            InputFront::Vectors { dim } => {
                Embed::Vectors(linear(&mut rng, dim, d, 1.0 / (dim as f32).sqrt()))
            }
        };
        let pos =
            (config.max_seq > 0).then(|| normal_matrix(&dev, &mut rng, config.max_seq, d, std));
        let mut blocks = Vec::with_capacity(config.n_layers);
        for _ in 0..config.n_layers {
            let q = linear(&mut rng, d, hd, std);
            let k = linear(&mut rng, d, hd, std);
            let v = linear(&mut rng, d, hd, std);
            let o = linear(&mut rng, hd, d, out_std);
            let mlp = (config.d_mlp > 0).then(|| {
                (
                    linear(&mut rng, d, config.d_mlp, std),
                    linear(&mut rng, config.d_mlp, d, out_std),
                )
            });
            blocks.push(Block {
                ln1: ln(config.layer_norm),
                q,
                k,
                v,
                o,
                ln2: ln(config.layer_norm && config.d_mlp > 0),
                mlp,
            });
        }
        let ln_final = ln(config.layer_norm);
        let unembed = linear(&mut rng, d, config.d_out, std);
        Ok(Self {
            config,
            dev,
            embed,
            pos,
            blocks,
            ln_final,
            unembed,
        })
    }

    pub fn config(&self) -> &ModelConfig {
        &self.config
    }

    /// Visits every parameter with its checkpoint name, in a fixed order.
    pub fn visit_params_mut(&mut self, f: &mut dyn FnMut(&str, ParamMut<'_>)) {
        fn lin(
            f: &mut dyn FnMut(&str, ParamMut<'_>),
            prefix: &str,
            w: &str,
            b: &str,
            l: &mut Linear,
        ) {
            f(&format!("{prefix}.{w}"), ParamMut::Matrix(&mut l.w));
            f(&format!("{prefix}.{b}"), ParamMut::Vector(&mut l.b));
        }
        fn norm(f: &mut dyn FnMut(&str, ParamMut<'_>), prefix: &str, l: &mut Option<LayerNorm>) {
            if let Some(l) = l {
                f(&format!("{prefix}.w"), ParamMut::Vector(&mut l.w));
                f(&format!("{prefix}.b"), ParamMut::Vector(&mut l.b));
            }
        }
        match &mut self.embed {
            Embed::Tokens(w) => f("embed.W_E", ParamMut::Matrix(w)),
            Embed::Vectors(l) => lin(f, "embed", "W_in", "b_in", l),
        }
        if let Some(w) = &mut self.pos {
            f("pos_embed.W_pos", ParamMut::Matrix(w));
        }
        for (i, block) in self.blocks.iter_mut().enumerate() {
            norm(f, &format!("blocks.{i}.ln1"), &mut block.ln1);
            let attn = format!("blocks.{i}.attn");
            lin(f, &attn, "W_Q", "b_Q", &mut block.q);
            lin(f, &attn, "W_K", "b_K", &mut block.k);
            lin(f, &attn, "W_V", "b_V", &mut block.v);
            lin(f, &attn, "W_O", "b_O", &mut block.o);
            norm(f, &format!("blocks.{i}.ln2"), &mut block.ln2);
            if let Some((w_in, w_out)) = &mut block.mlp {
                let mlp = format!("blocks.{i}.mlp");
                lin(f, &mlp, "W_in", "b_in", w_in);
                lin(f, &mlp, "W_out", "b_out", w_out);
            }
        }
        norm(f, "ln_final", &mut self.ln_final);
        lin(f, "unembed", "W_U", "b_U", &mut self.unembed);
    }

    /// Every parameter as `(name, shape, values)`, in checkpoint order.
    pub fn named_params(&self) -> Vec<(String, Vec<usize>, Vec<f32>)> {
        let mut out = Vec::new();
        // Cloning shares the tensors' storage: this copies only the values we read.
        self.clone()
            .visit_params_mut(&mut |name, p| out.push((name.to_string(), p.dims(), p.values())));
        out
    }

    pub fn num_params(&self) -> usize {
        self.named_params().iter().map(|(_, _, v)| v.len()).sum()
    }

    /// Logits `[batch, pos, d_out]`.
    pub fn forward(&self, input: &Input) -> Result<Array3<f32>> {
        self.run_with_hooks(input, &Hooks::new())
    }

    /// Logits and the activations at every hook point the filter accepts.
    pub fn run_with_cache(
        &self,
        input: &Input,
        filter: &CacheFilter,
    ) -> Result<(Array3<f32>, ActivationCache)> {
        self.run_with_hooks_and_cache(input, &Hooks::new(), filter)
    }

    /// Logits of a run in which `hooks` observe or replace activations.
    pub fn run_with_hooks(&self, input: &Input, hooks: &Hooks) -> Result<Array3<f32>> {
        let (logits, _) = self.run_inner(input, hooks, None)?;
        Ok(logits)
    }

    /// A hooked run that also caches activations (after the hooks have acted).
    pub fn run_with_hooks_and_cache(
        &self,
        input: &Input,
        hooks: &Hooks,
        filter: &CacheFilter,
    ) -> Result<(Array3<f32>, ActivationCache)> {
        self.run_inner(input, hooks, Some(filter))
    }

    fn run_inner(
        &self,
        input: &Input,
        hooks: &Hooks,
        filter: Option<&CacheFilter>,
    ) -> Result<(Array3<f32>, ActivationCache)> {
        hooks.validate(&self.config)?;
        let mut run = Run {
            hooks,
            filter,
            cache: ActivationCache::default(),
        };
        let logits = self.forward_tape(input, NoneTape, &mut run)?;
        Ok((to_array3(&logits), run.cache))
    }

    /// Runs the model with a gradient tape, evaluates `objective` on the logits, and returns its
    /// value with the gradient of it with respect to the activation at each of `points`
    /// (`[batch, pos, ...]`, the shapes of [`HookPoint::shape`]). Hooks act as in
    /// [`Transformer::run_with_hooks`]; gradients flow through them.
    pub fn activation_gradients(
        &self,
        input: &Input,
        hooks: &Hooks,
        points: &[HookPoint],
        objective: impl FnOnce(TapedLogits) -> TapedScalar,
    ) -> Result<(f32, BTreeMap<HookPoint, ArrayD<f32>>)> {
        hooks.validate(&self.config)?;
        for p in points {
            if !p.exists_in(&self.config) {
                return Err(NnError::InvalidHook {
                    point: p.to_string(),
                    reason: "the model has no such hook point".into(),
                });
            }
        }
        let filter = CacheFilter::Only(points.to_vec());
        let mut run = Run {
            hooks,
            filter: Some(&filter),
            cache: ActivationCache::default(),
        };
        let logits = self.forward_tape(input, OwnedTape::default(), &mut run)?;
        let value = objective(logits);
        let v = value.array();
        let grads = value.backward();
        let mut out = BTreeMap::new();
        for p in points {
            let cached = run
                .cache
                .get(*p)
                .expect("every requested point exists and was cached");
            out.insert(*p, cached.gradient(&grads));
        }
        Ok((v, out))
    }

    /// Logits with an owned tape whose gradients cover every parameter: the training step's
    /// forward pass.
    pub(crate) fn forward_for_training(&self, input: &Input) -> Result<TapedLogits> {
        let mut grads = Gradients::leaky();
        self.clone().visit_params_mut(&mut |_, p| match p {
            ParamMut::Vector(t) => grads.try_alloc_for(&*t).expect("cpu allocation"),
            ParamMut::Matrix(t) => grads.try_alloc_for(&*t).expect("cpu allocation"),
        });
        let empty = Hooks::new();
        let mut run = Run {
            hooks: &empty,
            filter: None,
            cache: ActivationCache::default(),
        };
        // dfdx builds an owned tape around given gradients only through `traced`.
        let seed_tensor: Tensor<(usize,), f32, Cpu> = self.dev.zeros_like(&(1usize,));
        let (_, tape) = seed_tensor.traced(grads).split_tape();
        self.forward_tape(input, tape, &mut run)
    }

    fn check_input(&self, input: &Input) -> Result<()> {
        let (b, s) = (input.batch(), input.seq_len());
        if b == 0 || s == 0 {
            return Err(NnError::InvalidInput(
                "empty batch or empty sequence".into(),
            ));
        }
        if self.config.max_seq > 0 && s > self.config.max_seq {
            return Err(NnError::InvalidInput(format!(
                "sequence length {s} exceeds the model's max_seq {}",
                self.config.max_seq
            )));
        }
        match (input, self.config.input) {
            (Input::Tokens(t), InputFront::Tokens { vocab }) => {
                if let Some(&bad) = t.iter().find(|&&id| id >= vocab) {
                    return Err(NnError::InvalidInput(format!(
                        "token id {bad} is outside the vocabulary of {vocab}"
                    )));
                }
            }
            (Input::Vectors(v), InputFront::Vectors { dim }) => {
                if v.shape()[2] != dim {
                    return Err(NnError::InvalidInput(format!(
                        "input vectors have width {}, the model reads {dim}",
                        v.shape()[2]
                    )));
                }
                if v.iter().any(|x| !x.is_finite()) {
                    return Err(NnError::InvalidInput(
                        "input vectors contain NaN or inf".into(),
                    ));
                }
            }
            _ => {
                return Err(NnError::InvalidInput(
                    "input kind (tokens/vectors) does not match the model's input front".into(),
                ))
            }
        }
        Ok(())
    }

    fn forward_tape<T: Tape<f32, Cpu>>(
        &self,
        input: &Input,
        tape: T,
        run: &mut Run,
    ) -> Result<T3<T>> {
        self.check_input(input)?;
        let (b, s) = (input.batch(), input.seq_len());
        let d = self.config.d_model;
        let embed = match (&self.embed, input) {
            (Embed::Tokens(w_e), Input::Tokens(ids)) => {
                let idx: Tensor<(usize, usize), usize, Cpu> = self
                    .dev
                    .tensor_from_vec(ids.iter().copied().collect(), (b, s));
                w_e.clone().put_tape(tape).gather(idx)
            }
            (Embed::Vectors(l), Input::Vectors(v)) => {
                let x: T3<NoneTape> = self
                    .dev
                    .tensor_from_vec(v.iter().copied().collect(), (b, s, v.shape()[2]));
                linear(x.put_tape(tape), l)
            }
            _ => unreachable!("check_input matched input and front"),
        };
        let mut x = self.hook(run, HookPoint::Embed, embed)?;
        if let Some(w_pos) = &self.pos {
            let pos: T3<T> = w_pos
                .retaped::<T>()
                .slice((0..s, ..))
                .broadcast_like::<_, Axis<0>>(&(b, s, d));
            let pos = self.hook(run, HookPoint::PosEmbed, pos)?;
            x = x + pos;
        }
        for (layer, block) in self.blocks.iter().enumerate() {
            x = self.block_forward(run, layer, block, x)?;
        }
        let x = match &self.ln_final {
            Some(ln) => layer_norm(x, ln),
            None => x,
        };
        let x = self.hook(run, HookPoint::LnFinal, x)?;
        Ok(linear(x, &self.unembed))
    }

    fn block_forward<T: Tape<f32, Cpu>>(
        &self,
        run: &mut Run,
        layer: usize,
        block: &Block,
        x: T3<T>,
    ) -> Result<T3<T>> {
        let at = |kind| HookPoint::Block { layer, kind };
        let (b, s, d) = *x.shape();
        let (h, dh) = (self.config.n_heads, self.config.d_head);
        let resid_pre = self.hook(run, at(BlockHook::ResidPre), x)?;
        let (resid_pre, tape) = resid_pre.split_tape();
        let normed = match &block.ln1 {
            Some(ln) => layer_norm(resid_pre.clone().put_tape(tape), ln),
            None => resid_pre.clone().put_tape(tape),
        };
        let qkv = fused::linear(
            normed,
            &[
                (&block.q.w, &block.q.b),
                (&block.k.w, &block.k.b),
                (&block.v.w, &block.v.b),
            ],
            Activation::Identity,
        );
        let (qkv, tape) = qkv.split_tape();
        let pattern =
            fused::attention_pattern(qkv.clone().put_tape(tape), h, dh, self.config.attention);
        let pattern = self.hook(run, at(BlockHook::AttnPattern), pattern)?;
        let z = fused::attend(pattern, qkv.retaped::<T>());
        let z = self.hook(run, at(BlockHook::AttnZ), z)?;
        let attn_out = linear(z.reshape_like(&(b, s, h * dh)), &block.o);
        let attn_out = self.hook(run, at(BlockHook::AttnOut), attn_out)?;
        let resid_mid = self.hook(
            run,
            at(BlockHook::ResidMid),
            resid_pre.retaped::<T>() + attn_out,
        )?;
        let Some((w_in, w_out)) = &block.mlp else {
            return self.hook(run, at(BlockHook::ResidPost), resid_mid);
        };
        let (resid_mid, tape) = resid_mid.split_tape();
        let normed = match &block.ln2 {
            Some(ln) => layer_norm(resid_mid.clone().put_tape(tape), ln),
            None => resid_mid.clone().put_tape(tape),
        };
        let hidden = fused::linear(normed, &[(&w_in.w, &w_in.b)], Activation::Gelu);
        let mlp_out = linear(hidden, w_out);
        let mlp_out = self.hook(run, at(BlockHook::MlpOut), mlp_out)?;
        debug_assert_eq!(mlp_out.shape().2, d);
        self.hook(
            run,
            at(BlockHook::ResidPost),
            resid_mid.retaped::<T>() + mlp_out,
        )
    }

    /// A hook site: applies the call's interventions at `point`, then caches the result.
    fn hook<S: Shape, T: Tape<f32, Cpu>>(
        &self,
        run: &mut Run,
        point: HookPoint,
        x: Tensor<S, f32, Cpu, T>,
    ) -> Result<Tensor<S, f32, Cpu, T>>
    where
        Tensor<S, f32, Cpu, T>: IntoCached,
    {
        // Reads below take the storage in row-major order, so permuted views are copied
        // into place first (a no-op for the contiguous activations most sites see).
        let mut x = x.contiguous();
        for hook in run.hooks.at(point) {
            let dims = x.shape().concrete().into_iter().collect::<Vec<_>>();
            let old =
                ArrayD::from_shape_vec(IxDyn(&dims), dense_values(&x)).expect("shape matches");
            if let Some((keep, add)) = keep_and_add(hook, &old)? {
                let shape = *x.shape();
                let keep = self.dev.tensor_from_vec(keep, shape);
                let add = self.dev.tensor_from_vec(add, shape);
                x = x * keep + add;
            }
        }
        if run.filter.is_some_and(|f| f.wants(point)) {
            run.cache.insert(point, x.to_cached());
        }
        Ok(x)
    }
}

/// Conversion of a hook-site tensor (rank 3 or 4) into a cache entry without copying.
pub(crate) trait IntoCached {
    fn to_cached(&self) -> CachedTensor;
}

impl<T: Tape<f32, Cpu>> IntoCached for T3<T> {
    fn to_cached(&self) -> CachedTensor {
        CachedTensor::Rank3(self.retaped::<NoneTape>())
    }
}

impl<T: Tape<f32, Cpu>> IntoCached for T4<T> {
    fn to_cached(&self) -> CachedTensor {
        CachedTensor::Rank4(self.retaped::<NoneTape>())
    }
}

fn linear<T: Tape<f32, Cpu>>(x: T3<T>, l: &Linear) -> T3<T> {
    fused::linear(x, &[(&l.w, &l.b)], Activation::Identity)
}

fn layer_norm<T: Tape<f32, Cpu>>(x: T3<T>, ln: &LayerNorm) -> T3<T> {
    crate::ops::layer_norm(x, &ln.w, &ln.b, LN_EPS)
}

fn to_array3<T>(t: &T3<T>) -> Array3<f32> {
    let (a, b, c) = *t.shape();
    Array3::from_shape_vec((a, b, c), dense_values(t)).expect("tensor length matches its shape")
}
