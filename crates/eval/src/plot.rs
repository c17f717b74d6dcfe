//! Plots with plotters, each written as PNG and SVG (all or nothing, like tables):
//!
//! - [`roc_plot`]: ROC curves of several detectors, with the chance diagonal;
//! - [`metric_by_layer_plot`]: a metric (AUROC, ...) per layer, one line per series, each with
//!   its confidence band, and optional horizontal reference lines (a random-direction baseline);
//! - [`score_histogram_plot`]: the score distribution of each class, normalised per class.
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

use crate::auroc::RocCurve;
use crate::error::WriteError;
use crate::staged::Staged;

/// Pixel size of every plot (the SVG uses the same units).
pub const PLOT_SIZE: (u32, u32) = (900, 600);

const FONT: &str = "sans-serif";
static FONT_BYTES: &[u8] = include_bytes!("../assets/DejaVuSans.ttf");

/// Colour-blind-safe categorical colours (matplotlib's tab10).
const PALETTE: [RGBColor; 8] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
];

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
            let color = PALETTE[k % PALETTE.len()];
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
    let invalid = |reason: String| WriteError::InvalidPlot {
        plot: name.to_string(),
        reason,
    };
    if series.is_empty() {
        return Err(invalid("no series".into()));
    }
    for s in series {
        let n = s.layers.len();
        if n == 0 || s.value.len() != n || s.lo.len() != n || s.hi.len() != n {
            return Err(invalid(format!(
                "series `{}`: layers, value, lo and hi must be non-empty and of equal length",
                s.label
            )));
        }
        let all = s.layers.iter().chain(&s.value).chain(&s.lo).chain(&s.hi);
        if all.clone().any(|v| !v.is_finite()) {
            return Err(invalid(format!(
                "series `{}` has a non-finite value",
                s.label
            )));
        }
    }
    if let Some((label, _)) = references.iter().find(|(_, v)| !v.is_finite()) {
        return Err(invalid(format!("reference `{label}` is not finite")));
    }
    let xs = series.iter().flat_map(|s| s.layers.iter().copied());
    let (x_min, x_max) = min_max(xs);
    let ys = series
        .iter()
        .flat_map(|s| s.lo.iter().chain(&s.hi).chain(&s.value).copied())
        .chain(references.iter().map(|(_, v)| *v));
    let (y_min, y_max) = min_max(ys);
    let x_pad = ((x_max - x_min) * 0.05).max(0.25);
    let y_pad = ((y_max - y_min) * 0.05).max(0.02);
    let figure = ByLayer {
        title,
        y_label,
        series,
        references,
        x: ((x_min - x_pad), (x_max + x_pad)),
        y: ((y_min - y_pad), (y_max + y_pad)),
    };
    render(dir, name, &figure)
}

struct ByLayer<'a> {
    title: &'a str,
    y_label: &'a str,
    series: &'a [LayerSeries],
    references: &'a [(String, f64)],
    x: (f64, f64),
    y: (f64, f64),
}

impl Figure for ByLayer<'_> {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), String> {
        let ByLayer {
            title,
            y_label,
            series,
            references,
            x,
            y,
        } = *self;
        let mut chart = ChartBuilder::on(root)
            .caption(title, (FONT, 24))
            .margin(15)
            .x_label_area_size(45)
            .y_label_area_size(55)
            .build_cartesian_2d(x.0..x.1, y.0..y.1)
            .map_err(err)?;
        // Whole layers get one tick each; fractional positions fall back to plotters' ticks.
        let whole = series
            .iter()
            .all(|s| s.layers.iter().all(|l| l.fract() == 0.0));
        let ticks = if whole {
            (x.1.floor() - x.0.ceil()) as usize + 1
        } else {
            10
        };
        chart
            .configure_mesh()
            .x_desc("layer")
            .y_desc(y_label)
            .x_labels(ticks)
            .x_label_formatter(&|v| {
                if whole {
                    format!("{v:.0}")
                } else {
                    format!("{v:.2}")
                }
            })
            .label_style((FONT, 15))
            .draw()
            .map_err(err)?;
        for (label, value) in references {
            let style = BLACK.mix(0.5).stroke_width(1);
            chart
                .draw_series(DashedLineSeries::new(
                    [(x.0, *value), (x.1, *value)],
                    6,
                    4,
                    style,
                ))
                .map_err(err)?
                .label(label.as_str())
                .legend(move |(x, y)| PathElement::new([(x, y), (x + 20, y)], style));
        }
        for (k, s) in series.iter().enumerate() {
            let color = PALETTE[k % PALETTE.len()];
            let band: Vec<(f64, f64)> = s
                .layers
                .iter()
                .copied()
                .zip(s.hi.iter().copied())
                .chain(s.layers.iter().copied().zip(s.lo.iter().copied()).rev())
                .collect();
            chart
                .draw_series(std::iter::once(Polygon::new(
                    band,
                    color.mix(0.18).filled(),
                )))
                .map_err(err)?;
            chart
                .draw_series(
                    LineSeries::new(
                        s.layers.iter().copied().zip(s.value.iter().copied()),
                        color.stroke_width(2),
                    )
                    .point_size(3),
                )
                .map_err(err)?
                .label(s.label.as_str())
                .legend(move |(x, y)| {
                    PathElement::new([(x, y), (x + 20, y)], color.stroke_width(2))
                });
        }
        legend(&mut chart, SeriesLabelPosition::LowerRight)
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
            let color = PALETTE[k % PALETTE.len()];
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

/// Draws the same figure on a PNG and an SVG backend, then renames both into place.
fn render(dir: &Path, name: &str, figure: &impl Figure) -> Result<PlotFiles, WriteError> {
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
        let root = BitMapBackend::new(&tmp, PLOT_SIZE).into_drawing_area();
        root.fill(&WHITE).map_err(err).map_err(plot_error(&png))?;
        figure.draw(&root).map_err(plot_error(&png))?;
        root.present().map_err(err).map_err(plot_error(&png))?;
    }
    let tmp = staged.stage(&svg)?;
    {
        let root = SVGBackend::new(&tmp, PLOT_SIZE).into_drawing_area();
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
