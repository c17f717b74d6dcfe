//! Forward, forward+backward, training step and cached run of `Small` at batch 64 x 32,
//! against dfdx's own `TransformerEncoder` of the same size as the baseline.

use criterion::{criterion_group, criterion_main, Criterion};
use dfdx::optim::{Adam, AdamConfig};
use dfdx::prelude::*;
use mesa_benches::{random_batch, BATCH, SEQ, VOCAB};
use mesa_nn::{loss_and_gradients, CacheFilter, Preset, Small, TrainConfig, Trainer, Transformer};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn mesa_nn(c: &mut Criterion) {
    let mut model = Transformer::new(Small::language_model(VOCAB, SEQ), 0).unwrap();
    let (input, targets) = random_batch(1);
    let mut group = c.benchmark_group("small_b64_s32");
    group.sample_size(20);
    group.bench_function("forward", |b| b.iter(|| model.forward(&input).unwrap()));
    group.bench_function("run_with_cache_all", |b| {
        b.iter(|| model.run_with_cache(&input, &CacheFilter::All).unwrap())
    });
    group.bench_function("forward_backward", |b| {
        b.iter(|| loss_and_gradients(&model, &input, &targets).unwrap())
    });
    let mut trainer = Trainer::new(
        &model,
        TrainConfig {
            steps: usize::MAX / 2,
            ..TrainConfig::default()
        },
    )
    .unwrap();
    group.bench_function("train_step", |b| {
        b.iter(|| trainer.step(&mut model, &input, &targets).unwrap())
    });
    group.finish();
}

/// The baseline the issue measures against: dfdx 0.13's encoder (post-norm, 2 layers, d 64,
/// 4 heads, ff 256) with an embedding and an unembedding, Adam, cross-entropy.
type DfdxModel = (
    Embedding<VOCAB, 64>,
    TransformerEncoder<64, 4, 256, 2>,
    Linear<64, VOCAB>,
);

fn dfdx_baseline(c: &mut Criterion) {
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
    let mut group = c.benchmark_group("dfdx_encoder_b64_s32");
    group.sample_size(10);
    group.bench_function("train_step", |b| {
        b.iter(|| {
            let logits = model.forward_mut(tokens.clone().traced(grads.clone()));
            let loss = cross_entropy_with_logits_loss(logits, targets.clone());
            grads = loss.backward();
            opt.update(&mut model, &grads).unwrap();
            model.zero_grads(&mut grads);
        })
    });
    group.finish();
}

criterion_group!(benches, mesa_nn, dfdx_baseline);
criterion_main!(benches);
