//! Plots with plotters, each written as PNG and SVG (all or nothing, like tables):
//!
//! - [`roc_plot`]: ROC curves of several detectors, with the chance diagonal;
//! - [`metric_by_layer_plot`]: a metric (AUROC, ...) per layer, one line per series, each with
//!   its confidence band, and optional horizontal reference lines (a random-direction baseline);
//! - [`score_histogram_plot`]: the score distribution of each class, normalised per class;
//! - [`tornado_plot`]: a sensitivity (tornado) chart, one bar per input from its low to its high
//!   value around the baseline output;
//! - [`grid_heatmap_plot`]: gridworlds coloured by a value per cell, with walls and markers;
//! - [`lines_plot`] and [`panel_grid_plot`]: any y against any x, one line per [`BandSeries`]
//!   with an optional band (a CI, the range across seeds), solid or dashed, on one chart or a
//!   grid of [`Panel`]s with one colour per label throughout (curves against training steps per
//!   variant and metric; a loss against the number of in-context examples).
//!
//! Text is drawn with DejaVu Sans embedded in the crate (`assets/DejaVuSans.ttf`, Bitstream Vera
//! licence beside it) through plotters' `ab_glyph` feature, so plots render the same on a
//! machine with no system fonts or fontconfig.
//!
//! ```
//! use mesa_eval::plot::{metric_by_layer_plot, LayerSeries};
//!
//! let dir = tempfile::tempdir()?;
//! let series = LayerSeries {
//!     label: "logistic".into(),
//!     layers: vec![0.0, 1.0, 2.0],
//!     value: vec![0.7, 0.95, 0.99],
//!     lo: vec![0.6, 0.9, 0.97],
//!     hi: vec![0.8, 0.98, 1.0],
//! };
//! let files = metric_by_layer_plot(dir.path(), "auroc_by_layer", "AUROC by layer", "AUROC", &[series], &[])?;
//! assert!(files.png.exists() && files.svg.exists());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use plotters::coord::types::RangedCoordf64;
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::register_font;

/// Where a [`Panel`]'s legend goes (plotters' type, re-exported so callers need no plotters).
pub use plotters::chart::SeriesLabelPosition;

mod tornado;
pub use tornado::{tornado_plot, TornadoBar};

use crate::auroc::RocCurve;
use crate::error::WriteError;
use crate::staged::Staged;

/// Pixel size of every plot (the SVG uses the same units).
pub const PLOT_SIZE: (u32, u32) = (900, 600);

const FONT: &str = "sans-serif";
static FONT_BYTES: &[u8] = include_bytes!("../assets/DejaVuSans.ttf");

/// Colour-blind-safe categorical colours (matplotlib's tab10).
const PALETTE: [RGBColor; 10] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
];

/// The `k`-th categorical colour; past the palette, the palette again, darker.
fn color_of(k: usize) -> RGBColor {
    let RGBColor(r, g, b) = PALETTE[k % PALETTE.len()];
    if k < PALETTE.len() {
        RGBColor(r, g, b)
    } else {
        RGBColor(r / 2, g / 2, b / 2)
    }
}

/// The two files a plot was written to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlotFiles {
    pub png: PathBuf,
    pub svg: PathBuf,
}

/// One line of [`metric_by_layer_plot`]: a value per layer with its confidence interval.
#[derive(Debug, Clone, PartialEq)]
pub struct LayerSeries {
    pub label: String,
    /// The x positions (layer indices; fractional positions allowed, e.g. 0.5 for a mid hook).
    pub layers: Vec<f64>,
    pub value: Vec<f64>,
    pub lo: Vec<f64>,
    pub hi: Vec<f64>,
}

/// ROC curves, one per `(label, curve)`, over the chance diagonal.
///
/// # Errors
/// [`WriteError::InvalidPlot`] with no curves or a curve with no points; IO or drawing errors
/// naming the file.
pub fn roc_plot(
    dir: &Path,
    name: &str,
    title: &str,
    curves: &[(String, RocCurve)],
) -> Result<PlotFiles, WriteError> {
    let invalid = |reason: &str| WriteError::InvalidPlot {
        plot: name.to_string(),
        reason: reason.to_string(),
    };
    if curves.is_empty() {
        return Err(invalid("no curves"));
    }
    if curves
        .iter()
        .any(|(_, c)| c.fpr.is_empty() || c.fpr.len() != c.tpr.len())
    {
        return Err(invalid("a curve has no points or unequal fpr/tpr lengths"));
    }
    render(dir, name, &Roc { title, curves })
}

struct Roc<'a> {
    title: &'a str,
    curves: &'a [(String, RocCurve)],
}

