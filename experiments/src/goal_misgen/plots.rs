//! The goal-misgeneralization plots: rates against the randomization, goal probes by layer,
//! the goal vector's effect and agent paths.

use std::path::Path;

use anyhow::Result;
use mesa_eval::plot::{
    grid_heatmap_plot, panel_grid_plot, BandSeries, GridPanel, Panel, SeriesLabelPosition,
};
use mesa_goalmisgen::{EnvSpec, Outcome, Region};

use super::{
    GoalVectorRow, Job, ModelResult, ModelRow, ProbeRow, RowMetric, VectorMetric,
    GOAL_VECTOR_SCALES, HEATMAP_MAZES,
};
use crate::mean_min_max;

/// Per randomization value (sorted), the mean / min / max over seeds of `value`.
pub fn band(rows: &[&ModelRow], value: impl Fn(&ModelRow) -> Option<f64>) -> Option<BandSeries> {
    let mut xs: Vec<f64> = rows.iter().map(|r| r.randomization_value).collect();
    xs.sort_by(f64::total_cmp);
    xs.dedup();
    let (mut x, mut y, mut lo, mut hi) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for v in xs {
        let vals: Vec<f64> = rows
            .iter()
            .filter(|r| r.randomization_value == v)
            .filter_map(|r| value(r))
            .collect();
        if let Some((m, l, h)) = mean_min_max(&vals) {
            x.push(v);
            y.push(m);
            lo.push(l);
            hi.push(h);
        }
    }
    (!x.is_empty()).then(|| BandSeries::with_band("", x, y, lo, hi))
}

/// Misgeneralization, proxy, true-goal and training success rates against the randomization,
/// one panel per environment, a band from the lowest to the highest seed.
pub fn misgen_plot(out: &Path, rows: &[ModelRow]) -> Result<()> {
    let mut panels = Vec::new();
    for (env, x_label) in [
        (
            "maze",
            "k: side of the top-right region holding the training cheese",
        ),
        ("corridor", "random_percent: training coins placed anywhere"),
        (
            "keys_chests",
            "(one setting: few keys, many chests in training)",
        ),
    ] {
        let env_rows: Vec<&ModelRow> = rows.iter().filter(|r| r.env == env).collect();
        if env_rows.is_empty() {
            continue;
        }
        let mut series = Vec::new();
        let metrics: [(&str, RowMetric); 4] = [
            ("misgen rate (test)", |r| r.misgen_rate),
            ("proxy rate (test)", |r| Some(r.test_proxy_rate)),
            ("true-goal rate (test)", |r| Some(r.test_true_goal_rate)),
            ("training success", |r| Some(r.train_success)),
        ];
        for (label, metric) in metrics {
            if let Some(mut s) = band(&env_rows, metric) {
                s.label = label.to_string();
                series.push(s);
            }
        }
        let mut panel = Panel::new(env, x_label, "rate", series);
        panel.y_range = Some((0.0, 1.0));
        panel.legend = (env == "maze").then_some(SeriesLabelPosition::MiddleRight);
        panels.push(panel);
    }
    panel_grid_plot(
        out,
        "misgen_vs_randomization",
        "Goal misgeneralization against training randomization (mean over seeds, band: min to max)",
        &panels,
        3,
    )?;
    Ok(())
}

/// Goal-probe accuracy by layer, one panel per setting where the goal cell varies (more than
/// one cell among the probe's states): the trained models beside the same probe on the models
/// at random init (mean, band from the lowest to the highest seed), over the best baseline.
pub fn probe_plot(out: &Path, probes: &[ProbeRow]) -> Result<()> {
    let mut settings: Vec<(&str, String)> = Vec::new();
    for p in probes.iter().filter(|p| p.n_classes > 1) {
        let setting = (p.env, p.randomization.clone());
        if !settings.contains(&setting) {
            settings.push(setting);
        }
    }
    let mut panels = Vec::new();
    for (env, randomization) in settings {
        let rows: Vec<&ProbeRow> = probes
            .iter()
            .filter(|p| p.env == env && p.randomization == randomization)
            .collect();
        let mut layers: Vec<usize> = rows.iter().map(|p| p.layer).collect();
        layers.sort_unstable();
        layers.dedup();
        let mut series = Vec::new();
        for model in ["trained", "random-init"] {
            let (mut x, mut y, mut lo, mut hi) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
            for &l in &layers {
                let acc: Vec<f64> = rows
                    .iter()
                    .filter(|p| p.model == model && p.layer == l)
                    .map(|p| p.accuracy)
                    .collect();
                if let Some((m, a, b)) = mean_min_max(&acc) {
                    x.push(l as f64);
                    y.push(m);
                    lo.push(a);
                    hi.push(b);
                }
            }
            if !x.is_empty() {
                series.push(BandSeries::with_band(model, x, y, lo, hi));
            }
        }
        let baseline = rows
            .iter()
            .map(|p| p.majority_baseline.max(p.corner_baseline.unwrap_or(0.0)))
            .fold(0.0, f64::max);
        let label = match env {
            "maze" => format!("maze k={randomization}"),
            "corridor" => format!("corridor {randomization}%"),
            _ => "keys and chests (nearest chest)".to_string(),
        };
        let mut panel = Panel::new(label, "layer (0 = embedding)", "accuracy", series);
        panel.references = vec![("best baseline (corner / majority)".to_string(), baseline)];
        panel.y_range = Some((0.0, 1.0));
        panel.legend = panels.is_empty().then_some(SeriesLabelPosition::UpperRight);
        panels.push(panel);
    }
    if panels.is_empty() {
        return Ok(());
    }
    panel_grid_plot(
        out,
        "goal_probes",
        "Goal-cell probe accuracy on held-out training states: trained vs random-init (band: min to max over seeds)",
        &panels,
        3,
    )?;
    Ok(())
}

