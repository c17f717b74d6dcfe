//! Goal misgeneralization at toy scale (Langosco et al. 2022; Turner et al. 2023): trains
//! behaviour-cloned transformer policies on the maze (cheese region k), the CoinRun corridor
//! (random_percent) and keys and chests, measures per model how often it pursues the proxy once
//! goal and proxy come apart, probes where the goal is represented, steers with the goal
//! vector, and asks whether signals computed on the training distribution only predict which
//! models misgeneralize.
//!
//! `cargo run --release -p experiments --bin goal_misgen` writes `results/goal_misgen/`, each
//! table as CSV + Parquet + `.meta.json` (seed, config, git revision, run time):
//! - `models`: one row per model (`env, model_id, seed, randomization, train_success,
//!   test_true_goal_rate, test_proxy_rate, misgen_rate`, Wilson 95% CIs, the training-only
//!   signals, timings);
//! - `probes`: per model and layer, held-out accuracy of a linear probe decoding the goal's
//!   cell from the query token's residual stream on training-distribution states, beside the
//!   corner (proxy) and majority baselines, a shuffled-label probe and the same probe on the
//!   model at random init;
//! - `goal_vector`: maze models, test outcome rates with the goal vector added at scales
//!   -4 .. 4 (negative: subtracted) at `blocks.0.hook_resid_post`;
//! - `predictor`: per environment, Spearman and AUROC (bootstrap CI) of each training-only
//!   signal against the measured misgeneralization;
//! - plots (PNG + SVG): `misgen_vs_randomization`, `goal_probes`, `paths`.

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use crate::goal_misgen::{
    goal_vector_plot, jobs, misgen_plot, paths_plot, predictor_rows, probe_plot, run_model,
    GoalVectorRow, Job, ModelResult, ModelRow, ProbeRow,
};
use crate::write_table;
use anyhow::{bail, Context, Result};
use clap::Parser;
use mesa_goalmisgen::GoalMisgenConfig;
use serde::Serialize;

#[derive(Parser, Debug, Serialize)]
#[command(about = "Goal-misgeneralization sweeps: maze, corridor, keys and chests")]
pub struct Args {
    /// The organism config.
    #[arg(long, default_value = "datasets/goal-misgen/default.toml")]
    config: PathBuf,
    /// Overrides the config's base seed.
    #[arg(long)]
    seed: Option<u64>,
    /// Output directory.
    #[arg(long, default_value = "results/goal_misgen")]
    out: PathBuf,
    /// Models trained at once, one thread each (0: one per core). With 1, a model's matrix
    /// products use every core instead.
    #[arg(long, default_value_t = 2)]
    threads: usize,
    /// Overrides the config's models per setting (seeds `seed .. seed + N`).
    #[arg(long)]
    seeds: Option<usize>,
    /// Runs only the settings whose name starts with this (`maze`, `maze-k2`, `corridor-r0`,
    /// `keys_chests`); repeat to keep several. Default: every setting of the config.
    #[arg(long = "only", value_name = "PREFIX")]
    only: Vec<String>,
    /// No progress output.
    #[arg(long)]
    quiet: bool,
}

/// Runs the experiment with `args` (what the binary does with its command line).
pub fn run(args: Args) -> Result<()> {
    let output = crate::Run::start(&args.out)?;
    let mut config = GoalMisgenConfig::load(&args.config)?;
    if let Some(seed) = args.seed {
        config.seed = seed;
    }
    if args.threads == 0 {
        bail!("--threads must be at least 1");
    }
    if let Some(seeds) = args.seeds {
        if seeds == 0 {
            bail!("--seeds must be at least 1");
        }
        config.seeds_per_setting = seeds;
    }
    let started = Instant::now();
    let mut jobs = jobs(&config);
    if !args.only.is_empty() {
        jobs.retain(|j| args.only.iter().any(|p| j.model_id.starts_with(p.as_str())));
        if jobs.is_empty() {
            bail!(
                "--only {:?} matches no setting of {} (names look like maze-k2, corridor-r0, keys_chests-pair)",
                args.only,
                args.config.display()
            );
        }
    }
    // One model per worker thread; each worker's matrix products stay on one thread.
    let finished = AtomicUsize::new(0);
    let results = mesa_nn::parallel_map(args.threads, jobs.iter().collect(), |_, job| {
        let result = run_model(&config, job);
        let done = finished.fetch_add(1, Ordering::SeqCst) + 1;
        if !args.quiet {
            match &result {
                Ok(r) => eprintln!(
                    "[{done:>2}/{}] {:<22} train {:.2} | test true {:.2} proxy {:.2} neither {:.2} | {:.0} s",
                    jobs.len(),
                    job.model_id,
                    r.row.train_success,
                    r.row.test_true_goal_rate,
                    r.row.test_proxy_rate,
                    r.row.test_neither_rate,
                    r.row.total_seconds
                ),
                Err(e) => eprintln!("[{done:>2}/{}] {}: {e:#}", jobs.len(), job.model_id),
            }
        }
        result
    });
    let mut done: Vec<(&Job, ModelResult)> = Vec::new();
    for (job, r) in jobs.iter().zip(results) {
        let r = r.with_context(|| format!("model {}", job.model_id))?;
        done.push((job, r));
    }
    let run_seconds = started.elapsed().as_secs_f64();
    let meta = serde_json::json!({
        "args": &args,
        "organism_config": &config,
        "run_seconds": run_seconds,
        "misgen_rate": "test_proxy_rate / (test_true_goal_rate + test_proxy_rate): proxy share of the test episodes that reached either",
        "goal_sensitivity": "mean total-variation distance between the action distributions with and without the true goal (cheese, coin, chests) on training-distribution states",
        "goal_probe": "ridge probe (one-hot cell targets, argmax) from the query token's residual stream to the goal's cell (maze cheese, corridor coin, nearest chest), fitted on training-distribution states, accuracy on held-out ones with a Wilson 95% CI",
    });
    let out = output.dir();
    let rows: Vec<ModelRow> = done.iter().map(|(_, r)| r.row.clone()).collect();
    write_table(out, "models", &rows, config.seed, &meta)?;
    let probes: Vec<ProbeRow> = done.iter().flat_map(|(_, r)| r.probes.clone()).collect();
    write_table(out, "probes", &probes, config.seed, &meta)?;
    let vectors: Vec<GoalVectorRow> = done
        .iter()
        .flat_map(|(_, r)| r.goal_vector.clone())
        .collect();
    write_table(out, "goal_vector", &vectors, config.seed, &meta)?;
    write_table(
        out,
        "predictor",
        &predictor_rows(&rows)?,
        config.seed,
        &meta,
    )?;
    misgen_plot(out, &rows)?;
    probe_plot(out, &probes)?;
    goal_vector_plot(out, &vectors)?;
    paths_plot(out, &done)?;
    output.commit()?;
    let out = &args.out;
    if !args.quiet {
        eprintln!(
            "{} models in {run_seconds:.0} s; wrote tables and plots to {}",
            rows.len(),
            out.display()
        );
    }
    Ok(())
}