impl Figure for Roc<'_> {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), String> {
        let Roc { title, curves } = *self;
        let mut chart = ChartBuilder::on(root)
            .caption(title, (FONT, 24))
            .margin(15)
            .x_label_area_size(45)
            .y_label_area_size(55)
            .build_cartesian_2d(0.0..1.0, 0.0..1.0)
            .map_err(err)?;
        chart
            .configure_mesh()
            .x_desc("false-positive rate")
            .y_desc("true-positive rate")
            .label_style((FONT, 15))
            .draw()
            .map_err(err)?;
        chart
            .draw_series(LineSeries::new(
                [(0.0, 0.0), (1.0, 1.0)],
                BLACK.mix(0.4).stroke_width(1),
            ))
            .map_err(err)?
            .label("chance")
            .legend(|(x, y)| PathElement::new([(x, y), (x + 20, y)], BLACK.mix(0.4)));
        for (k, (label, curve)) in curves.iter().enumerate() {
            let color = color_of(k);
            chart
                .draw_series(LineSeries::new(
                    curve.fpr.iter().copied().zip(curve.tpr.iter().copied()),
                    color.stroke_width(2),
                ))
                .map_err(err)?
                .label(label.as_str())
                .legend(move |(x, y)| {
                    PathElement::new([(x, y), (x + 20, y)], color.stroke_width(2))
                });
        }
        legend(&mut chart, SeriesLabelPosition::LowerRight)
    }
}

/// A metric per layer: one line per series with its `[lo, hi]` band shaded, plus horizontal
/// reference lines `(label, value)` drawn dashed-grey (a random-direction 95th percentile, 0.5).
/// A one-panel [`lines_plot`] with the x axis labelled `layer`.
///
/// # Errors
/// [`WriteError::InvalidPlot`] with no series, unequal lengths, or a non-finite value; IO or
/// drawing errors naming the file.
pub fn metric_by_layer_plot(
    dir: &Path,
    name: &str,
    title: &str,
    y_label: &str,
    series: &[LayerSeries],
    references: &[(String, f64)],
) -> Result<PlotFiles, WriteError> {
    let panel = Panel {
        title: String::new(),
        x_label: "layer".into(),
        y_label: y_label.into(),
        series: series
            .iter()
            .map(|s| BandSeries {
                label: s.label.clone(),
                x: s.layers.clone(),
                y: s.value.clone(),
                band: Some((s.lo.clone(), s.hi.clone())),
                dashed: false,
            })
            .collect(),
        references: references.to_vec(),
        y_range: None,
        clip_y: false,
        legend: Some(SeriesLabelPosition::LowerRight),
    };
    lines_plot(dir, name, title, &panel)
}

/// One line of a [`Panel`]: `y` against `x`, optionally with a shaded `[lo, hi]` band (a
/// confidence interval, or the range across seeds), solid or dashed.
#[derive(Debug, Clone, PartialEq)]
pub struct BandSeries {
    pub label: String,
    pub x: Vec<f64>,
    pub y: Vec<f64>,
    /// `(lo, hi)` per point, each as long as `x`; `None` draws the line alone.
    pub band: Option<(Vec<f64>, Vec<f64>)>,
    /// Dashed rather than solid (for reference curves beside measured ones).
    pub dashed: bool,
}

impl BandSeries {
    /// A line with no band.
    pub fn line(label: impl Into<String>, x: Vec<f64>, y: Vec<f64>) -> Self {
        Self {
            label: label.into(),
            x,
            y,
            band: None,
            dashed: false,
        }
    }

    /// A line with its `[lo, hi]` band.
    pub fn with_band(
        label: impl Into<String>,
        x: Vec<f64>,
        y: Vec<f64>,
        lo: Vec<f64>,
        hi: Vec<f64>,
    ) -> Self {
        Self {
            label: label.into(),
            x,
            y,
            band: Some((lo, hi)),
            dashed: false,
        }
    }

    /// The same line, dashed.
    pub fn dashed(mut self) -> Self {
        self.dashed = true;
        self
    }
}

/// One chart: lines with bands, horizontal dashed-grey reference lines `(label, value)`, axis
/// labels, an optional fixed y range and an optional legend.
#[derive(Debug, Clone, PartialEq)]
pub struct Panel {
    /// Shown above the chart (empty: none; a one-panel plot has the plot's title instead).
    pub title: String,
    pub x_label: String,
    pub y_label: String,
    pub series: Vec<BandSeries>,
    pub references: Vec<(String, f64)>,
    /// Fixed `(min, max)` of the y axis (e.g. `(0, 1)` for rates, so panels compare); `None`
    /// fits the data. Every value, band and reference must lie inside it unless `clip_y`.
    pub y_range: Option<(f64, f64)>,
    /// With a `y_range`: values outside it are drawn at its edge instead of being an error
    /// (to keep one far-off curve from flattening the rest; say so in the axis label).
    pub clip_y: bool,
    /// Where the legend goes; `None` draws none (in a grid, one panel's legend can serve all,
    /// as a label keeps its colour across the panels of a plot).
    pub legend: Option<SeriesLabelPosition>,
}

