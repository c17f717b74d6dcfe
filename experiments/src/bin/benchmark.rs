//! `benchmark`: every table from one command. See [`experiments::benchmark`]; this binary only
//! parses its command line. `--quick` is the CI-sized wiring check that `.ci/run` executes.

use anyhow::Result;
use clap::Parser;
use experiments::benchmark::{run, Args};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> Result<()> {
    run(Args::parse())
}
