//! The input-level detectors that need the model (STRIP, occlusion, gradient saliency) on every
//! cached zoo family's hard-negative test set: see [`experiments::families_eval`].
//!
//! `cargo run -p experiments --bin families_eval` (every standard family, organism seed 0,
//! models from the zoo cache only; writes `results/families_eval/input_level.*`).

use anyhow::Result;
use clap::Parser;
use experiments::families_eval::{run, Args};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> Result<()> {
    run(&Args::parse())
}
