//! A literal mesa-optimizer: a zoo of in-context regression transformers (icl-trained and three
//! non-optimizer controls, for two architectures), each fingerprinted against one-step gradient
//! descent, with model-level AUROCs of "is this model an in-context optimizer?".
//!
//! `cargo run --release -p experiments --bin icl_mesa` writes to `results/icl_mesa/`, each table
//! as CSV + Parquet with a `.meta.json` sidecar (seed, config, git revision, line-searched
//! learning rates), through `mesa-eval`: `models` (per-model metrics), `auroc` (score and each
//! metric alone, icl-trained vs all controls and vs each), `loss_vs_context` (loss against the
//! number of context examples per model kind and reference learner) and `gd_lr_sweep` (one-step
//! GD loss as its learning rate varies, beside each architecture's icl-trained loss); and the
//! plots `loss_vs_context.{png,svg}` and `gd_lr_sweep.{png,svg}`.

use std::path::{Path, PathBuf};
use std::time::Instant;

use crate::{mean_min_max, write_table};
use anyhow::{Context, Result};
use clap::Parser;
use indicatif::{ProgressBar, ProgressStyle};
use mesa_detect::{
    fit_model, score_model, AuditContext, DetectorSpec, PromptSet, Registry, Verdict,
};
use mesa_eval::plot::{lines_plot, panel_grid_plot, BandSeries, Panel, SeriesLabelPosition};
use mesa_gdfp::{Fingerprint, RegressionTasks};
use mesa_icl::{
    build, line_search_gd1, line_search_gdk, sample_tasks, Arch, IclConfig, Learner, ModelKind,
    Organism, Task, TaskSource,
};
use ndarray::{Array1, Array2, Array3};
use rand::rngs::StdRng;
use rand::SeedableRng;
use serde::Serialize;

/// In-context regression transformers vs non-optimizer controls, scored by the
/// gradient-descent fingerprint.
#[derive(Parser, Debug)]
pub struct Args {
    /// Base seed; every model, task set and probe derives from it.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Output directory for the result tables.
    #[arg(long, default_value = "results/icl_mesa")]
    out: PathBuf,
    /// Organism config (task shape, control pool size, training settings).
    #[arg(long, default_value = "datasets/icl/default.toml")]
    config: PathBuf,
    /// Models per (architecture, kind).
    #[arg(long, default_value_t = 5)]
    seeds: u64,
    /// Fresh tasks the fingerprint is measured on (and, separately, the probes are fit on).
    #[arg(long, default_value_t = 512)]
    eval_tasks: usize,
    /// Hide progress bars.
    #[arg(long)]
    quiet: bool,
}

/// Task-set seeds, offset from the base seed so no two streams coincide.
const LINE_SEARCH_STREAM: u64 = 1 << 32;
const FIT_STREAM: u64 = 2 << 32;
const EVAL_STREAM: u64 = 3 << 32;
const CONTEXT_STREAM: u64 = 4 << 32;
const BASELINE_STREAM: u64 = 5 << 32;