impl Panel {
    /// A panel with no references, a fitted y range and the legend at the upper right.
    pub fn new(
        title: impl Into<String>,
        x_label: impl Into<String>,
        y_label: impl Into<String>,
        series: Vec<BandSeries>,
    ) -> Self {
        Self {
            title: title.into(),
            x_label: x_label.into(),
            y_label: y_label.into(),
            series,
            references: Vec::new(),
            y_range: None,
            clip_y: false,
            legend: Some(SeriesLabelPosition::UpperRight),
        }
    }
}

/// Lines with bands on one chart (see [`Panel`]), e.g. a metric against training steps with a
/// band across seeds, or a loss against the number of in-context examples.
///
/// # Errors
/// [`WriteError::InvalidPlot`] with no series, a series with no points or unequal lengths, a
/// non-finite value, or a value outside a fixed y range; IO or drawing errors naming the file.
pub fn lines_plot(
    dir: &Path,
    name: &str,
    title: &str,
    panel: &Panel,
) -> Result<PlotFiles, WriteError> {
    panel_grid_plot(dir, name, title, std::slice::from_ref(panel), 1)
}

/// Panels in a grid of `columns` columns (filled row by row) under one title, each drawn as by
/// [`lines_plot`]. A series label keeps its colour in every panel, so one legend can serve all.
///
/// # Errors
/// As [`lines_plot`], for any panel; also with no panels or `columns == 0`.
pub fn panel_grid_plot(
    dir: &Path,
    name: &str,
    title: &str,
    panels: &[Panel],
    columns: usize,
) -> Result<PlotFiles, WriteError> {
    let invalid = |reason: String| WriteError::InvalidPlot {
        plot: name.to_string(),
        reason,
    };
    let (columns, rows) = grid_shape(name, panels.len(), columns)?;
    let mut labels: Vec<&str> = Vec::new();
    let mut layouts = Vec::with_capacity(panels.len());
    for (p, panel) in panels.iter().enumerate() {
        let layout = check_panel(panel).map_err(|reason| {
            invalid(if panels.len() == 1 {
                reason
            } else {
                format!("panel {p} (`{}`): {reason}", panel.title)
            })
        })?;
        layouts.push(layout);
        for s in &panel.series {
            if !labels.contains(&s.label.as_str()) {
                labels.push(&s.label);
            }
        }
    }
    let size = if panels.len() == 1 {
        PLOT_SIZE
    } else {
        (
            (columns as u32 * 520).max(PLOT_SIZE.0),
            rows as u32 * 380 + 50,
        )
    };
    let figure = Grid {
        title,
        panels,
        layouts: &layouts,
        labels: &labels,
        columns,
        rows,
    };
    render_sized(dir, name, &figure, size)
}

/// Columns and rows of a grid of `n_panels` panels in at most `columns` columns, filled row
/// by row; an error with no panel or no column.
fn grid_shape(name: &str, n_panels: usize, columns: usize) -> Result<(usize, usize), WriteError> {
    if n_panels == 0 || columns == 0 {
        return Err(WriteError::InvalidPlot {
            plot: name.to_string(),
            reason: "needs at least one panel and one column".into(),
        });
    }
    let columns = columns.min(n_panels);
    Ok((columns, n_panels.div_ceil(columns)))
}

/// Axis ranges of a checked panel.
struct Layout {
    x: (f64, f64),
    y: (f64, f64),
    /// Every x is a whole number and they span at most 12: one tick per integer.
    whole_x: bool,
}

