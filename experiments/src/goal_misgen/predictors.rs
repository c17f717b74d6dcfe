//! Does a training-only signal predict goal misgeneralization? Spearman and AUROC per group
//! of models.

use anyhow::Result;
use mesa_eval::{auroc_bootstrap, spearman_permutation_test, BootstrapParams};

use super::{ModelRow, PredictorRow, RowMetric, Signal};

/// Spearman (with a permutation p-value) and AUROC of each training-only signal against the
/// measured misgeneralization and the test true-goal rate, over all models, per environment,
/// and per setting when it has at least 4 models (seed-to-seed variation at a fixed
/// randomization, which the config cannot explain).
pub fn predictor_rows(rows: &[ModelRow]) -> Result<Vec<PredictorRow>> {
    let mut groups: Vec<(String, Vec<&ModelRow>)> = vec![("all".into(), rows.iter().collect())];
    for env in ["maze", "corridor", "keys_chests"] {
        let models: Vec<&ModelRow> = rows.iter().filter(|r| r.env == env).collect();
        let mut settings: Vec<&str> = models.iter().map(|r| r.randomization.as_str()).collect();
        settings.dedup();
        if settings.len() > 1 {
            groups.push((env.to_string(), models.clone()));
        }
        for setting in settings {
            let within: Vec<&ModelRow> = models
                .iter()
                .copied()
                .filter(|r| r.randomization == setting)
                .collect();
            if within.len() >= 4 {
                let prefix = if env == "maze" {
                    "k"
                } else if env == "corridor" {
                    "r"
                } else {
                    ""
                };
                groups.push((format!("{env} {prefix}{setting}"), within));
            }
        }
    }
    let signals: [(&'static str, Signal); 2] = [
        ("goal_sensitivity", |r| r.goal_sensitivity),
        ("goal_probe_excess", |r| r.goal_probe_excess),
    ];
    let targets: [(&'static str, RowMetric); 2] = [
        ("misgen_rate", |r| r.misgen_rate),
        ("test_true_goal_rate", |r| Some(r.test_true_goal_rate)),
    ];
    let mut out = Vec::new();
    for (group, models) in &groups {
        for (target_name, target_of) in targets {
            let kept: Vec<(&ModelRow, f64)> = models
                .iter()
                .filter_map(|r| target_of(r).map(|t| (*r, t)))
                .collect();
            let target: Vec<f64> = kept.iter().map(|(_, t)| *t).collect();
            let labels: Vec<bool> = target
                .iter()
                .map(|&t| {
                    if target_name == "misgen_rate" {
                        t > 0.5
                    } else {
                        t < 0.5
                    }
                })
                .collect();
            for (name, signal) in signals {
                let values: Vec<f64> = kept.iter().map(|(r, _)| signal(r)).collect();
                let negated: Vec<f64> = values.iter().map(|v| -v).collect();
                let report = auroc_bootstrap(
                    &negated,
                    &labels,
                    &BootstrapParams {
                        n_resamples: 2000,
                        seed: 0,
                        confidence: 0.95,
                    },
                )
                .ok();
                // Undefined (None) when the signal or the target is constant over the models.
                let test = spearman_permutation_test(&values, &target, 10_000, 0).ok();
                out.push(PredictorRow {
                    group: group.clone(),
                    signal: name,
                    target: target_name,
                    n_models: kept.len(),
                    n_positive: labels.iter().filter(|&&l| l).count(),
                    spearman: test.map(|t| t.rho),
                    spearman_p: test.map(|t| t.p_value),
                    auroc: report.as_ref().map(|r| r.auroc),
                    auroc_lo: report.as_ref().map(|r| r.lo),
                    auroc_hi: report.as_ref().map(|r| r.hi),
                });
            }
        }
    }
    Ok(out)
}