/// Runs the experiment with `args` (what the binary does with its command line).
pub fn run(args: Args) -> Result<()> {
    let output = crate::Run::start(&args.out)?;
    let start = Instant::now();
    let config = IclConfig::load(&args.config)
        .with_context(|| format!("loading the organism config {}", args.config.display()))?;
    anyhow::ensure!(
        args.seeds >= 2,
        "--seeds must be at least 2 (got {})",
        args.seeds
    );
    anyhow::ensure!(args.eval_tasks >= 16, "--eval-tasks must be at least 16");
    let (task_cfg, n) = (&config.task, config.task.n_context);
    let tasks = |stream: u64, count: usize, n_context: usize| {
        let mut rng = StdRng::seed_from_u64(args.seed.wrapping_add(stream));
        sample_tasks(task_cfg, &TaskSource::Fresh, count, n_context, &mut rng)
    };

    // Reference learners, learning rates line-searched on their own training tasks.
    let search = tasks(LINE_SEARCH_STREAM, 4096, n);
    let eta = line_search_gd1(&search)?;
    let eta3 = line_search_gdk(&search, 3)?;
    let lambda = best_ridge(&search)?;
    let references = [
        Learner::Gd1 { eta },
        Learner::GdK {
            eta: eta3,
            steps: 3,
        },
        Learner::Ridge { lambda },
        Learner::LeastSquares,
        Learner::NearestNeighbour,
        Learner::Averaging,
    ];
    let fit = to_arrays(&tasks(FIT_STREAM, args.eval_tasks, n))?;
    let eval_tasks = tasks(EVAL_STREAM, args.eval_tasks, n);
    let eval = to_arrays(&eval_tasks)?;
    let y_scale = eval.y_q.mapv(|v| v * v).mean().unwrap_or(1.0);
    let gd1_loss = Learner::Gd1 { eta }.mse(&eval_tasks)? / y_scale;

    // The zoo: every (architecture, kind, seed), built on all cores.
    let mut jobs = Vec::new();
    for arch in Arch::ALL {
        for s in 0..args.seeds {
            for kind in ModelKind::ALL {
                jobs.push((arch, kind, args.seed.wrapping_mul(1000).wrapping_add(s)));
            }
        }
    }
    let bar = progress(args.quiet, jobs.len(), "models");
    let organisms = parallel_map(&jobs, |&(arch, kind, seed)| {
        let o = build(arch, kind, &config, seed, false);
        bar.inc(1);
        o
    })
    .into_iter()
    .collect::<mesa_icl::Result<Vec<Organism>>>()?;
    bar.finish_and_clear();

    // Fingerprints against line-searched one-step GD, through the detector registry: the
    // audit context holds what an auditor of an in-context regressor has (generic tasks with
    // their targets, and untrained models of each architecture as clean references).
    let baselines = Arch::ALL
        .iter()
        .map(|&a| {
            build(
                a,
                ModelKind::RandomInit,
                &config,
                args.seed.wrapping_add(BASELINE_STREAM),
                false,
            )
        })
        .collect::<mesa_icl::Result<Vec<_>>>()?;
    let clean: Vec<&mesa_nn::Transformer> = baselines.iter().map(|o| &o.model).collect();
    let (fit_inputs, eval_inputs) = ([fit.encode()], [eval.encode()]);
    let context = AuditContext {
        prompts: PromptSet {
            inputs: &fit_inputs,
            targets: fit.y_q.as_slice(),
        },
        held_out: PromptSet {
            inputs: &eval_inputs,
            targets: eval.y_q.as_slice(),
        },
        clean_references: &clean,
        ..AuditContext::default()
    };
    let mut registry = Registry::new();
    mesa_gdfp::register(&mut registry)?;
    let entry = registry.model_entry(mesa_gdfp::detector::NAME)?;
    let spec = DetectorSpec {
        seed: args.seed,
        hook: mesa_nn::HookPoint::Embed,
    };
    let bar = progress(args.quiet, organisms.len(), "fingerprints");
    let verdicts = parallel_map(&organisms, |o| -> Result<Verdict> {
        // Fitting only decodes the tasks and line-searches GD: cheap enough to do per thread.
        let fitted = fit_model(entry.build(&spec)?.as_ref(), &context)?;
        let verdict = score_model(fitted.as_ref(), &o.model, &context)?;
        bar.inc(1);
        Ok(verdict)
    })
    .into_iter()
    .collect::<Result<Vec<Verdict>>>()?;
    bar.finish_and_clear();
    let prints = verdicts
        .iter()
        .map(fingerprint)
        .collect::<Result<Vec<Fingerprint>>>()?;
    let fingerprint_eta = verdicts
        .first()
        .and_then(|v| v.evidence.metrics.get("gd1_eta").copied())
        .context("no verdict")?;

    let out = output.dir();
    let run = serde_json::json!({
        "experiment": "icl_mesa",
        "seed": args.seed,
        "seeds_per_kind": args.seeds,
        "eval_tasks": args.eval_tasks,
        "config_path": args.config,
        "config": config,
        "gd1_eta": eta,
        "fingerprint_gd1_eta": fingerprint_eta,
        "fingerprint_detector": mesa_gdfp::detector::NAME,
        "gd3_eta": eta3,
        "ridge_lambda": lambda,
    });
    let curves = loss_vs_context(&organisms, &config, &tasks)?;
    let sweep = lr_sweep(&organisms, eta, &eval_tasks, y_scale)?;
    let elapsed = start.elapsed().as_secs_f64();
    let mut run = run;
    run["run_seconds_before_writing"] = serde_json::json!(elapsed);
    let models = model_rows(&organisms, &prints, gd1_loss);
    write_table(out, "models", &models, args.seed, &run)?;
    write_table(
        out,
        "auroc",
        &auroc_rows(&organisms, &prints, args.seed)?,
        args.seed,
        &run,
    )?;
    write_table(out, "loss_vs_context", &curves, args.seed, &run)?;
    write_table(out, "gd_lr_sweep", &sweep, args.seed, &run)?;
    plot_loss_vs_context(out, &curves)?;
    plot_lr_sweep(out, &sweep, eta)?;
    output.commit()?;
    let out = &args.out;
    if !args.quiet {
        println!("{}", summary(&organisms, &prints, gd1_loss));
        for r in &references {
            println!(
                "{:>18}: loss {:.4}",
                r.name(),
                r.mse(&eval_tasks)? / y_scale
            );
        }
    }
    println!(
        "wrote {} in {:.1} s",
        out.display(),
        start.elapsed().as_secs_f64()
    );
    Ok(())
}