fn check_panel(panel: &Panel) -> Result<Layout, String> {
    if panel.series.is_empty() {
        return Err("no series".into());
    }
    for s in &panel.series {
        let n = s.x.len();
        let band_ok = s
            .band
            .as_ref()
            .is_none_or(|(lo, hi)| lo.len() == n && hi.len() == n);
        if n == 0 || s.y.len() != n || !band_ok {
            return Err(format!(
                "series `{}`: x, y (and the band's lo and hi) must be non-empty and of equal length",
                s.label
            ));
        }
        if series_values(s)
            .chain(s.x.iter().copied())
            .any(|v| !v.is_finite())
        {
            return Err(format!("series `{}` has a non-finite value", s.label));
        }
    }
    if let Some((label, _)) = panel.references.iter().find(|(_, v)| !v.is_finite()) {
        return Err(format!("reference `{label}` is not finite"));
    }
    let (x_min, x_max) = min_max(panel.series.iter().flat_map(|s| s.x.iter().copied()));
    let ys = || {
        panel
            .series
            .iter()
            .flat_map(series_values)
            .chain(panel.references.iter().map(|(_, v)| *v))
    };
    let (y_min, y_max) = min_max(ys());
    let y = match panel.y_range {
        Some((lo, hi)) => {
            if !(lo.is_finite() && hi.is_finite() && lo < hi) {
                return Err(format!("y range ({lo}, {hi}) is not an interval"));
            }
            if !panel.clip_y && (y_min < lo || y_max > hi) {
                return Err(format!(
                    "values span [{y_min}, {y_max}], outside the fixed y range [{lo}, {hi}]"
                ));
            }
            let pad = (hi - lo) * 0.03;
            (lo - pad, hi + pad)
        }
        None => {
            let pad = ((y_max - y_min) * 0.05).max(0.02);
            (y_min - pad, y_max + pad)
        }
    };
    let whole_x = panel
        .series
        .iter()
        .all(|s| s.x.iter().all(|v| v.fract() == 0.0))
        && x_max - x_min <= 12.0;
    let x_pad = if whole_x {
        0.25_f64.max((x_max - x_min) * 0.05)
    } else {
        ((x_max - x_min) * 0.03).max(1e-9)
    };
    Ok(Layout {
        x: (x_min - x_pad, x_max + x_pad),
        y,
        whole_x,
    })
}

/// A series' y values and band bounds.
fn series_values(s: &BandSeries) -> impl Iterator<Item = f64> + '_ {
    let band = s.band.iter().flat_map(|(lo, hi)| lo.iter().chain(hi));
    s.y.iter().chain(band).copied()
}

struct Grid<'a> {
    title: &'a str,
    panels: &'a [Panel],
    layouts: &'a [Layout],
    /// Every series label in order of first appearance: the colour index.
    labels: &'a [&'a str],
    columns: usize,
    rows: usize,
}

impl Figure for Grid<'_> {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), String> {
        if self.panels.len() == 1 {
            return draw_panel(
                root,
                self.title,
                24,
                &self.panels[0],
                &self.layouts[0],
                self.labels,
            );
        }
        let root = root.titled(self.title, (FONT, 24)).map_err(err)?;
        let areas = root.split_evenly((self.rows, self.columns));
        for ((area, panel), layout) in areas.iter().zip(self.panels).zip(self.layouts) {
            draw_panel(area, &panel.title, 17, panel, layout, self.labels)?;
        }
        Ok(())
    }
}

fn draw_panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    title: &str,
    title_size: u32,
    panel: &Panel,
    layout: &Layout,
    labels: &[&str],
) -> Result<(), String> {
    let Layout { x, y, whole_x } = *layout;
    // Only a clipping panel can hold values outside its range; the rest pass unchanged.
    let clamp = |v: f64| match panel.y_range {
        Some((lo, hi)) if panel.clip_y => v.clamp(lo, hi),
        _ => v,
    };
    let mut builder = ChartBuilder::on(area);
    if !title.is_empty() {
        builder.caption(title, (FONT, title_size));
    }
    let mut chart = builder
        .margin(12)
        .x_label_area_size(42)
        .y_label_area_size(55)
        .build_cartesian_2d(x.0..x.1, y.0..y.1)
        .map_err(err)?;
    let ticks = if whole_x {
        (x.1.floor() - x.0.ceil()) as usize + 1
    } else {
        8
    };
    chart
        .configure_mesh()
        .x_desc(panel.x_label.as_str())
        .y_desc(panel.y_label.as_str())
        .x_labels(ticks)
        .x_label_formatter(&|v| {
            if whole_x {
                format!("{v:.0}")
            } else {
                format_tick(*v)
            }
        })
        .y_label_formatter(&|v| format_tick(*v))
        .label_style((FONT, 14))
        .draw()
        .map_err(err)?;
    for (label, value) in &panel.references {
        let style = BLACK.mix(0.5).stroke_width(1);
        chart
            .draw_series(DashedLineSeries::new(
                [(x.0, clamp(*value)), (x.1, clamp(*value))],
                6,
                4,
                style,
            ))
            .map_err(err)?
            .label(label.as_str())
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 20, y)], style));
    }
    for s in &panel.series {
        let k = labels.iter().position(|l| *l == s.label).unwrap_or(0);
        let color = color_of(k);
        if let Some((lo, hi)) = &s.band {
            let band: Vec<(f64, f64)> =
                s.x.iter()
                    .copied()
                    .zip(hi.iter().map(|v| clamp(*v)))
                    .chain(s.x.iter().copied().zip(lo.iter().map(|v| clamp(*v))).rev())
                    .collect();
            chart
                .draw_series(std::iter::once(Polygon::new(
                    band,
                    color.mix(0.18).filled(),
                )))
                .map_err(err)?;
        }
        let points = s.x.iter().copied().zip(s.y.iter().map(|v| clamp(*v)));
        let anno = if s.dashed {
            chart
                .draw_series(DashedLineSeries::new(points, 8, 5, color.stroke_width(2)))
                .map_err(err)?
        } else {
            let marker = if s.x.len() <= 30 { 3 } else { 0 };
            chart
                .draw_series(LineSeries::new(points, color.stroke_width(2)).point_size(marker))
                .map_err(err)?
        };
        let width = if s.dashed { 1 } else { 2 };
        anno.label(s.label.as_str()).legend(move |(x, y)| {
            PathElement::new([(x, y), (x + 20, y)], color.stroke_width(width))
        });
    }
    match &panel.legend {
        Some(position) => legend(&mut chart, position.clone()),
        None => Ok(()),
    }
}

