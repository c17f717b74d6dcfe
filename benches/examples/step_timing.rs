//! Training steps per second of `Tiny` and `Small` (batch 64 x 32, AdamW), with the matrix
//! products on all cores and on one, next to dfdx's own encoder of the same sizes, the
//! achieved GFLOP/s and its fraction of the CPU's peak, and the ratio to PyTorch figures given
//! on the command line (run `../shared/perf/torch_small.py` in the same minute: the machine is
//! shared, so compare ratios from one run, not absolute figures across runs).
//!
//! `cargo run --release -p mesa-benches --example step_timing -- [--steps 50]
//!     [--torch-steps-per-s 21.5] [--torch-tiny-steps-per-s 40]`

use std::time::Instant;

use clap::Parser;
use mesa_benches::{
    cpu_peak_gflops, dfdx_baseline_step, dfdx_tiny_baseline_step, random_batch, step_flops, BATCH,
    SEQ, VOCAB,
};
use mesa_nn::{
    kernel_threads, with_kernel_threads, ModelConfig, Preset, Small, Tiny, TrainConfig, Trainer,
    Transformer,
};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
struct Args {
    /// Timed steps per measurement (after 5 warm-up steps).
    #[arg(long, default_value_t = 50)]
    steps: usize,
    /// PyTorch's steps/s for `Small` (torch_small.py --threads 2), to print the ratio.
    #[arg(long)]
    torch_steps_per_s: Option<f64>,
    /// PyTorch's steps/s for the `Tiny`-sized model (torch_small.py --threads 2 --d-model 32).
    #[arg(long)]
    torch_tiny_steps_per_s: Option<f64>,
}

fn cpu_seconds() -> f64 {
    // /proc/self/stat fields 14 and 15: user and system time in clock ticks (100 per second).
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit(')')
        .next()
        .unwrap_or("")
        .split_whitespace()
        .collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (ticks(11) + ticks(12)) / 100.0
}

/// `(wall seconds, CPU seconds)` of `steps` calls of `step`, after 5 untimed ones.
fn time(steps: usize, mut step: impl FnMut()) -> (f64, f64) {
    for _ in 0..5 {
        step();
    }
    let (wall, cpu) = (Instant::now(), cpu_seconds());
    for _ in 0..steps {
        step();
    }
    (wall.elapsed().as_secs_f64(), cpu_seconds() - cpu)
}

fn mesa_step(config: ModelConfig, steps: usize) -> impl FnMut() {
    let mut model = Transformer::new(config, 0).expect("valid preset");
    let (input, targets) = random_batch(1);
    let config = TrainConfig {
        steps: steps + 5,
        ..TrainConfig::default()
    };
    let mut trainer = Trainer::new(&model, config).expect("valid config");
    move || {
        trainer.step(&mut model, &input, &targets).expect("finite");
    }
}

fn main() {
    let args = Args::parse();
    let steps = args.steps;
    let (peak, peak_how) = cpu_peak_gflops();
    println!(
        "batch {BATCH} x {SEQ}, {steps} timed steps each; kernel threads {}; peak: {peak_how}",
        kernel_threads()
    );
    println!(
        "{:<34} {:>9} {:>11} {:>9} {:>7} {:>9}",
        "engine", "steps/s", "ms CPU/step", "GFLOP/s", "% peak", "vs torch"
    );
    let presets: [(&str, ModelConfig, Option<f64>); 2] = [
        (
            "Tiny",
            Tiny::language_model(VOCAB, SEQ),
            args.torch_tiny_steps_per_s,
        ),
        (
            "Small",
            Small::language_model(VOCAB, SEQ),
            args.torch_steps_per_s,
        ),
    ];
    for (name, config, torch) in presets {
        let flops = step_flops(&config, BATCH, SEQ);
        let row = |label: &str, (wall, cpu): (f64, f64)| {
            let rate = steps as f64 / wall;
            let gflops = flops * rate / 1e9;
            let ratio = torch.map_or("-".to_string(), |t| format!("{:.2}x", rate / t));
            println!(
                "{:<34} {:>9.1} {:>11.1} {:>9.1} {:>6.1}% {:>9}",
                format!("{name} {label}"),
                rate,
                1000.0 * cpu / steps as f64,
                gflops,
                100.0 * gflops / peak,
                ratio
            );
        };
        row("mesa-nn", time(steps, mesa_step(config.clone(), steps)));
        row(
            "mesa-nn, 1 kernel thread",
            with_kernel_threads(1, || time(steps, mesa_step(config.clone(), steps))),
        );
        let baseline = if name == "Tiny" {
            time(steps, dfdx_tiny_baseline_step())
        } else {
            time(steps, dfdx_baseline_step())
        };
        row("dfdx encoder (baseline)", baseline);
        if let Some(t) = torch {
            println!(
                "{:<34} {:>9.1} {:>11} {:>9.1} {:>6.1}%",
                format!("{name} PyTorch (given)"),
                t,
                "-",
                flops * t / 1e9,
                100.0 * flops * t / 1e9 / peak
            );
        }
    }
    println!(
        "GFLOP/s counts matrix products only ({:.3} GFLOP per Small step, {:.3} per Tiny step; \
         backward = 2x forward), so it understates the work; dfdx's encoder is post-norm with \
         Adam and does about the same products.",
        step_flops(&Small::language_model(VOCAB, SEQ), BATCH, SEQ) / 1e9,
        step_flops(&Tiny::language_model(VOCAB, SEQ), BATCH, SEQ) / 1e9
    );
}