/// The fingerprint back from the detector's verdict.
fn fingerprint(verdict: &Verdict) -> Result<Fingerprint> {
    let metric = |name: &str| -> Result<f64> {
        verdict
            .evidence
            .metrics
            .get(name)
            .copied()
            .with_context(|| format!("the fingerprint's verdict has no `{name}`"))
    };
    Ok(Fingerprint {
        icl_loss: metric("icl_loss")?,
        pred_diff: metric("pred_diff")?,
        sens_cos: metric("sens_cos")?,
        ilwd: metric("ilwd")?,
        probe_r2_xty: metric("probe_r2_xty")?,
        probe_r2_xty_baseline: metric("probe_r2_xty_baseline")?,
        score: verdict.score,
    })
}

/// The ridge penalty with the lowest loss on `tasks`, from a fixed grid.
fn best_ridge(tasks: &[Task]) -> Result<f64> {
    let mut best = (f64::INFINITY, 1.0);
    for lambda in [1e-3, 1e-2, 1e-1, 1.0, 10.0] {
        let loss = Learner::Ridge { lambda }.mse(tasks)?;
        if loss < best.0 {
            best = (loss, lambda);
        }
    }
    Ok(best.1)
}

fn to_arrays(tasks: &[Task]) -> Result<RegressionTasks> {
    let (t, (n, d)) = (tasks.len(), tasks[0].xs.dim());
    let xs = Array3::from_shape_fn((t, n, d), |(i, j, k)| tasks[i].xs[[j, k]]);
    let ys = Array2::from_shape_fn((t, n), |(i, j)| tasks[i].ys[j]);
    let xq = Array2::from_shape_fn((t, d), |(i, k)| tasks[i].x_q[k]);
    let yq = Array1::from_shape_fn(t, |i| tasks[i].y_q);
    Ok(RegressionTasks::new(xs, ys, xq, yq)?)
}

/// Maps `f` over `items` on all available cores, one item per core, keeping the order. Each
/// item's work is seeded on its own, so the results do not depend on the number of threads.
fn parallel_map<T: Sync, R: Send>(items: &[T], f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    mesa_nn::parallel_map(0, items.iter().collect(), |_, x| f(x))
}

