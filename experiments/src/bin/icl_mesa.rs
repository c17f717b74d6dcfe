//! A literal mesa-optimizer: a zoo of in-context regression transformers (icl-trained and three
//! non-optimizer controls, for two architectures), each fingerprinted against one-step gradient
//! descent, with model-level AUROCs of "is this model an in-context optimizer?".
//!
//! `cargo run --release -p experiments --bin icl_mesa` writes to `results/icl_mesa/`:
//! `models.csv` (per-model metrics), `auroc.csv` (score and each metric alone, icl-trained vs
//! all controls and vs each), `loss_vs_context.csv` (loss against the number of context
//! examples per model kind and reference learner), `gd_lr_sweep.csv` (one-step GD loss as its
//! learning rate varies, beside each architecture's icl-trained loss) and `meta.json`.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result};
use clap::Parser;
use indicatif::{ProgressBar, ProgressStyle};
use mesa_gdfp::{Fingerprint, GdFingerprintParams, RegressionTasks};
use mesa_icl::{
    build, line_search_gd1, line_search_gdk, sample_tasks, Arch, IclConfig, Learner, ModelKind,
    Organism, Task, TaskSource,
};
use ndarray::{Array1, Array2, Array3};
use rand::rngs::StdRng;
use rand::SeedableRng;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// In-context regression transformers vs non-optimizer controls, scored by the
/// gradient-descent fingerprint.
#[derive(Parser, Debug)]
struct Args {
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

fn main() -> Result<()> {
    let args = Args::parse();
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
    let w_gd1 = learner_weights(&Learner::Gd1 { eta }, &eval_tasks)?;
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

    // Fingerprints against line-searched one-step GD.
    let detector = GdFingerprintParams::default().seed(args.seed).check()?;
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
    let bar = progress(args.quiet, organisms.len(), "fingerprints");
    let prints = parallel_map(&organisms, |o| {
        let baseline = &baselines[Arch::ALL.iter().position(|&a| a == o.arch).unwrap_or(0)];
        let fp = detector.measure(&o.model, &baseline.model, &fit, &eval, &w_gd1);
        bar.inc(1);
        fp
    })
    .into_iter()
    .collect::<mesa_gdfp::Result<Vec<Fingerprint>>>()?;
    bar.finish_and_clear();

    let out = &args.out;
    write_models(out, &organisms, &prints, gd1_loss)?;
    write_aurocs(out, &organisms, &prints, args.seed)?;
    write_loss_vs_context(out, &organisms, &config, &tasks)?;
    write_lr_sweep(out, &organisms, eta, &eval_tasks, y_scale)?;
    let elapsed = start.elapsed().as_secs_f64();
    let meta = format!(
        "{{\n  \"experiment\": \"icl_mesa\",\n  \"seed\": {},\n  \"seeds_per_kind\": {},\n  \"eval_tasks\": {},\n  \"config_path\": {:?},\n  \"config\": {:?},\n  \"git_revision\": {:?},\n  \"gd1_eta\": {eta},\n  \"gd3_eta\": {eta3},\n  \"ridge_lambda\": {lambda},\n  \"run_seconds\": {elapsed:.1}\n}}\n",
        args.seed,
        args.seeds,
        args.eval_tasks,
        args.config.display().to_string(),
        toml::to_string(&config)?,
        mesa_nn::git_revision().unwrap_or_default(),
    );
    mesa_nn::write_atomic(&out.join("meta.json"), meta.as_bytes())?;
    if !args.quiet {
        println!("{}", summary(&organisms, &prints, gd1_loss));
        println!("wrote {} in {elapsed:.1} s", out.display());
        for r in &references {
            println!(
                "{:>18}: loss {:.4}",
                r.name(),
                r.mse(&eval_tasks)? / y_scale
            );
        }
    }
    Ok(())
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

fn learner_weights(learner: &Learner, tasks: &[Task]) -> Result<Array2<f64>> {
    let d = tasks[0].x_q.len();
    let mut w = Array2::zeros((tasks.len(), d));
    for (i, t) in tasks.iter().enumerate() {
        let wi = learner
            .weights(t)?
            .context("the reference learner is not linear")?;
        w.row_mut(i).assign(&wi);
    }
    Ok(w)
}

fn to_arrays(tasks: &[Task]) -> Result<RegressionTasks> {
    let (t, (n, d)) = (tasks.len(), tasks[0].xs.dim());
    let xs = Array3::from_shape_fn((t, n, d), |(i, j, k)| tasks[i].xs[[j, k]]);
    let ys = Array2::from_shape_fn((t, n), |(i, j)| tasks[i].ys[j]);
    let xq = Array2::from_shape_fn((t, d), |(i, k)| tasks[i].x_q[k]);
    let yq = Array1::from_shape_fn(t, |i| tasks[i].y_q);
    Ok(RegressionTasks::new(xs, ys, xq, yq)?)
}

/// Maps `f` over `items` on all available cores, keeping the order. Each item's work is seeded
/// on its own, so the results do not depend on the number of threads.
fn parallel_map<T: Sync, R: Send>(items: &[T], f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(items.len().max(1));
    let next = std::sync::atomic::AtomicUsize::new(0);
    let mut results: Vec<Option<R>> = (0..items.len()).map(|_| None).collect();
    let slots = std::sync::Mutex::new(&mut results);
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if i >= items.len() {
                    break;
                }
                let r = f(&items[i]);
                if let Ok(mut slots) = slots.lock() {
                    slots[i] = Some(r);
                }
            });
        }
    });
    results
        .into_iter()
        .map(|r| r.expect("every item was processed"))
        .collect()
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

