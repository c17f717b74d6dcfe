//! Steps per second of a `Small` training step (batch 64 x 32), by wall clock and by this
//! process's CPU time, so a figure can be read even on a machine shared with other work.
//! `cargo run --release -p mesa-benches --example step_timing -- [steps]`

use std::time::Instant;

use mesa_benches::{dfdx_baseline_step, random_batch, SEQ, VOCAB};
use mesa_nn::{Preset, Small, TrainConfig, Trainer, Transformer};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

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

fn dfdx_baseline(steps: usize) -> (f64, f64) {
    let mut step = dfdx_baseline_step();
    for _ in 0..5 {
        step();
    }
    let (wall, cpu) = (Instant::now(), cpu_seconds());
    for _ in 0..steps {
        step();
    }
    (wall.elapsed().as_secs_f64(), cpu_seconds() - cpu)
}

fn main() {
    let steps: usize = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(50);
    let mut model = Transformer::new(Small::language_model(VOCAB, SEQ), 0).expect("valid preset");
    let (input, targets) = random_batch(1);
    let config = TrainConfig {
        steps: steps + 5,
        ..TrainConfig::default()
    };
    let mut trainer = Trainer::new(&model, config).expect("valid config");
    for _ in 0..5 {
        trainer.step(&mut model, &input, &targets).expect("finite");
    }
    let (wall, cpu) = (Instant::now(), cpu_seconds());
    for _ in 0..steps {
        trainer.step(&mut model, &input, &targets).expect("finite");
    }
    let wall = wall.elapsed().as_secs_f64();
    let cpu = cpu_seconds() - cpu;
    let (base_wall, base_cpu) = dfdx_baseline(steps);
    println!(
        "{steps} train steps, {} threads available",
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    println!(
        "mesa-nn Small:        {:6.1} steps/s wall, {:6.1} ms CPU per step",
        steps as f64 / wall,
        1000.0 * cpu / steps as f64
    );
    println!(
        "dfdx encoder (base):  {:6.1} steps/s wall, {:6.1} ms CPU per step",
        steps as f64 / base_wall,
        1000.0 * base_cpu / steps as f64
    );
}