fn progress(quiet: bool, len: usize, what: &str) -> ProgressBar {
    if quiet {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(len as u64);
    bar.set_style(
        ProgressStyle::with_template(&format!(
            "{{bar:30}} {{pos}}/{{len}} {what} {{elapsed}}<{{eta}}"
        ))
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar
}

fn model_id(o: &Organism) -> String {
    format!("{}-{}-{}", o.arch.name(), o.kind.name(), o.seed)
}

/// One model of the zoo and its fingerprint against line-searched one-step GD.
#[derive(Serialize)]
struct ModelRow {
    model_id: String,
    arch: &'static str,
    kind: &'static str,
    seed: u64,
    icl_loss: f64,
    gd1_loss: f64,
    pred_diff_gd1: f64,
    sens_cos_gd1: f64,
    ilwd_gd1: f64,
    probe_r2_xty: f64,
    probe_r2_xty_random_init: f64,
    score: f64,
    /// Mean training loss (raw MSE) over the last 50 steps; none for the random-init control.
    final_train_loss: Option<f64>,
}

fn model_rows(zoo: &[Organism], prints: &[Fingerprint], gd1_loss: f64) -> Vec<ModelRow> {
    zoo.iter()
        .zip(prints)
        .map(|(o, p)| ModelRow {
            model_id: model_id(o),
            arch: o.arch.name(),
            kind: o.kind.name(),
            seed: o.seed,
            icl_loss: p.icl_loss,
            gd1_loss,
            pred_diff_gd1: p.pred_diff,
            sens_cos_gd1: p.sens_cos,
            ilwd_gd1: p.ilwd,
            probe_r2_xty: p.probe_r2_xty,
            probe_r2_xty_random_init: p.probe_r2_xty_baseline,
            score: p.score,
            final_train_loss: final_train_loss(o),
        })
        .collect()
}

/// Mean loss of the last (up to) 50 training steps: less noisy than the last batch alone.
fn final_train_loss(o: &Organism) -> Option<f64> {
    let tail = &o.log[o.log.len().saturating_sub(50)..];
    (!tail.is_empty())
        .then(|| tail.iter().map(|s| f64::from(s.loss)).sum::<f64>() / tail.len() as f64)
}

/// The metrics that enter the AUROC table, each oriented so that higher means "more like GD".
fn metric_values(p: &Fingerprint) -> [(&'static str, f64); 5] {
    [
        ("score", p.score),
        ("sens_cos_gd1", p.sens_cos),
        ("neg_pred_diff_gd1", -p.pred_diff),
        ("neg_ilwd_gd1", -p.ilwd),
        ("probe_r2_xty", p.probe_r2_xty),
    ]
}

/// A model-level AUROC: icl-trained models (positives) vs controls, with 95% CIs.
#[derive(Serialize)]
struct AurocRow {
    metric: &'static str,
    arch: &'static str,
    control: &'static str,
    n_pos: usize,
    n_neg: usize,
    auroc: f64,
    delong_lo: f64,
    delong_hi: f64,
    bootstrap_lo: f64,
    bootstrap_hi: f64,
}

fn auroc_rows(zoo: &[Organism], prints: &[Fingerprint], seed: u64) -> Result<Vec<AurocRow>> {
    let mut rows = Vec::new();
    let archs: [Option<Arch>; 3] = [None, Some(Arch::Lsa), Some(Arch::Softmax)];
    let controls: [Option<ModelKind>; 4] = [
        None,
        Some(ModelKind::RandomInit),
        Some(ModelKind::FixedW),
        Some(ModelKind::FewTasks),
    ];
    for m in 0..metric_values(&prints[0]).len() {
        for arch in archs {
            for control in controls {
                let (mut scores, mut labels) = (Vec::new(), Vec::new());
                for (o, p) in zoo.iter().zip(prints) {
                    let in_arch = arch.is_none_or(|a| a == o.arch);
                    let in_set = o.kind.is_mesa_optimizer() || control.is_none_or(|c| c == o.kind);
                    if in_arch && in_set {
                        scores.push(metric_values(p)[m].1);
                        labels.push(o.kind.is_mesa_optimizer());
                    }
                }
                let delong = mesa_eval::auroc_delong(&scores, &labels, 0.95)?;
                let boot = mesa_eval::auroc_bootstrap(
                    &scores,
                    &labels,
                    &mesa_eval::BootstrapParams::new(seed),
                )?;
                rows.push(AurocRow {
                    metric: metric_values(&prints[0])[m].0,
                    arch: arch.map_or("all", Arch::name),
                    control: control.map_or("all", ModelKind::name),
                    n_pos: delong.n_pos,
                    n_neg: delong.n_neg,
                    auroc: delong.auroc,
                    delong_lo: delong.lo,
                    delong_hi: delong.hi,
                    bootstrap_lo: boot.lo,
                    bootstrap_hi: boot.hi,
                });
            }
        }
    }
    Ok(rows)
}

/// In-context loss at one number of context examples: a model kind of one architecture
/// (mean, sd, lowest and highest over its seeds) or a reference learner (`arch` = `reference`).
#[derive(Serialize)]
struct ContextRow {
    curve: String,
    arch: &'static str,
    n_context: usize,
    loss_mean: f64,
    loss_sd: f64,
    loss_min: f64,
    loss_max: f64,
    n_models: usize,
}

fn loss_vs_context(
    zoo: &[Organism],
    config: &IclConfig,
    tasks: &dyn Fn(u64, usize, usize) -> Vec<Task>,
) -> Result<Vec<ContextRow>> {
    let mut rows = Vec::new();
    for n in 1..=config.task.n_context {
        let set = tasks(CONTEXT_STREAM + n as u64, 256, n);
        let scale = set.iter().map(|t| t.y_q * t.y_q).sum::<f64>() / set.len() as f64;
        let search = tasks(LINE_SEARCH_STREAM + n as u64, 2048, n);
        let learners = [
            Learner::Gd1 {
                eta: line_search_gd1(&search)?,
            },
            Learner::GdK {
                eta: line_search_gdk(&search, 3)?,
                steps: 3,
            },
            Learner::Ridge {
                lambda: best_ridge(&search)?,
            },
            Learner::LeastSquares,
            Learner::NearestNeighbour,
            Learner::Averaging,
        ];
        for l in learners {
            // Least squares is undefined for a singular Gram matrix (never with Gaussian x).
            let loss = l.mse(&set)? / scale;
            rows.push(ContextRow {
                curve: l.name(),
                arch: "reference",
                n_context: n,
                loss_mean: loss,
                loss_sd: 0.0,
                loss_min: loss,
                loss_max: loss,
                n_models: 1,
            });
        }
        let input = mesa_icl::encode(&set)?;
        let losses = parallel_map(zoo, |o| -> Result<f64> {
            let y = mesa_icl::query_predictions(&o.model.forward(&input)?);
            Ok(set
                .iter()
                .zip(y.iter())
                .map(|(t, y)| (t.y_q - y).powi(2))
                .sum::<f64>()
                / set.len() as f64
                / scale)
        })
        .into_iter()
        .collect::<Result<Vec<f64>>>()?;
        for arch in Arch::ALL {
            for kind in ModelKind::ALL {
                let l: Vec<f64> = zoo
                    .iter()
                    .zip(&losses)
                    .filter(|(o, _)| o.arch == arch && o.kind == kind)
                    .map(|(_, l)| *l)
                    .collect();
                let (mean, min, max) = mean_min_max(&l).context("a model kind with no models")?;
                let sd = (l.iter().map(|v| (v - mean).powi(2)).sum::<f64>()
                    / (l.len() as f64 - 1.0).max(1.0))
                .sqrt();
                rows.push(ContextRow {
                    curve: kind.name().into(),
                    arch: arch.name(),
                    n_context: n,
                    loss_mean: mean,
                    loss_sd: sd,
                    loss_min: min,
                    loss_max: max,
                    n_models: l.len(),
                });
            }
        }
    }
    Ok(rows)
}

/// One-step GD's loss at one learning rate, beside each architecture's icl-trained models.
#[derive(Serialize)]
struct SweepRow {
    eta: f64,
    eta_over_line_searched: f64,
    gd1_loss: f64,
    lsa_icl_trained_loss: f64,
    lsa_icl_trained_min: f64,
    lsa_icl_trained_max: f64,
    softmax_icl_trained_loss: f64,
    softmax_icl_trained_min: f64,
    softmax_icl_trained_max: f64,
}

fn lr_sweep(zoo: &[Organism], eta: f64, tasks: &[Task], scale: f64) -> Result<Vec<SweepRow>> {
    let input = mesa_icl::encode(tasks)?;
    let mut icl = [(0.0, 0.0, 0.0); 2];
    for (i, arch) in Arch::ALL.iter().enumerate() {
        let losses: Vec<f64> = zoo
            .iter()
            .filter(|o| o.arch == *arch && o.kind == ModelKind::IclTrained)
            .map(|o| -> Result<f64> {
                let y = mesa_icl::query_predictions(&o.model.forward(&input)?);
                Ok(tasks
                    .iter()
                    .zip(y.iter())
                    .map(|(t, y)| (t.y_q - y).powi(2))
                    .sum::<f64>()
                    / tasks.len() as f64
                    / scale)
            })
            .collect::<Result<_>>()?;
        icl[i] = mean_min_max(&losses).context("no icl-trained model")?;
    }
    let mut rows = Vec::new();
    for k in 0..=40 {
        let ratio = k as f64 / 20.0;
        let loss = Learner::Gd1 { eta: eta * ratio }.mse(tasks)? / scale;
        rows.push(SweepRow {
            eta: eta * ratio,
            eta_over_line_searched: ratio,
            gd1_loss: loss,
            lsa_icl_trained_loss: icl[0].0,
            lsa_icl_trained_min: icl[0].1,
            lsa_icl_trained_max: icl[0].2,
            softmax_icl_trained_loss: icl[1].0,
            softmax_icl_trained_min: icl[1].1,
            softmax_icl_trained_max: icl[1].2,
        });
    }
    Ok(rows)
}

/// Top of the loss axis of the loss-vs-context plot.
const LOSS_AXIS_MAX: f64 = 2.5;

/// A reference learner's name in the plots.
fn learner_label(name: &str) -> String {
    match name {
        "gd1" => "one-step GD (line-searched)".into(),
        "gd3" => "3-step GD (line-searched)".into(),
        "ridge" => "ridge".into(),
        "least_squares" => "least squares".into(),
        "nearest_neighbour" => "nearest neighbour".into(),
        "averaging" => "averaging".into(),
        other => other.replace('_', " "),
    }
}

/// In-context loss against the number of context examples: one panel per architecture, a line
/// per model kind (mean over seeds, band lowest to highest) and a dashed line per reference
/// learner (the same in both panels).
fn plot_loss_vs_context(out: &Path, rows: &[ContextRow]) -> Result<()> {
    let mut panels = Vec::new();
    for (a, arch) in Arch::ALL.iter().enumerate() {
        let mut series = Vec::new();
        for kind in ModelKind::ALL {
            let pts: Vec<&ContextRow> = rows
                .iter()
                .filter(|r| r.arch == arch.name() && r.curve == kind.name())
                .collect();
            series.push(BandSeries::with_band(
                kind.name(),
                pts.iter().map(|r| r.n_context as f64).collect(),
                pts.iter().map(|r| r.loss_mean).collect(),
                pts.iter().map(|r| r.loss_min).collect(),
                pts.iter().map(|r| r.loss_max).collect(),
            ));
        }
        let mut references: Vec<&str> = Vec::new();
        for r in rows.iter().filter(|r| r.arch == "reference") {
            if !references.contains(&r.curve.as_str()) {
                references.push(&r.curve);
            }
        }
        for name in references {
            let pts: Vec<&ContextRow> = rows
                .iter()
                .filter(|r| r.arch == "reference" && r.curve == name)
                .collect();
            series.push(
                BandSeries::line(
                    learner_label(name),
                    pts.iter().map(|r| r.n_context as f64).collect(),
                    pts.iter().map(|r| r.loss_mean).collect(),
                )
                .dashed(),
            );
        }
        let mut panel = Panel::new(
            format!(
                "{} models (solid) and reference learners (dashed)",
                arch.name()
            ),
            "context examples N",
            format!("loss / E[y_q^2] (drawn at most {LOSS_AXIS_MAX})"),
            series,
        );
        // Averaging and nearest neighbour reach several times the task scale at small N; the
        // table has every value.
        panel.y_range = Some((0.0, LOSS_AXIS_MAX));
        panel.clip_y = true;
        panel.legend = (a == 1).then_some(SeriesLabelPosition::UpperRight);
        panels.push(panel);
    }
    panel_grid_plot(
        out,
        "loss_vs_context",
        "In-context loss vs number of context examples (mean over seeds, band: min to max)",
        &panels,
        2,
    )
    .context("plotting loss_vs_context")?;
    Ok(())
}

/// One-step GD's loss as its learning rate varies, beside the icl-trained models' loss (flat:
/// the models have no learning rate; band: lowest to highest seed).
fn plot_lr_sweep(out: &Path, rows: &[SweepRow], eta: f64) -> Result<()> {
    let x: Vec<f64> = rows.iter().map(|r| r.eta).collect();
    let col = |f: fn(&SweepRow) -> f64| rows.iter().map(f).collect::<Vec<f64>>();
    let (lo, hi) = rows
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), r| {
            let vals = [r.gd1_loss, r.lsa_icl_trained_min, r.softmax_icl_trained_min];
            let top = [r.gd1_loss, r.lsa_icl_trained_max, r.softmax_icl_trained_max];
            (
                vals.iter().copied().fold(lo, f64::min),
                top.iter().copied().fold(hi, f64::max),
            )
        });
    let series = vec![
        BandSeries::line("one-step GD", x.clone(), col(|r| r.gd1_loss)),
        BandSeries::with_band(
            "lsa icl-trained",
            x.clone(),
            col(|r| r.lsa_icl_trained_loss),
            col(|r| r.lsa_icl_trained_min),
            col(|r| r.lsa_icl_trained_max),
        ),
        BandSeries::with_band(
            "softmax icl-trained",
            x.clone(),
            col(|r| r.softmax_icl_trained_loss),
            col(|r| r.softmax_icl_trained_min),
            col(|r| r.softmax_icl_trained_max),
        ),
        BandSeries::line("line-searched eta", vec![eta, eta], vec![lo, hi]).dashed(),
    ];
    let mut panel = Panel::new(
        "",
        format!("learning rate eta of one-step GD (line-searched: {eta:.4})"),
        "loss / E[y_q^2]",
        series,
    );
    panel.legend = Some(SeriesLabelPosition::UpperRight);
    lines_plot(
        out,
        "gd_lr_sweep",
        "Trained models' loss beside one-step GD as its learning rate varies",
        &panel,
    )
    .context("plotting gd_lr_sweep")?;
    Ok(())
}

fn summary(zoo: &[Organism], prints: &[Fingerprint], gd1_loss: f64) -> String {
    let mut s = format!("one-step GD (line-searched) loss {gd1_loss:.4}\n{:<8} {:<12} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9}\n", "arch", "kind", "icl_loss", "pred_diff", "sens_cos", "ilwd", "probe_r2", "score");
    for arch in Arch::ALL {
        for kind in ModelKind::ALL {
            let ps: Vec<&Fingerprint> = zoo
                .iter()
                .zip(prints)
                .filter(|(o, _)| o.arch == arch && o.kind == kind)
                .map(|(_, p)| p)
                .collect();
            let mean =
                |g: fn(&Fingerprint) -> f64| ps.iter().map(|p| g(p)).sum::<f64>() / ps.len() as f64;
            s += &format!(
                "{:<8} {:<12} {:>9.4} {:>9.4} {:>9.4} {:>9.4} {:>9.4} {:>9.4}\n",
                arch.name(),
                kind.name(),
                mean(|p| p.icl_loss),
                mean(|p| p.pred_diff),
                mean(|p| p.sens_cos),
                mean(|p| p.ilwd),
                mean(|p| p.probe_r2_xty),
                mean(|p| p.score)
            );
        }
    }
    s
}