/// A tick label short enough for a panel: fixed point for moderate values, else scientific.
fn format_tick(v: f64) -> String {
    let a = v.abs();
    if a == 0.0 || (1e-3..1e4).contains(&a) {
        let s = format!("{v:.3}");
        let s = s.trim_end_matches('0').trim_end_matches('.');
        if s == "-0" {
            "0".into()
        } else {
            s.into()
        }
    } else {
        format!("{v:.1e}")
    }
}

/// Histograms of the scores of each `(label, scores)` class over shared bins, each normalised
/// to fractions of its class so classes of different sizes compare.
///
/// # Errors
/// [`WriteError::InvalidPlot`] with no classes, an empty class, a non-finite score, or zero
/// bins; IO or drawing errors naming the file.
pub fn score_histogram_plot(
    dir: &Path,
    name: &str,
    title: &str,
    classes: &[(String, Vec<f64>)],
    bins: usize,
) -> Result<PlotFiles, WriteError> {
    let invalid = |reason: String| WriteError::InvalidPlot {
        plot: name.to_string(),
        reason,
    };
    if classes.is_empty() || bins == 0 {
        return Err(invalid("needs at least one class and one bin".into()));
    }
    for (label, scores) in classes {
        if scores.is_empty() || scores.iter().any(|v| !v.is_finite()) {
            return Err(invalid(format!(
                "class `{label}` is empty or has a non-finite score"
            )));
        }
    }
    let (lo, hi) = min_max(classes.iter().flat_map(|(_, s)| s.iter().copied()));
    let width = if hi > lo {
        (hi - lo) / bins as f64
    } else {
        1.0
    };
    let fractions: Vec<Vec<f64>> = classes
        .iter()
        .map(|(_, scores)| {
            let mut counts = vec![0.0; bins];
            for v in scores {
                let b = (((v - lo) / width) as usize).min(bins - 1);
                counts[b] += 1.0;
            }
            counts.iter().map(|c| c / scores.len() as f64).collect()
        })
        .collect();
    let y_max = fractions.iter().flatten().copied().fold(0.0, f64::max);
    let figure = ScoreHistogram {
        title,
        classes,
        fractions: &fractions,
        lo,
        width,
        y_max,
    };
    render(dir, name, &figure)
}

struct ScoreHistogram<'a> {
    title: &'a str,
    classes: &'a [(String, Vec<f64>)],
    fractions: &'a [Vec<f64>],
    lo: f64,
    width: f64,
    y_max: f64,
}

impl Figure for ScoreHistogram<'_> {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), String> {
        let ScoreHistogram {
            title,
            classes,
            fractions,
            lo,
            width,
            y_max,
        } = *self;
        let bins = fractions.first().map_or(0, Vec::len);
        let mut chart = ChartBuilder::on(root)
            .caption(title, (FONT, 24))
            .margin(15)
            .x_label_area_size(45)
            .y_label_area_size(55)
            .build_cartesian_2d(lo..(lo + width * bins as f64), 0.0..(y_max * 1.1))
            .map_err(err)?;
        chart
            .configure_mesh()
            .x_desc("score")
            .y_desc("fraction of class")
            .label_style((FONT, 15))
            .draw()
            .map_err(err)?;
        for (k, ((label, _), fraction)) in classes.iter().zip(fractions).enumerate() {
            let color = color_of(k);
            chart
                .draw_series(fraction.iter().enumerate().map(|(b, f)| {
                    let x0 = lo + width * b as f64;
                    Rectangle::new([(x0, 0.0), (x0 + width, *f)], color.mix(0.45).filled())
                }))
                .map_err(err)?
                .label(label.as_str())
                .legend(move |(x, y)| {
                    Rectangle::new([(x, y - 5), (x + 15, y + 5)], color.filled())
                });
        }
        legend(&mut chart, SeriesLabelPosition::UpperRight)
    }
}

