//! PNG plots of the report (plotters, bitmap backend, the crate's embedded font).

use std::path::Path;

use plotters::coord::Shift;
use plotters::prelude::*;

use super::data::{Mixture, Points};
use super::metrics::{classify, SampleClass};
use crate::plot::{colour, init_fonts, FONT};
use crate::{Error, Result};

/// Colour of out-of-support samples.
const OUT_OF_SUPPORT: RGBColor = RGBColor(20, 20, 20);

fn plot_error(path: &Path) -> impl Fn(&dyn std::fmt::Debug) -> Error + '_ {
    move |e| Error::Invalid(format!("cannot draw {}: {e:?}", path.display()))
}

/// Error conversion for plotters results.
trait PlotResult<T> {
    fn on(self, path: &Path) -> Result<T>;
}

impl<T, E: std::fmt::Debug> PlotResult<T> for std::result::Result<T, E> {
    fn on(self, path: &Path) -> Result<T> {
        self.map_err(|e| plot_error(path)(&e))
    }
}

/// The colour of a sample: its mode's when high quality, dark grey otherwise.
fn class_colour(class: SampleClass) -> RGBColor {
    match class {
        SampleClass::HighQuality { mode } => colour(mode),
        _ => OUT_OF_SUPPORT,
    }
}

/// A column of 1-D histograms (log-scale counts), one panel per `(title, samples)`, bars
/// coloured by the class of the bin centre (mode colour within 3σ, black outside).
pub fn histograms_1d(
    path: &Path,
    panels: &[(String, &Points)],
    mixture: &Mixture,
    range: (f64, f64),
    bins: usize,
) -> Result<()> {
    init_fonts();
    let height = 180 * panels.len().max(1) as u32;
    let root = BitMapBackend::new(path, (900, height)).into_drawing_area();
    root.fill(&WHITE).on(path)?;
    let areas = root.split_evenly((panels.len().max(1), 1));
    let width = (range.1 - range.0) / bins as f64;
    let histograms: Vec<Vec<u32>> = panels
        .iter()
        .map(|(_, points)| {
            let mut counts = vec![0u32; bins];
            for row in points.rows() {
                let b = ((row[0] - range.0) / width).floor();
                if b >= 0.0 && (b as usize) < bins {
                    counts[b as usize] += 1;
                }
            }
            counts
        })
        .collect();
    // One count axis for every panel, so that panels compare at a glance.
    let top = f64::from(
        histograms
            .iter()
            .flatten()
            .copied()
            .max()
            .unwrap_or(1)
            .max(1),
    ) * 2.0;
    for (((title, _), counts), area) in panels.iter().zip(&histograms).zip(&areas) {
        let mut chart = ChartBuilder::on(area)
            .caption(title, (FONT, 15))
            .margin(6)
            .x_label_area_size(24)
            .y_label_area_size(48)
            .build_cartesian_2d(range.0..range.1, (0.8f64..top).log_scale())
            .on(path)?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .light_line_style(WHITE)
            .y_desc("count")
            .label_style((FONT, 11))
            .draw()
            .on(path)?;
        chart
            .draw_series(
                counts
                    .iter()
                    .enumerate()
                    .filter(|(_, &c)| c > 0)
                    .map(|(i, &c)| {
                        let x0 = range.0 + i as f64 * width;
                        let class = classify(&[x0 + width / 2.0], mixture);
                        Rectangle::new(
                            [(x0, 0.8), (x0 + width, f64::from(c))],
                            class_colour(class).filled(),
                        )
                    }),
            )
            .on(path)?;
    }
    root.present().on(path)
}

/// A grid of 2-D scatter plots, one panel per `(title, samples)`; points coloured by nearest
/// mode when high quality, out-of-support points black and drawn last (on top).
pub fn scatter_2d(
    path: &Path,
    panels: &[(String, &Points)],
    mixture: &Mixture,
    extent: f64,
) -> Result<()> {
    init_fonts();
    let cols = panels.len().clamp(1, 4);
    let rows = panels.len().div_ceil(cols).max(1);
    let root = BitMapBackend::new(path, (300 * cols as u32, 310 * rows as u32)).into_drawing_area();
    root.fill(&WHITE).on(path)?;
    let areas = root.split_evenly((rows, cols));
    for ((title, points), area) in panels.iter().zip(&areas) {
        draw_scatter(area, title, points, mixture, extent, path)?;
    }
    root.present().on(path)
}

