//! Forward, forward+backward, training step and cached run of `Small` at batch 64 x 32, the
//! training step of `Small` and `Tiny` with the matrix products on one thread and on all
//! cores, against dfdx's own `TransformerEncoder` of the same sizes as the baseline.

use criterion::{criterion_group, criterion_main, Criterion};
use mesa_benches::{dfdx_baseline_step, dfdx_tiny_baseline_step, random_batch, SEQ, VOCAB};
use mesa_nn::{
    loss_and_gradients, with_kernel_threads, CacheFilter, ModelConfig, Preset, Small, Tiny,
    TrainConfig, Trainer, Transformer,
};

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

/// The training step of `config` at batch 64 x 32, products on one thread and on all cores.
fn train_step(c: &mut Criterion, name: &str, config: ModelConfig) {
    let mut model = Transformer::new(config, 0).unwrap();
    let (input, targets) = random_batch(1);
    let config = TrainConfig {
        steps: usize::MAX / 2,
        ..TrainConfig::default()
    };
    let mut trainer = Trainer::new(&model, config).unwrap();
    let mut group = c.benchmark_group(format!("{name}_b64_s32"));
    group.sample_size(20);
    group.bench_function("train_step_1_thread", |b| {
        with_kernel_threads(1, || {
            b.iter(|| trainer.step(&mut model, &input, &targets).unwrap())
        })
    });
    group.bench_function("train_step_all_cores", |b| {
        b.iter(|| trainer.step(&mut model, &input, &targets).unwrap())
    });
    group.finish();
}

fn threads(c: &mut Criterion) {
    train_step(c, "small", Small::language_model(VOCAB, SEQ));
    train_step(c, "tiny", Tiny::language_model(VOCAB, SEQ));
}

fn dfdx_baseline(c: &mut Criterion) {
    let mut step = dfdx_baseline_step();
    let mut group = c.benchmark_group("dfdx_encoder_b64_s32");
    group.sample_size(10);
    group.bench_function("train_step", |b| b.iter(&mut step));
    group.finish();
    let mut step = dfdx_tiny_baseline_step();
    let mut group = c.benchmark_group("dfdx_encoder_tiny_b64_s32");
    group.sample_size(10);
    group.bench_function("train_step", |b| b.iter(&mut step));
    group.finish();
}

criterion_group!(benches, mesa_nn, threads, dfdx_baseline);
criterion_main!(benches);