/// One gridworld of [`grid_heatmap_plot`]: a value per cell (e.g. the fraction of episodes
/// whose agent stood on it), its walls, and lettered markers (start, goal, proxy).
#[derive(Debug, Clone, PartialEq)]
pub struct GridPanel {
    pub title: String,
    pub width: usize,
    pub height: usize,
    /// Row-major, `width * height` values in `[0, 1]`; drawn from white (0) to dark (1).
    pub values: Vec<f64>,
    /// Row-major, `width * height`; walls are drawn grey whatever their value.
    pub walls: Vec<bool>,
    /// `(letter, x, y)`, `y = 0` the top row: drawn on the cell.
    pub markers: Vec<(String, usize, usize)>,
}

/// Gridworlds as heatmaps in a grid of `columns` columns under one title (e.g. where an agent
/// went in a few test mazes).
///
/// # Errors
/// [`WriteError::InvalidPlot`] with no panels, `columns == 0`, an empty grid, values or walls
/// of the wrong length, a value outside `[0, 1]` or a marker off the grid; IO or drawing
/// errors naming the file.
pub fn grid_heatmap_plot(
    dir: &Path,
    name: &str,
    title: &str,
    panels: &[GridPanel],
    columns: usize,
) -> Result<PlotFiles, WriteError> {
    let invalid = |reason: String| WriteError::InvalidPlot {
        plot: name.to_string(),
        reason,
    };
    let (columns, rows) = grid_shape(name, panels.len(), columns)?;
    for (p, g) in panels.iter().enumerate() {
        let n = g.width * g.height;
        let problem = if n == 0 {
            Some("the grid is empty".to_string())
        } else if g.values.len() != n || g.walls.len() != n {
            Some(format!(
                "{} values and {} walls for a {}x{} grid",
                g.values.len(),
                g.walls.len(),
                g.width,
                g.height
            ))
        } else if let Some(v) = g.values.iter().find(|v| !(0.0..=1.0).contains(*v)) {
            Some(format!("value {v} is outside [0, 1]"))
        } else {
            g.markers
                .iter()
                .find(|(_, x, y)| *x >= g.width || *y >= g.height)
                .map(|(m, x, y)| format!("marker `{m}` at ({x}, {y}) is off the grid"))
        };
        if let Some(reason) = problem {
            return Err(invalid(format!("panel {p} (`{}`): {reason}", g.title)));
        }
    }
    let size = (columns as u32 * 300 + 20, rows as u32 * 320 + 60);
    render_sized(
        dir,
        name,
        &Heatmaps {
            title,
            panels,
            columns,
            rows,
        },
        size,
    )
}

struct Heatmaps<'a> {
    title: &'a str,
    panels: &'a [GridPanel],
    columns: usize,
    rows: usize,
}

impl Figure for Heatmaps<'_> {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), String> {
        let root = root.titled(self.title, (FONT, 22)).map_err(err)?;
        let areas = root.split_evenly((self.rows, self.columns));
        for (area, g) in areas.iter().zip(self.panels) {
            let (w, h) = (g.width as f64, g.height as f64);
            let mut chart = ChartBuilder::on(area)
                .caption(g.title.as_str(), (FONT, 15))
                .margin(10)
                .build_cartesian_2d(0.0..w, 0.0..h)
                .map_err(err)?;
            // Row 0 is the top: drawn at the chart's highest y.
            let cell = |x: usize, y: usize| {
                let top = h - y as f64;
                [(x as f64, top), (x as f64 + 1.0, top - 1.0)]
            };
            let base = PALETTE[0];
            chart
                .draw_series((0..g.width * g.height).map(|i| {
                    let (x, y) = (i % g.width, i / g.width);
                    let color = if g.walls[i] {
                        RGBColor(90, 90, 90).filled()
                    } else {
                        let v = g.values[i];
                        let mix = |c: u8| (255.0 - v * (255.0 - f64::from(c))).round() as u8;
                        RGBColor(mix(base.0), mix(base.1), mix(base.2)).filled()
                    };
                    Rectangle::new(cell(x, y), color)
                }))
                .map_err(err)?;
            chart
                .draw_series((0..g.width * g.height).map(|i| {
                    let (x, y) = (i % g.width, i / g.width);
                    Rectangle::new(cell(x, y), BLACK.mix(0.15).stroke_width(1))
                }))
                .map_err(err)?;
            let font_size = (260 / g.width.max(g.height)).clamp(8, 22) as i32;
            chart
                .draw_series(g.markers.iter().map(|(letter, x, y)| {
                    let [(left, top), _] = cell(*x, *y);
                    Text::new(
                        letter.clone(),
                        (left + 0.28, top - 0.15),
                        (FONT, font_size).into_font().color(&RGBColor(214, 39, 40)),
                    )
                }))
                .map_err(err)?;
        }
        Ok(())
    }
}