/// P(cheese) and P(corner) at test against the goal vector's scale, one line per maze region
/// setting (mean over seeds, band from the lowest to the highest).
pub fn goal_vector_plot(out: &Path, rows: &[GoalVectorRow]) -> Result<()> {
    let mut settings: Vec<&str> = Vec::new();
    for r in rows {
        if !settings.contains(&r.randomization.as_str()) {
            settings.push(&r.randomization);
        }
    }
    if settings.is_empty() {
        return Ok(());
    }
    let mut panels = Vec::new();
    let metrics: [(&str, VectorMetric); 2] = [
        ("P(cheese) at test", |r| r.p_true_goal),
        ("P(top-right corner) at test", |r| r.p_proxy),
    ];
    for (title, metric) in metrics {
        let mut series = Vec::new();
        for &setting in &settings {
            let (mut x, mut y, mut lo, mut hi) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
            for &scale in &GOAL_VECTOR_SCALES {
                let values: Vec<f64> = rows
                    .iter()
                    .filter(|r| r.randomization == setting && r.scale == f64::from(scale))
                    .map(metric)
                    .collect();
                if let Some((m, a, b)) = mean_min_max(&values) {
                    x.push(f64::from(scale));
                    y.push(m);
                    lo.push(a);
                    hi.push(b);
                }
            }
            series.push(BandSeries::with_band(format!("k={setting}"), x, y, lo, hi));
        }
        let mut panel = Panel::new(
            title,
            "goal-vector scale (negative: subtracted)",
            "rate",
            series,
        );
        panel.y_range = Some((0.0, 1.0));
        panel.legend = panels
            .is_empty()
            .then_some(SeriesLabelPosition::MiddleRight);
        panels.push(panel);
    }
    panel_grid_plot(
        out,
        "goal_vector",
        "Steering maze policies with the goal vector at blocks.0.hook_resid_post (mean over seeds, band: min to max)",
        &panels,
        2,
    )?;
    Ok(())
}

/// Where the agent went in a few test mazes, for each maze region setting (base seed).
pub fn paths_plot(out: &Path, done: &[(&Job, ModelResult)]) -> Result<()> {
    let mut panels = Vec::new();
    for (job, result) in done {
        let label = match &job.spec {
            EnvSpec::Maze { region, .. } => match region {
                Region::Side(k) => format!("k={k}"),
                Region::Full(_) => "k=full".to_string(),
            },
            _ => continue,
        };
        for (m, e) in result.paths.iter().enumerate() {
            let level = &e.level;
            let mut values = vec![0.0; level.n_cells()];
            for &p in &e.path {
                values[level.index(p)] = 1.0;
            }
            let mut markers = vec![("S".to_string(), level.start.x, level.start.y)];
            if let Some(g) = level.goal {
                markers.push(("C".to_string(), g.x, g.y));
            }
            if let Some(p) = level.proxy.filter(|&p| Some(p) != level.goal) {
                markers.push(("P".to_string(), p.x, p.y));
            }
            let outcome = match e.outcome() {
                Some(Outcome::TrueGoal) => "cheese",
                Some(Outcome::Proxy) => "corner",
                _ => "neither",
            };
            panels.push(GridPanel {
                title: format!("{label}, maze {m}: {outcome}"),
                width: level.width,
                height: level.height,
                values,
                walls: level.walls.clone(),
                markers,
            });
        }
    }
    if panels.is_empty() {
        return Ok(());
    }
    grid_heatmap_plot(
        out,
        "paths",
        "Agent paths in test mazes, one row per training region (S start, C cheese, P top-right corner)",
        &panels,
        HEATMAP_MAZES,
    )?;
    Ok(())
}
