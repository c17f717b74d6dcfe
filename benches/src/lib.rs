//! Shared inputs for the criterion benchmarks in `benches/`.
//!
//! Run them with `cargo bench -p mesa-benches`. The benchmark shape is the issue's: `Small`
//! (2 layers, d_model 64, 4 heads, MLP 256), batch 64 x 32 tokens.

use dfdx::optim::{Adam, AdamConfig};
use dfdx::prelude::*;
use mesa_nn::{Input, ModelConfig, Targets};
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

/// One training step of a dfdx module type on the benchmark batch: Adam, cross-entropy.
macro_rules! dfdx_step {
    ($model:ty) => {{
        let dev = Cpu::seed_from_u64(0);
        let mut model = dev.build_module::<$model, f32>();
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
    }};
}

/// The baseline the benchmark targets are set against: dfdx 0.13's own encoder (post-norm,
/// 2 layers, d 64, 4 heads, ff 256) with an embedding and an unembedding, Adam, cross-entropy.
type DfdxSmall = (
    Embedding<VOCAB, 64>,
    TransformerEncoder<64, 4, 256, 2>,
    Linear<64, VOCAB>,
);

/// The same at `Tiny`'s sizes (d 32, 2 heads, ff 128, 2 layers).
type DfdxTiny = (
    Embedding<VOCAB, 32>,
    TransformerEncoder<32, 2, 128, 2>,
    Linear<32, VOCAB>,
);

/// A closure that runs one training step of the dfdx baseline at the benchmark shape
/// (`Small`'s sizes).
pub fn dfdx_baseline_step() -> impl FnMut() {
    dfdx_step!(DfdxSmall)
}

/// As [`dfdx_baseline_step`], at `Tiny`'s sizes.
pub fn dfdx_tiny_baseline_step() -> impl FnMut() {
    dfdx_step!(DfdxTiny)
}

/// Floating-point operations of one training step, counting matrix products only (2 per
/// multiply-add): the forward products (Q/K/V, attention scores and pattern x values over the
/// full `seq x seq` square as computed, W_O, the MLP, the unembedding) and twice as many
/// backward (the input's and the weight's gradient of each). Elementwise work, LayerNorm,
/// softmax and the optimiser are left out, so this understates the work done.
pub fn step_flops(config: &ModelConfig, batch: usize, seq: usize) -> f64 {
    let (d, hd, m) = (
        config.d_model as f64,
        (config.n_heads * config.d_head) as f64,
        config.d_mlp as f64,
    );
    let tokens = (batch * seq) as f64;
    let per_layer =
        2.0 * d * 3.0 * hd + 2.0 * hd * d + 2.0 * 2.0 * d * m + 2.0 * 2.0 * seq as f64 * hd;
    let forward = tokens * (config.n_layers as f64 * per_layer + 2.0 * d * config.d_out as f64);
    3.0 * forward
}

/// This machine's peak f32 rate over all its cores, in GFLOP/s, and how it was computed:
/// cores x FMA units (2) x lanes (16 with AVX-512, 8 with AVX2) x 2 flops x the clock that
/// `/proc/cpuinfo` reports (nominal; turbo may run higher).
pub fn cpu_peak_gflops() -> (f64, String) {
    let info = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let mhz = info
        .lines()
        .find(|l| l.starts_with("cpu MHz"))
        .and_then(|l| l.split(':').nth(1))
        .and_then(|v| v.trim().parse::<f64>().ok())
        .unwrap_or(0.0);
    let lanes = if info.contains("avx512f") { 16.0 } else { 8.0 };
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
    let peak = cores * 2.0 * lanes * 2.0 * mhz / 1000.0;
    (
        peak,
        format!(
            "{cores} cores x 2 FMA units x {lanes} f32 lanes x 2 flops x {:.2} GHz = {peak:.0} GFLOP/s",
            mhz / 1000.0
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use mesa_nn::{Preset, Small};

    #[test]
    fn step_flops_counts_the_products_of_small() {
        // Per token and layer: QKV 2*64*192, W_O 2*64*64, MLP 2*2*64*256, attention
        // 2*2*32*64; unembedding 2*64*32; times 3 for the backward pass.
        let per_token = 2.0 * (24576.0 + 8192.0 + 65536.0 + 8192.0) + 4096.0;
        let expected = 3.0 * 2048.0 * per_token;
        let got = step_flops(&Small::language_model(VOCAB, SEQ), BATCH, SEQ);
        assert_eq!(got, expected);
    }
}