fn draw_scatter(
    area: &DrawingArea<BitMapBackend<'_>, Shift>,
    title: &str,
    points: &Points,
    mixture: &Mixture,
    extent: f64,
    path: &Path,
) -> Result<()> {
    let mut chart = ChartBuilder::on(area)
        .caption(title, (FONT, 15))
        .margin(6)
        .x_label_area_size(24)
        .y_label_area_size(36)
        .build_cartesian_2d(-extent..extent, -extent..extent)
        .on(path)?;
    chart
        .configure_mesh()
        .light_line_style(WHITE)
        .label_style((FONT, 11))
        .draw()
        .on(path)?;
    let classes: Vec<(SampleClass, &[f64])> =
        points.rows().map(|r| (classify(r, mixture), r)).collect();
    chart
        .draw_series(
            classes
                .iter()
                .filter(|(c, _)| c.is_high_quality())
                .map(|(c, r)| Circle::new((r[0], r[1]), 1, class_colour(*c).filled())),
        )
        .on(path)?;
    chart
        .draw_series(
            classes
                .iter()
                .filter(|(c, _)| !c.is_high_quality())
                .map(|(_, r)| Cross::new((r[0], r[1]), 2, OUT_OF_SUPPORT.stroke_width(1))),
        )
        .on(path)?;
    chart
        .draw_series(
            mixture
                .means
                .rows()
                .map(|m| Circle::new((m[0], m[1]), 3, RGBColor(120, 120, 120).stroke_width(1))),
        )
        .on(path)?;
    Ok(())
}

/// One line series: legend label and (x, y) points.
pub struct Series {
    /// Legend label.
    pub label: String,
    /// Points in drawing order.
    pub points: Vec<(f64, f64)>,
    /// Optional (low, high) error bar per point (empty: none).
    pub errors: Vec<(f64, f64)>,
}

/// A line plot with markers; `log_x` puts x on a log scale.
pub fn line_plot(
    path: &Path,
    title: &str,
    axes: (&str, &str),
    series: &[Series],
    log_x: bool,
) -> Result<()> {
    init_fonts();
    let xs = series.iter().flat_map(|s| s.points.iter().map(|p| p.0));
    let (x_min, x_max) = xs.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), x| {
        (a.min(x), b.max(x))
    });
    let y_max = series
        .iter()
        .flat_map(|s| {
            s.points
                .iter()
                .map(|p| p.1)
                .chain(s.errors.iter().map(|e| e.1))
        })
        .fold(0.0f64, f64::max);
    if !x_min.is_finite() {
        return Err(Error::Invalid(format!(
            "{}: nothing to plot",
            path.display()
        )));
    }
    let y_top = if y_max > 0.0 { y_max * 1.15 } else { 1.0 };
    let root = BitMapBackend::new(path, (760, 460)).into_drawing_area();
    root.fill(&WHITE).on(path)?;
    if log_x {
        let mut chart = ChartBuilder::on(&root)
            .caption(title, (FONT, 17))
            .margin(10)
            .x_label_area_size(40)
            .y_label_area_size(56)
            .build_cartesian_2d((x_min * 0.8..x_max * 1.25).log_scale(), 0.0..y_top)
            .on(path)?;
        chart
            .configure_mesh()
            .light_line_style(WHITE)
            .x_desc(axes.0)
            .y_desc(axes.1)
            .label_style((FONT, 12))
            .draw()
            .on(path)?;
        for (i, s) in series.iter().enumerate() {
            let c = colour(i);
            chart
                .draw_series(LineSeries::new(s.points.iter().copied(), c.stroke_width(2)))
                .on(path)?
                .label(s.label.clone())
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 18, y)], c.stroke_width(2))
                });
            chart
                .draw_series(s.points.iter().map(|&p| Circle::new(p, 4, c.filled())))
                .on(path)?;
            chart
                .draw_series(s.points.iter().zip(&s.errors).map(|(&(x, _), &(lo, hi))| {
                    PathElement::new(vec![(x, lo), (x, hi)], c.stroke_width(2))
                }))
                .on(path)?;
        }
        chart
            .configure_series_labels()
            .label_font((FONT, 13))
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .draw()
            .on(path)?;
    } else {
        let pad = (x_max - x_min).max(1e-9) * 0.05;
        let mut chart = ChartBuilder::on(&root)
            .caption(title, (FONT, 17))
            .margin(10)
            .x_label_area_size(40)
            .y_label_area_size(56)
            .build_cartesian_2d(x_min - pad..x_max + pad, 0.0..y_top)
            .on(path)?;
        chart
            .configure_mesh()
            .light_line_style(WHITE)
            .x_desc(axes.0)
            .y_desc(axes.1)
            .label_style((FONT, 12))
            .draw()
            .on(path)?;
        for (i, s) in series.iter().enumerate() {
            let c = colour(i);
            chart
                .draw_series(LineSeries::new(s.points.iter().copied(), c.stroke_width(2)))
                .on(path)?
                .label(s.label.clone())
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 18, y)], c.stroke_width(2))
                });
            chart
                .draw_series(s.points.iter().map(|&p| Circle::new(p, 4, c.filled())))
                .on(path)?;
            chart
                .draw_series(s.points.iter().zip(&s.errors).map(|(&(x, _), &(lo, hi))| {
                    PathElement::new(vec![(x, lo), (x, hi)], c.stroke_width(2))
                }))
                .on(path)?;
        }
        chart
            .configure_series_labels()
            .label_font((FONT, 13))
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .draw()
            .on(path)?;
    }
    root.present().on(path)
}

/// One panel of [`score_histograms`].
pub struct ScorePanel<'a> {
    /// Panel title.
    pub title: String,
    /// (x̂0 variance, in support) per sample.
    pub scores: &'a [(f64, bool)],
    /// The filter threshold, drawn as a vertical line.
    pub threshold: Option<f64>,
}

