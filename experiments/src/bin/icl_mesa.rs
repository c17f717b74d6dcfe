//! See [`experiments::icl_mesa`]: the experiment lives in the library, this binary only
//! parses its command line.

use anyhow::Result;
use clap::Parser;
use experiments::icl_mesa::{run, Args};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> Result<()> {
    run(Args::parse())
}
