//! Seed 002's risk decomposition propagated by Monte Carlo, with the one factor this project
//! measures: the probability that a misaligned model escapes detection, from the benchmark's
//! TPR at 1% FPR per organism family (see `experiments::risk_model`).
//!
//! `cargo run -p experiments --bin risk_model` reads `datasets/risk_model/default.toml` and the
//! detection table it names, and writes `results/risk_model/`: `residual_risk` (the risk
//! distribution with and without auditing, per family), `tornado` (one factor at a time at its
//! 5th and 95th percentile) and the plots `residual_risk` and `tornado` (PNG + SVG).

use std::path::PathBuf;

use crate::risk_model::{simulate, summary, tornado, Detection, RiskConfig};
use crate::write_table;
use anyhow::{bail, Context, Result};
use clap::Parser;
use mesa_eval::plot::{score_histogram_plot, tornado_plot, TornadoBar};
use serde::Serialize;

#[derive(Parser, Debug, Serialize)]
#[command(about = "Residual mesa-optimization risk with and without auditing (seed 002's model)")]
pub struct Args {
    /// The factor distributions and where the measured detection rates are.
    #[arg(long, default_value = "datasets/risk_model/default.toml")]
    config: PathBuf,
    /// Overrides the config's seed.
    #[arg(long)]
    seed: Option<u64>,
    /// Output directory.
    #[arg(long, default_value = "results/risk_model")]
    out: PathBuf,
    /// Overrides the config's table of measured detection rates (`model_audit`'s
    /// `model_level.csv`).
    #[arg(long)]
    detection_table: Option<PathBuf>,
}

/// Runs the experiment with `args` (what the binary does with its command line).
pub fn run(args: Args) -> Result<()> {
    let output = crate::Run::start(&args.out)?;
    let mut config = RiskConfig::load(&args.config)?;
    if let Some(seed) = args.seed {
        config.seed = seed;
    }
    if let Some(table) = &args.detection_table {
        config.detection.table = table.display().to_string();
    }
    let detections = read_detections(&config)?;
    let sim = simulate(&config, &detections)?;
    let rows = summary(&sim);
    println!(
        "{:<28} {:>10} {:>10} {:>10} {:>10} {:>8}",
        "scenario", "mean", "p05", "median", "p95", "escape"
    );
    for r in &rows {
        println!(
            "{:<28} {:>10.4} {:>10.4} {:>10.4} {:>10.4} {:>8.3}",
            r.scenario, r.mean, r.p05, r.p50, r.p95, r.escape_mean
        );
    }
    let pooled = pooled(&detections);
    let (baseline, bars) = tornado(&config, pooled.as_ref())?;
    println!("\nsensitivity (others at their medians; baseline {baseline:.4}):");
    for b in &bars {
        println!(
            "  {:<32} {:>8} {:>10.4} .. {:<10.4} ({})",
            b.factor, b.kind, b.risk_at_low, b.risk_at_high, b.source
        );
    }
    let meta = serde_json::json!({ "args": &args, "config": &config, "detections": &detections });
    write_table(output.dir(), "residual_risk", &rows, config.seed, &meta)?;
    write_table(output.dir(), "tornado", &bars, config.seed, &meta)?;
    let mut classes = vec![("no audit".to_string(), log10(&sim.without))];
    for (d, risk, _) in &sim.with {
        classes.push((format!("audited: {}", d.family), log10(risk)));
    }
    score_histogram_plot(
        output.dir(),
        "residual_risk",
        "Residual risk (log10), with and without auditing",
        &classes,
        60,
    )
    .context("plot residual_risk")?;
    let tornado_bars: Vec<TornadoBar> = bars
        .iter()
        .map(|b| TornadoBar {
            label: format!("{} [{}]", b.factor, b.kind),
            at_low: b.risk_at_low,
            at_high: b.risk_at_high,
        })
        .collect();
    tornado_plot(
        output.dir(),
        "tornado",
        "Residual risk, one factor at its 5th (blue) / 95th (orange) percentile",
        "residual risk (relative harm units)",
        baseline,
        &tornado_bars,
        true,
    )
    .context("plot tornado")?;
    output.commit()?;
    println!("wrote {}", args.out.display());
    Ok(())
}

/// Reads the measured TPR at 1% FPR per organism family from the detection table.
fn read_detections(config: &RiskConfig) -> Result<Vec<Detection>> {
    let src = &config.detection;
    let path = PathBuf::from(&src.table);
    if !path.exists() {
        bail!(
            "detection table {} does not exist: run the model-level benchmark first, or point \
             [detection] table in the config at a table with columns {}, {}, {}, {}",
            path.display(),
            src.detector_column,
            src.family_column,
            src.tpr_column,
            src.n_pos_column
        );
    }
    let df = mesa_eval::table::read_csv(&path)
        .with_context(|| format!("reading detection table {}", path.display()))?;
    let col = |name: &str| {
        df.column(name)
            .with_context(|| format!("{}: no column {name}", path.display()))
    };
    let detector = col(&src.detector_column)?.str()?.clone();
    let family = col(&src.family_column)?.str()?.clone();
    let tpr = col(&src.tpr_column)?.cast(&mesa_eval::table::DataType::Float64)?;
    let tpr = tpr.f64()?.clone();
    let n_pos = col(&src.n_pos_column)?.cast(&mesa_eval::table::DataType::Float64)?;
    let n_pos = n_pos.f64()?.clone();
    let mut out = Vec::new();
    for i in 0..df.height() {
        if detector.get(i) != Some(src.detector.as_str()) {
            continue;
        }
        let Some(f) = family.get(i) else {
            bail!("{}: row {i} has an empty family", path.display());
        };
        // The pooled row repeats the families' models; the families are used one by one.
        if f == "pooled" {
            continue;
        }
        let (Some(t), Some(n)) = (tpr.get(i), n_pos.get(i)) else {
            eprintln!(
                "{}: family {f} has no TPR (no positive model scored); left out",
                path.display()
            );
            continue;
        };
        out.push(Detection::from_rate(f, t, n as usize)?);
    }
    if out.is_empty() {
        bail!(
            "{}: no row with {} = {}",
            path.display(),
            src.detector_column,
            src.detector
        );
    }
    Ok(out)
}

/// All families pooled (caught and n summed), for the sensitivity bar.
fn pooled(detections: &[Detection]) -> Option<Detection> {
    (!detections.is_empty()).then(|| Detection {
        family: "pooled".into(),
        caught: detections.iter().map(|d| d.caught).sum(),
        n_pos: detections.iter().map(|d| d.n_pos).sum(),
    })
}

fn log10(v: &[f64]) -> Vec<f64> {
    v.iter().map(|x| x.max(1e-12).log10()).collect()
}
