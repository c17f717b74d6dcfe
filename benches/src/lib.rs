//! Shared inputs for the criterion benchmarks in `benches/`.
//!
//! Run them with `cargo bench -p mesa-benches`. The benchmark shape is the issue's: `Small`
//! (2 layers, d_model 64, 4 heads, MLP 256), batch 64 x 32 tokens.

use dfdx::optim::{Adam, AdamConfig};
use dfdx::prelude::*;
use mesa_nn::{Input, Targets};
use ndarray::Array2;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

pub const BATCH: usize = 64;
pub const SEQ: usize = 32;
pub const VOCAB: usize = 32;

/// A seeded random next-token batch of the benchmark shape.
pub fn random_batch(seed: u64) -> (Input, Targets) {
    let mut rng = StdRng::seed_from_u64(seed);
    let tokens = Array2::from_shape_fn((BATCH, SEQ), |_| rng.gen_range(0..VOCAB));
    let ids = Array2::from_shape_fn((BATCH, SEQ), |_| rng.gen_range(0..VOCAB));
    (
        Input::Tokens(tokens),
        Targets::Classes {
            ids,
            weights: Array2::ones((BATCH, SEQ)),
        },
    )
}

/// The baseline the benchmark targets are set against: dfdx 0.13's own encoder (post-norm,
/// 2 layers, d 64, 4 heads, ff 256) with an embedding and an unembedding, Adam, cross-entropy.
type DfdxModel = (
    Embedding<VOCAB, 64>,
    TransformerEncoder<64, 4, 256, 2>,
    Linear<64, VOCAB>,
);

/// A closure that runs one training step of the dfdx baseline at the benchmark shape.
pub fn dfdx_baseline_step() -> impl FnMut() {
    let dev = Cpu::seed_from_u64(0);
    let mut model = dev.build_module::<DfdxModel, f32>();
    let mut grads = model.alloc_grads();
    let mut opt = Adam::new(&model, AdamConfig::default());
    let tokens: Tensor<(Const<BATCH>, Const<SEQ>), usize, Cpu> = dev.tensor_from_vec(
        (0..BATCH * SEQ).map(|i| (i * 7) % VOCAB).collect(),
        (Const, Const),
    );
    let targets: Tensor<(Const<BATCH>, Const<SEQ>, Const<VOCAB>), f32, Cpu> =
        dev.sample_uniform().softmax::<Axis<2>>();
    move || {
        let logits = model.forward_mut(tokens.clone().traced(grads.clone()));
        let loss = cross_entropy_with_logits_loss(logits, targets.clone());
        grads = loss.backward();
        opt.update(&mut model, &grads).expect("dfdx update");
        model.zero_grads(&mut grads);
    }
}
