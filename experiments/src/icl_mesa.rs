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

mod plots;
mod tables;

use std::path::PathBuf;
use std::time::Instant;

use crate::write_table;
use anyhow::{Context, Result};
use clap::Parser;
use indicatif::{ProgressBar, ProgressStyle};
use mesa_detect::{
    fit_model, score_model, AuditContext, DetectorSpec, PromptSet, Registry, Verdict,
};
use mesa_gdfp::{Fingerprint, RegressionTasks};
use mesa_icl::{
    build, line_search_gd1, line_search_gdk, sample_tasks, Arch, IclConfig, Learner, ModelKind,
    Organism, Task, TaskSource,
};
use ndarray::{Array1, Array2, Array3};
use rand::rngs::StdRng;
use rand::SeedableRng;

use plots::{plot_loss_vs_context, plot_lr_sweep};
use tables::{auroc_rows, loss_vs_context, lr_sweep, model_rows, summary};

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
