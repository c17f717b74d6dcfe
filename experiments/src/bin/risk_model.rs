//! See [`experiments::risk_model::cli`]: the experiment lives in the library, this binary only
//! parses its command line.

use anyhow::Result;
use clap::Parser;
use experiments::risk_model::cli::{run, Args};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> Result<()> {
    run(Args::parse())
}