/// A figure drawn the same way on any plotters backend.
trait Figure {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), String>;
}

fn legend<'a, DB: DrawingBackend + 'a>(
    chart: &mut ChartContext<'a, DB, Cartesian2d<RangedCoordf64, RangedCoordf64>>,
    position: SeriesLabelPosition,
) -> Result<(), String> {
    chart
        .configure_series_labels()
        .position(position)
        .label_font((FONT, 15))
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK.mix(0.3))
        .draw()
        .map_err(err)
}

fn err(e: impl std::fmt::Display) -> String {
    e.to_string()
}

fn min_max(values: impl Iterator<Item = f64>) -> (f64, f64) {
    values.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
        (lo.min(v), hi.max(v))
    })
}

fn ensure_font() -> Result<(), WriteError> {
    static REGISTERED: OnceLock<bool> = OnceLock::new();
    let ok = *REGISTERED.get_or_init(|| register_font(FONT, FontStyle::Normal, FONT_BYTES).is_ok());
    if ok {
        Ok(())
    } else {
        Err(WriteError::InvalidPlot {
            plot: "font".into(),
            reason: "the embedded DejaVu Sans could not be parsed".into(),
        })
    }
}

/// Draws the same figure on a PNG and an SVG backend of [`PLOT_SIZE`], then renames both into
/// place.
fn render(dir: &Path, name: &str, figure: &impl Figure) -> Result<PlotFiles, WriteError> {
    render_sized(dir, name, figure, PLOT_SIZE)
}

