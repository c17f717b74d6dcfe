//! The plots of `icl_mesa`: loss against context length and the one-step GD learning-rate
//! sweep.

use std::path::Path;

use anyhow::{Context, Result};
use mesa_eval::plot::{lines_plot, panel_grid_plot, BandSeries, Panel, SeriesLabelPosition};
use mesa_icl::{Arch, ModelKind};

use super::tables::{ContextRow, SweepRow};

/// Top of the loss axis of the loss-vs-context plot.
pub const LOSS_AXIS_MAX: f64 = 2.5;

/// A reference learner's name in the plots.
pub fn learner_label(name: &str) -> String {
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
pub fn plot_loss_vs_context(out: &Path, rows: &[ContextRow]) -> Result<()> {
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
pub fn plot_lr_sweep(out: &Path, rows: &[SweepRow], eta: f64) -> Result<()> {
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
