//! The tables of `icl_mesa`: per-model fingerprints, AUROCs per metric, loss against the
//! number of context examples, the one-step GD learning-rate sweep, and the printed summary.

use anyhow::{Context, Result};
use mesa_gdfp::Fingerprint;
use mesa_icl::{
    line_search_gd1, line_search_gdk, Arch, IclConfig, Learner, ModelKind, Organism, Task,
};
use serde::Serialize;

use super::{best_ridge, model_id, parallel_map, CONTEXT_STREAM, LINE_SEARCH_STREAM};
use crate::mean_min_max;

/// One model of the zoo and its fingerprint against line-searched one-step GD.
#[derive(Serialize)]
pub struct ModelRow {
    pub model_id: String,
    pub arch: &'static str,
    pub kind: &'static str,
    pub seed: u64,
    pub icl_loss: f64,
    pub gd1_loss: f64,
    pub pred_diff_gd1: f64,
    pub sens_cos_gd1: f64,
    pub ilwd_gd1: f64,
    pub probe_r2_xty: f64,
    pub probe_r2_xty_random_init: f64,
    pub score: f64,
    /// Mean training loss (raw MSE) over the last 50 steps; none for the random-init control.
    pub final_train_loss: Option<f64>,
}

pub fn model_rows(zoo: &[Organism], prints: &[Fingerprint], gd1_loss: f64) -> Vec<ModelRow> {
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
pub fn final_train_loss(o: &Organism) -> Option<f64> {
    let tail = &o.log[o.log.len().saturating_sub(50)..];
    (!tail.is_empty())
        .then(|| tail.iter().map(|s| f64::from(s.loss)).sum::<f64>() / tail.len() as f64)
}

/// The metrics that enter the AUROC table, each oriented so that higher means "more like GD".
pub fn metric_values(p: &Fingerprint) -> [(&'static str, f64); 5] {
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
pub struct AurocRow {
    pub metric: &'static str,
    pub arch: &'static str,
    pub control: &'static str,
    pub n_pos: usize,
    pub n_neg: usize,
    pub auroc: f64,
    pub delong_lo: f64,
    pub delong_hi: f64,
    pub bootstrap_lo: f64,
    pub bootstrap_hi: f64,
}

pub fn auroc_rows(zoo: &[Organism], prints: &[Fingerprint], seed: u64) -> Result<Vec<AurocRow>> {
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
pub struct ContextRow {
    pub curve: String,
    pub arch: &'static str,
    pub n_context: usize,
    pub loss_mean: f64,
    pub loss_sd: f64,
    pub loss_min: f64,
    pub loss_max: f64,
    pub n_models: usize,
}

pub fn loss_vs_context(
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
pub struct SweepRow {
    pub eta: f64,
    pub eta_over_line_searched: f64,
    pub gd1_loss: f64,
    pub lsa_icl_trained_loss: f64,
    pub lsa_icl_trained_min: f64,
    pub lsa_icl_trained_max: f64,
    pub softmax_icl_trained_loss: f64,
    pub softmax_icl_trained_min: f64,
    pub softmax_icl_trained_max: f64,
}

pub fn lr_sweep(zoo: &[Organism], eta: f64, tasks: &[Task], scale: f64) -> Result<Vec<SweepRow>> {
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

pub fn summary(zoo: &[Organism], prints: &[Fingerprint], gd1_loss: f64) -> String {
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