/// A table as CSV text, written through a temporary file and a rename.
fn write_csv(path: &Path, header: &[&str], rows: &[Vec<String>]) -> Result<()> {
    let mut text = header.join(",") + "\n";
    for row in rows {
        anyhow::ensure!(
            row.len() == header.len(),
            "row of {} cells for {} columns",
            row.len(),
            header.len()
        );
        text += &(row.join(",") + "\n");
    }
    mesa_nn::write_atomic(path, text.as_bytes())
        .with_context(|| format!("writing {}", path.display()))
}

fn f(x: f64) -> String {
    format!("{x:.6}")
}

fn write_models(out: &Path, zoo: &[Organism], prints: &[Fingerprint], gd1_loss: f64) -> Result<()> {
    let header = [
        "model_id",
        "arch",
        "kind",
        "seed",
        "icl_loss",
        "gd1_loss",
        "pred_diff_gd1",
        "sens_cos_gd1",
        "ilwd_gd1",
        "probe_r2_xty",
        "probe_r2_xty_random_init",
        "score",
        "final_train_loss",
    ];
    let rows: Vec<Vec<String>> = zoo
        .iter()
        .zip(prints)
        .map(|(o, p)| {
            vec![
                model_id(o),
                o.arch.name().into(),
                o.kind.name().into(),
                o.seed.to_string(),
                f(p.icl_loss),
                f(gd1_loss),
                f(p.pred_diff),
                f(p.sens_cos),
                f(p.ilwd),
                f(p.probe_r2_xty),
                f(p.probe_r2_xty_baseline),
                f(p.score),
                o.log.last().map_or(String::new(), |s| f(f64::from(s.loss))),
            ]
        })
        .collect();
    write_csv(&out.join("models.csv"), &header, &rows)
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

fn write_aurocs(out: &Path, zoo: &[Organism], prints: &[Fingerprint], seed: u64) -> Result<()> {
    let header = [
        "metric",
        "arch",
        "control",
        "n_pos",
        "n_neg",
        "auroc",
        "delong_lo",
        "delong_hi",
        "bootstrap_lo",
        "bootstrap_hi",
    ];
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
                rows.push(vec![
                    metric_values(&prints[0])[m].0.into(),
                    arch.map_or("all", Arch::name).into(),
                    control.map_or("all", ModelKind::name).into(),
                    delong.n_pos.to_string(),
                    delong.n_neg.to_string(),
                    f(delong.auroc),
                    f(delong.lo),
                    f(delong.hi),
                    f(boot.lo),
                    f(boot.hi),
                ]);
            }
        }
    }
    write_csv(&out.join("auroc.csv"), &header, &rows)
}

fn write_loss_vs_context(
    out: &Path,
    zoo: &[Organism],
    config: &IclConfig,
    tasks: &dyn Fn(u64, usize, usize) -> Vec<Task>,
) -> Result<()> {
    let header = [
        "curve",
        "arch",
        "n_context",
        "loss_mean",
        "loss_sd",
        "n_models",
    ];
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
            rows.push(vec![
                l.name(),
                "reference".into(),
                n.to_string(),
                f(loss),
                f(0.0),
                "1".into(),
            ]);
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
                let mean = l.iter().sum::<f64>() / l.len() as f64;
                let sd = (l.iter().map(|v| (v - mean).powi(2)).sum::<f64>()
                    / (l.len() as f64 - 1.0).max(1.0))
                .sqrt();
                rows.push(vec![
                    kind.name().into(),
                    arch.name().into(),
                    n.to_string(),
                    f(mean),
                    f(sd),
                    l.len().to_string(),
                ]);
            }
        }
    }
    write_csv(&out.join("loss_vs_context.csv"), &header, &rows)
}

fn write_lr_sweep(
    out: &Path,
    zoo: &[Organism],
    eta: f64,
    tasks: &[Task],
    scale: f64,
) -> Result<()> {
    let header = [
        "eta",
        "eta_over_line_searched",
        "gd1_loss",
        "lsa_icl_trained_loss",
        "softmax_icl_trained_loss",
    ];
    let input = mesa_icl::encode(tasks)?;
    let mut icl = [0.0; 2];
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
        icl[i] = losses.iter().sum::<f64>() / losses.len().max(1) as f64;
    }
    let mut rows = Vec::new();
    for k in 0..=40 {
        let ratio = k as f64 / 20.0;
        let loss = Learner::Gd1 { eta: eta * ratio }.mse(tasks)? / scale;
        rows.push(vec![
            f(eta * ratio),
            f(ratio),
            f(loss),
            f(icl[0]),
            f(icl[1]),
        ]);
    }
    write_csv(&out.join("gd_lr_sweep.csv"), &header, &rows)
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