/// Histograms of log10(x̂0 variance), in-support and out-of-support samples overlaid, one panel
/// per data set, with the threshold as a vertical line.
pub fn score_histograms(path: &Path, panels: &[ScorePanel<'_>]) -> Result<()> {
    init_fonts();
    let root =
        BitMapBackend::new(path, (900, 220 * panels.len().max(1) as u32)).into_drawing_area();
    root.fill(&WHITE).on(path)?;
    let areas = root.split_evenly((panels.len().max(1), 1));
    let bins = 60usize;
    for (panel, area) in panels.iter().zip(&areas) {
        let (title, scores, threshold) = (&panel.title, panel.scores, &panel.threshold);
        let logs: Vec<(f64, bool)> = scores
            .iter()
            .map(|&(s, inside)| (s.max(1e-30).log10(), inside))
            .collect();
        let lo = logs.iter().map(|p| p.0).fold(f64::INFINITY, f64::min);
        let hi = logs.iter().map(|p| p.0).fold(f64::NEG_INFINITY, f64::max);
        if !lo.is_finite() {
            continue;
        }
        let (lo, hi) = (lo - 0.1, hi + 0.1);
        let width = (hi - lo) / bins as f64;
        let mut counts = vec![[0u32; 2]; bins];
        for &(v, inside) in &logs {
            let b = (((v - lo) / width) as usize).min(bins - 1);
            counts[b][usize::from(!inside)] += 1;
        }
        let top = f64::from(counts.iter().flatten().copied().max().unwrap_or(1).max(1)) * 2.0;
        let mut chart = ChartBuilder::on(area)
            .caption(title, (FONT, 15))
            .margin(6)
            .x_label_area_size(30)
            .y_label_area_size(48)
            .build_cartesian_2d(lo..hi, (0.8f64..top).log_scale())
            .on(path)?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .light_line_style(WHITE)
            .x_desc("log10 x̂0 variance (last k DDPM steps)")
            .y_desc("count")
            .label_style((FONT, 11))
            .draw()
            .on(path)?;
        for (which, c, label) in [
            (0usize, colour(0), "in support"),
            (1, colour(3), "out of support"),
        ] {
            chart
                .draw_series(counts.iter().enumerate().filter(|(_, k)| k[which] > 0).map(
                    |(i, k)| {
                        let x0 = lo + i as f64 * width;
                        Rectangle::new(
                            [(x0, 0.8), (x0 + width, f64::from(k[which]))],
                            c.mix(0.55).filled(),
                        )
                    },
                ))
                .on(path)?
                .label(label)
                .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 12, y + 5)], c.filled()));
        }
        if let Some(t) = threshold {
            let x = t.max(1e-30).log10();
            chart
                .draw_series(LineSeries::new(
                    vec![(x, 0.8), (x, top)],
                    BLACK.stroke_width(2),
                ))
                .on(path)?
                .label("threshold (calibration draw)")
                .legend(|(x, y)| {
                    PathElement::new(vec![(x, y), (x + 18, y)], BLACK.stroke_width(2))
                });
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .label_font((FONT, 12))
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .draw()
            .on(path)?;
    }
    root.present().on(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_every_kind_of_plot() {
        let dir = tempfile::tempdir().unwrap();
        let line = Mixture::line(&[1.0, 2.0, 3.0], 0.05);
        let pts = Points::new(1, vec![1.0, 1.02, 1.5, 2.0, 3.1, 3.0]).unwrap();
        let hist = dir.path().join("h.png");
        histograms_1d(
            &hist,
            &[("a".into(), &pts), ("b".into(), &pts)],
            &line,
            (0.5, 3.5),
            60,
        )
        .unwrap();
        let ring = crate::experiments::data::DatasetKind::Ring8.mixture();
        let pts2 = Points::new(2, vec![1.0, 0.0, 0.0, 0.0, 0.7, 0.7]).unwrap();
        let scatter = dir.path().join("s.png");
        scatter_2d(&scatter, &[("r".into(), &pts2)], &ring, 1.5).unwrap();
        let lines = dir.path().join("l.png");
        let series = [Series {
            label: "x".into(),
            points: vec![(1.0, 0.1), (2.0, 0.05)],
            errors: vec![(0.05, 0.2), (0.0, 0.1)],
        }];
        line_plot(&lines, "t", ("d", "f"), &series, true).unwrap();
        line_plot(&lines, "t", ("d", "f"), &series, false).unwrap();
        let scores = dir.path().join("f.png");
        let s = [(1e-4, true), (1e-2, false), (2e-4, true)];
        let panel = ScorePanel {
            title: "x".into(),
            scores: &s,
            threshold: Some(5e-4),
        };
        score_histograms(&scores, &[panel]).unwrap();
        for p in [hist, scatter, lines, scores] {
            assert!(
                std::fs::metadata(&p).unwrap().len() > 1000,
                "{}",
                p.display()
            );
        }
    }
}
