//! See [`experiments::model_audit::cli`]: the experiment lives in the library, this binary only
//! parses its command line.

use anyhow::Result;
use clap::Parser;
use experiments::model_audit::cli::{run, Args};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> Result<()> {
    run(Args::parse())
}
