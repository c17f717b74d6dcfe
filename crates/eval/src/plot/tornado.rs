//! A tornado chart: for each input of a model, the output when that input alone is set to its
//! low and its high value, as a horizontal bar around the baseline, widest bar on top.

use std::path::Path;

use plotters::prelude::*;

use super::{color_of, err, render, Figure, PlotFiles, FONT};
use crate::error::WriteError;

/// One input's bar: the output with the input at its low and at its high value.
#[derive(Debug, Clone, PartialEq)]
pub struct TornadoBar {
    pub label: String,
    pub at_low: f64,
    pub at_high: f64,
}

/// A tornado chart of `bars` around `baseline` (the output with every input at its central
/// value); bars are drawn sorted by width, widest on top. `log_x` draws the output axis on a
/// log scale (then every value must be > 0).
///
/// # Errors
/// [`WriteError::InvalidPlot`] with no bars, a non-finite value, or a value <= 0 on a log axis;
/// IO or drawing errors naming the file.
pub fn tornado_plot(
    dir: &Path,
    name: &str,
    title: &str,
    x_label: &str,
    baseline: f64,
    bars: &[TornadoBar],
    log_x: bool,
) -> Result<PlotFiles, WriteError> {
    let invalid = |reason: String| WriteError::InvalidPlot {
        plot: name.to_string(),
        reason,
    };
    if bars.is_empty() {
        return Err(invalid("needs at least one bar".into()));
    }
    let values = || {
        bars.iter()
            .flat_map(|b| [b.at_low, b.at_high])
            .chain(std::iter::once(baseline))
    };
    if values().any(|v| !v.is_finite() || (log_x && v <= 0.0)) {
        return Err(invalid(
            "values must be finite (and > 0 on a log axis)".into(),
        ));
    }
    let mut sorted = bars.to_vec();
    sorted.sort_by(|a, b| {
        let w = |t: &TornadoBar| (t.at_high - t.at_low).abs();
        w(a).total_cmp(&w(b))
    });
    let t = |v: f64| if log_x { v.log10() } else { v };
    let lo = values().map(t).fold(f64::INFINITY, f64::min);
    let hi = values().map(t).fold(f64::NEG_INFINITY, f64::max);
    let pad = if hi > lo { (hi - lo) * 0.05 } else { 1.0 };
    render(
        dir,
        name,
        &Tornado {
            title,
            x_label,
            baseline: t(baseline),
            bars: sorted
                .iter()
                .map(|b| (b.label.clone(), t(b.at_low), t(b.at_high)))
                .collect(),
            range: (lo - pad, hi + pad),
            log_x,
        },
    )
}

struct Tornado<'a> {
    title: &'a str,
    x_label: &'a str,
    baseline: f64,
    /// (label, low, high), already on the drawn scale, narrowest first.
    bars: Vec<(String, f64, f64)>,
    range: (f64, f64),
    log_x: bool,
}

impl Figure for Tornado<'_> {
    fn draw<DB: DrawingBackend>(
        &self,
        root: &DrawingArea<DB, plotters::coord::Shift>,
    ) -> Result<(), String> {
        let n = self.bars.len() as f64;
        let labels: Vec<String> = self.bars.iter().map(|b| b.0.clone()).collect();
        let mut chart = ChartBuilder::on(root)
            .caption(self.title, (FONT, 24))
            .margin(15)
            .x_label_area_size(45)
            .y_label_area_size(190)
            .build_cartesian_2d(self.range.0..self.range.1, 0.0..n)
            .map_err(err)?;
        let log_x = self.log_x;
        chart
            .configure_mesh()
            .x_desc(self.x_label)
            .y_labels(self.bars.len() * 2 + 1)
            .y_label_formatter(&|y: &f64| {
                let k = (y - 0.5).round();
                if (y - 0.5 - k).abs() < 1e-6 && k >= 0.0 && (k as usize) < labels.len() {
                    labels[k as usize].clone()
                } else {
                    String::new()
                }
            })
            .x_label_formatter(&|x: &f64| {
                if log_x {
                    format!("{:.1e}", 10f64.powf(*x))
                } else {
                    format!("{x:.3}")
                }
            })
            .label_style((FONT, 14))
            .draw()
            .map_err(err)?;
        let low = color_of(0);
        let high = color_of(1);
        for (k, (_, at_low, at_high)) in self.bars.iter().enumerate() {
            let (y0, y1) = (k as f64 + 0.15, k as f64 + 0.85);
            chart
                .draw_series([
                    Rectangle::new([(self.baseline, y0), (*at_low, y1)], low.mix(0.8).filled()),
                    Rectangle::new(
                        [(self.baseline, y0), (*at_high, y1)],
                        high.mix(0.8).filled(),
                    ),
                ])
                .map_err(err)?;
        }
        chart
            .draw_series(std::iter::once(PathElement::new(
                vec![(self.baseline, 0.0), (self.baseline, n)],
                BLACK.stroke_width(2),
            )))
            .map_err(err)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_png_and_svg_and_refuses_bad_values() {
        let dir = tempfile::tempdir().unwrap();
        let bars = vec![
            TornadoBar {
                label: "p(emergence)".into(),
                at_low: 0.01,
                at_high: 0.08,
            },
            TornadoBar {
                label: "escape".into(),
                at_low: 0.02,
                at_high: 0.03,
            },
        ];
        let files = tornado_plot(dir.path(), "t", "Tornado", "risk", 0.025, &bars, true).unwrap();
        assert!(files.png.exists() && files.svg.exists());
        let svg = std::fs::read_to_string(&files.svg).unwrap();
        assert!(svg.contains("p(emergence)"));
        assert!(tornado_plot(dir.path(), "u", "T", "risk", 0.0, &bars, true).is_err());
        assert!(tornado_plot(dir.path(), "v", "T", "risk", 0.1, &[], false).is_err());
    }
}