/// [`render`] at `size` pixels.
fn render_sized(
    dir: &Path,
    name: &str,
    figure: &impl Figure,
    size: (u32, u32),
) -> Result<PlotFiles, WriteError> {
    ensure_font()?;
    let png = dir.join(format!("{name}.png"));
    let svg = dir.join(format!("{name}.svg"));
    let mut staged = Staged::new();
    let plot_error = |path: &Path| {
        let path = path.to_path_buf();
        move |message: String| WriteError::Plot { path, message }
    };

    let tmp = staged.stage(&png)?;
    {
        let root = BitMapBackend::new(&tmp, size).into_drawing_area();
        root.fill(&WHITE).map_err(err).map_err(plot_error(&png))?;
        figure.draw(&root).map_err(plot_error(&png))?;
        root.present().map_err(err).map_err(plot_error(&png))?;
    }
    let tmp = staged.stage(&svg)?;
    {
        let root = SVGBackend::new(&tmp, size).into_drawing_area();
        root.fill(&WHITE).map_err(err).map_err(plot_error(&svg))?;
        figure.draw(&root).map_err(plot_error(&svg))?;
        root.present().map_err(err).map_err(plot_error(&svg))?;
    }
    staged.commit()?;
    Ok(PlotFiles { png, svg })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::roc_curve;

    fn assert_plot_files(files: &PlotFiles, title: &str) {
        let png = std::fs::read(&files.png).expect("png");
        assert!(png.len() > 1000, "png has {} bytes", png.len());
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
        let svg = std::fs::read_to_string(&files.svg).expect("svg");
        assert!(
            svg.contains("<svg") && svg.contains(title),
            "svg lacks its title"
        );
    }

    #[test]
    fn roc_plot_writes_png_and_svg() {
        let dir = tempfile::tempdir().expect("tempdir");
        let labels = [true, true, true, false, false, false];
        let good = roc_curve(&[0.9, 0.8, 0.4, 0.5, 0.2, 0.1], &labels).expect("roc");
        let weak = roc_curve(&[0.6, 0.3, 0.5, 0.55, 0.4, 0.2], &labels).expect("roc");
        let curves = [("good".to_string(), good), ("weak".to_string(), weak)];
        let files = roc_plot(dir.path(), "roc", "ROC test", &curves).expect("plot");
        assert_plot_files(&files, "ROC test");
    }

    #[test]
    fn metric_by_layer_plot_writes_png_and_svg() {
        let dir = tempfile::tempdir().expect("tempdir");
        let series = LayerSeries {
            label: "logistic".into(),
            layers: vec![0.0, 1.0, 2.0, 3.0],
            value: vec![0.6, 0.8, 0.97, 0.99],
            lo: vec![0.5, 0.7, 0.94, 0.98],
            hi: vec![0.7, 0.88, 0.99, 1.0],
        };
        let refs = [("random p95".to_string(), 0.62)];
        let files = metric_by_layer_plot(
            dir.path(),
            "by_layer",
            "AUROC test",
            "AUROC",
            &[series],
            &refs,
        )
        .expect("plot");
        assert_plot_files(&files, "AUROC test");
    }

    #[test]
    fn grid_heatmap_plot_writes_png_and_svg_and_refuses_bad_grids() {
        let dir = tempfile::tempdir().expect("tempdir");
        let maze = GridPanel {
            title: "maze 0".into(),
            width: 3,
            height: 2,
            values: vec![1.0, 0.5, 0.0, 0.0, 0.25, 1.0],
            walls: vec![false, false, true, false, false, false],
            markers: vec![("S".into(), 0, 1), ("C".into(), 2, 0)],
        };
        let files = grid_heatmap_plot(
            dir.path(),
            "paths",
            "Paths test",
            std::slice::from_ref(&maze),
            3,
        )
        .expect("plot");
        assert_plot_files(&files, "Paths test");
        let mut off = maze.clone();
        off.markers.push(("X".into(), 3, 0));
        let mut short = maze.clone();
        short.values.pop();
        let mut big = maze;
        big.values[0] = 1.5;
        for bad in [off, short, big] {
            let err = grid_heatmap_plot(dir.path(), "bad", "t", &[bad], 1).unwrap_err();
            assert!(err.to_string().contains("maze 0"), "{err}");
        }
    }

    #[test]
    fn panel_grid_plot_writes_png_and_svg() {
        let dir = tempfile::tempdir().expect("tempdir");
        let steps = vec![0.0, 50.0, 100.0];
        let sft = BandSeries::with_band(
            "sft",
            steps.clone(),
            vec![1.0, 0.9, 0.8],
            vec![1.0, 0.8, 0.6],
            vec![1.0, 1.0, 0.95],
        );
        let adv = BandSeries::line("adversarial", steps.clone(), vec![1.0, 0.2, 0.0]).dashed();
        let mut first = Panel::new("trigger", "step", "defect rate", vec![sft.clone(), adv]);
        first.y_range = Some((0.0, 1.0));
        first.references.push(("chance".into(), 0.5));
        let mut second = Panel::new("red team", "step", "defect rate", vec![sft]);
        second.legend = None;
        let files =
            panel_grid_plot(dir.path(), "grid", "Grid test", &[first, second], 2).expect("plot");
        assert_plot_files(&files, "Grid test");
        let one = Panel::new(
            "",
            "eta",
            "loss",
            vec![BandSeries::line(
                "gd",
                vec![0.01, 0.02, 0.5],
                vec![1.0, 0.6, 3e-4],
            )],
        );
        let files = lines_plot(dir.path(), "one", "Lines test", &one).expect("plot");
        assert_plot_files(&files, "Lines test");
    }

    #[test]
    fn panel_values_outside_a_fixed_range_or_unequal_are_errors() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut panel = Panel::new(
            "p",
            "x",
            "y",
            vec![BandSeries::line("a", vec![0.0, 1.0], vec![0.5, 1.5])],
        );
        panel.y_range = Some((0.0, 1.0));
        let err = lines_plot(dir.path(), "p", "t", &panel).expect_err("outside");
        assert!(matches!(err, WriteError::InvalidPlot { .. }), "{err}");
        panel.clip_y = true;
        let clipped = tempfile::tempdir().expect("tempdir");
        lines_plot(clipped.path(), "p", "t", &panel).expect("clipped at the edge");
        panel.clip_y = false;
        panel.y_range = None;
        panel.series[0].band = Some((vec![0.0], vec![1.0, 2.0]));
        let err = lines_plot(dir.path(), "p", "t", &panel).expect_err("unequal");
        assert!(err.to_string().contains("equal length"), "{err}");
        assert_eq!(std::fs::read_dir(dir.path()).expect("dir").count(), 0);
        assert_eq!(format_tick(0.25), "0.25");
        assert_eq!(format_tick(2.0), "2");
        assert_eq!(format_tick(2e-5), "2.0e-5");
    }

    #[test]
    fn score_histogram_plot_writes_png_and_svg() {
        let dir = tempfile::tempdir().expect("tempdir");
        let classes = [
            ("triggered".to_string(), vec![0.9, 0.8, 0.85, 0.7]),
            ("untriggered".to_string(), vec![0.1, 0.2, 0.3, 0.25, 0.15]),
        ];
        let files =
            score_histogram_plot(dir.path(), "hist", "Scores test", &classes, 10).expect("plot");
        assert_plot_files(&files, "Scores test");
    }

    #[test]
    fn invalid_plot_input_is_an_error_and_writes_nothing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let classes = [("empty".to_string(), Vec::new())];
        let err = score_histogram_plot(dir.path(), "hist", "t", &classes, 10).expect_err("empty");
        assert!(matches!(err, WriteError::InvalidPlot { .. }));
        assert_eq!(std::fs::read_dir(dir.path()).expect("dir").count(), 0);
    }
}
