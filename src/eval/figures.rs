//! The PNG plots of the `dplan eval` report: a gallery of scenes with the candidates coloured
//! by geometric label, the mode histogram against the expert's, and the training curve.
//!
//! Drawn with plotters' bitmap backend and the crate's embedded font, so the same report gives
//! the same PNG bytes on every machine.

use std::path::Path;

use plotters::prelude::*;

use super::{GalleryScene, ModeHistogram};
use crate::plot::{colour, init_fonts, FONT};
use crate::robot::PlanarArm;
use crate::{Error, Result};

type DrawResult<T = ()> = std::result::Result<T, Box<dyn std::error::Error>>;
type Area<'a> = DrawingArea<BitMapBackend<'a>, plotters::coord::Shift>;

/// Pixels per gallery panel (square).
const PANEL: u32 = 420;
/// Gallery panels per row.
const COLUMNS: usize = 4;
/// Height of the gallery's legend strip, pixels.
const LEGEND: u32 = 56;

const ARM: RGBColor = RGBColor(55, 55, 55);
const OBSTACLE: RGBColor = RGBColor(150, 60, 60);
const NO_LABEL: RGBColor = RGBColor(150, 150, 150);

fn wrap(path: &Path, result: DrawResult) -> Result<()> {
    result.map_err(|e| Error::Invalid(format!("drawing {}: {e}", path.display())))
}

/// Colour of label `label` (grey for none).
fn label_colour(label: Option<usize>) -> RGBColor {
    label.map_or(NO_LABEL, colour)
}

fn circle_points(center: [f64; 2], radius: f64) -> Vec<(f64, f64)> {
    (0..=72)
        .map(|i| {
            let a = std::f64::consts::TAU * f64::from(i) / 72.0;
            (center[0] + radius * a.cos(), center[1] + radius * a.sin())
        })
        .collect()
}

/// Draws `scenes` in a grid to the PNG `path` (see the module docs); `mode_names` name the
/// label colours.
pub fn draw_gallery(
    path: &Path,
    arm: &PlanarArm,
    scenes: &[GalleryScene],
    mode_names: &[String],
) -> Result<()> {
    init_fonts();
    wrap(path, gallery(path, arm, scenes, mode_names))
}

fn gallery(
    path: &Path,
    arm: &PlanarArm,
    scenes: &[GalleryScene],
    mode_names: &[String],
) -> DrawResult {
    let rows = scenes.len().div_ceil(COLUMNS).max(1);
    let columns = scenes.len().clamp(1, COLUMNS);
    let size = (PANEL * columns as u32, PANEL * rows as u32 + LEGEND);
    let root = BitMapBackend::new(path, size).into_drawing_area();
    root.fill(&WHITE)?;
    let (legend, panels) = root.split_vertically(LEGEND);
    gallery_legend(&legend, mode_names)?;
    for (area, scene) in panels.split_evenly((rows, columns)).iter().zip(scenes) {
        panel(area, arm, scene, mode_names)?;
    }
    root.present()?;
    Ok(())
}

fn gallery_legend(area: &Area<'_>, mode_names: &[String]) -> DrawResult {
    let style = (FONT, 16).into_font().color(&BLACK);
    let mut entries: Vec<(String, ShapeStyle)> = mode_names
        .iter()
        .enumerate()
        .map(|(i, n)| (n.clone(), colour(i).stroke_width(3)))
        .collect();
    entries.push(("no label".into(), NO_LABEL.stroke_width(3)));
    entries.push(("expert".into(), BLACK.stroke_width(1)));
    entries.push(("chosen".into(), BLACK.stroke_width(5)));
    let text = "thin, faded: rejected by the planner; x: goal; grey arm: start";
    area.draw(&Text::new(text, (10, 34), style.clone()))?;
    let mut x = 10i32;
    for (name, line) in entries {
        area.draw(&PathElement::new(vec![(x, 14), (x + 26, 14)], line))?;
        area.draw(&Text::new(name.clone(), (x + 32, 6), style.clone()))?;
        x += 50 + 9 * name.len() as i32;
    }
    Ok(())
}

fn panel(area: &Area<'_>, arm: &PlanarArm, scene: &GalleryScene, names: &[String]) -> DrawResult {
    let kept = scene.candidates.iter().filter(|c| c.kept).count();
    let mut expert: Vec<&str> = scene
        .expert
        .iter()
        .filter_map(|m| names.get(m.label).map(String::as_str))
        .collect();
    expert.sort_unstable();
    expert.dedup();
    let chosen = match scene.chosen {
        Some(i) => {
            let label = scene
                .candidates
                .get(i)
                .and_then(|c| c.label)
                .and_then(|l| names.get(l))
                .map_or("-", String::as_str);
            let verdict = if scene.success { "ok" } else { "FAIL" };
            format!("{label} {verdict}")
        }
        None => "none (FAIL)".into(),
    };
    let title = format!(
        "draw {}: {kept}/{} kept, chosen {chosen}",
        scene.draw,
        scene.candidates.len()
    );
    let area = area.margin(4, 4, 4, 4);
    let area = area.titled(&title, (FONT, 14))?;
    let caption = format!("expert: {}", expert.join(", "));
    let (area, footer) = area.split_vertically(area.dim_in_pixel().1.saturating_sub(18));
    footer.draw(&Text::new(caption, (6, 2), (FONT, 13).into_font()))?;

    let base = arm.base_m();
    let reach = arm.max_reach_m() + 0.05;
    let mut chart = ChartBuilder::on(&area).margin(2).build_cartesian_2d(
        (base[0] - reach)..(base[0] + reach),
        (base[1] - reach)..(base[1] + reach),
    )?;
    chart.draw_series(std::iter::once(PathElement::new(
        circle_points(base, arm.max_reach_m()),
        RGBColor(200, 200, 200).stroke_width(1),
    )))?;
    for obstacle in &scene.scene.obstacles {
        chart.draw_series(std::iter::once(Polygon::new(
            circle_points(obstacle.center_m, obstacle.radius_m),
            OBSTACLE.mix(0.5).filled(),
        )))?;
    }
    let ee = |path: &crate::robot::JointPath| -> Vec<(f64, f64)> {
        path.waypoints()
            .map(|q| {
                let p = arm.end_effector(q);
                (p[0], p[1])
            })
            .collect()
    };
    for c in scene.candidates.iter().filter(|c| !c.kept) {
        let style = label_colour(c.label).mix(0.3).stroke_width(1);
        chart.draw_series(std::iter::once(PathElement::new(ee(&c.path), style)))?;
    }
    for c in scene.candidates.iter().filter(|c| c.kept) {
        let style = label_colour(c.label).stroke_width(2);
        chart.draw_series(std::iter::once(PathElement::new(ee(&c.path), style)))?;
    }
    for mode in &scene.expert {
        chart.draw_series(std::iter::once(plotters::element::DashedPathElement::new(
            ee(&mode.path),
            6,
            4,
            BLACK.stroke_width(1),
        )))?;
    }
    if let Some(c) = scene.chosen.and_then(|i| scene.candidates.get(i)) {
        chart.draw_series(std::iter::once(PathElement::new(
            ee(&c.path),
            BLACK.stroke_width(5),
        )))?;
        chart.draw_series(std::iter::once(PathElement::new(
            ee(&c.path),
            label_colour(c.label).stroke_width(3),
        )))?;
    }
    let start: Vec<(f64, f64)> = arm
        .joint_points(&scene.scene.start_rad)
        .iter()
        .map(|p| (p[0], p[1]))
        .collect();
    chart.draw_series(std::iter::once(PathElement::new(
        start,
        ARM.mix(0.7).stroke_width(5),
    )))?;
    let goal = (scene.scene.goal_m[0], scene.scene.goal_m[1]);
    chart.draw_series(std::iter::once(Cross::new(goal, 7, BLACK.stroke_width(2))))?;
    Ok(())
}

/// Draws the grouped bar chart of `histogram` (expert, all candidates, kept candidates per
/// category) to the PNG `path`.
pub fn draw_mode_histogram(path: &Path, histogram: &ModeHistogram) -> Result<()> {
    init_fonts();
    wrap(path, mode_histogram(path, histogram))
}

fn mode_histogram(path: &Path, h: &ModeHistogram) -> DrawResult {
    let root = BitMapBackend::new(path, (1000, 520)).into_drawing_area();
    root.fill(&WHITE)?;
    let n = h.names.len();
    let top = h
        .expert
        .iter()
        .chain(&h.candidates)
        .copied()
        .fold(0.1f64, f64::max)
        * 1.15;
    let names = h.names.clone();
    let mut chart = ChartBuilder::on(&root)
        .caption(
            "mode shares: expert vs candidates (mean over scenes)",
            (FONT, 20),
        )
        .margin(14)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(-0.5f64..(n as f64 - 0.5), 0.0..top)?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(n + 1)
        .x_label_formatter(&|x| {
            let i = x.round();
            if (x - i).abs() < 1e-6 && i >= 0.0 {
                names.get(i as usize).cloned().unwrap_or_default()
            } else {
                String::new()
            }
        })
        .y_desc("share")
        .y_label_formatter(&|y| format!("{y:.2}"))
        .light_line_style(RGBColor(242, 242, 242))
        .label_style((FONT, 15))
        .axis_desc_style((FONT, 16))
        .draw()?;
    let series: [(&str, &[f64], RGBColor); 3] = [
        ("expert paths", &h.expert, RGBColor(60, 60, 60)),
        ("all candidates", &h.candidates, colour(0)),
        ("kept candidates", &h.kept_candidates, colour(2)),
    ];
    let width = 0.26;
    for (s, (name, values, fill)) in series.into_iter().enumerate() {
        let offset = (s as f64 - 1.0) * width;
        chart
            .draw_series(values.iter().enumerate().map(|(i, &v)| {
                let x = i as f64 + offset;
                Rectangle::new(
                    [(x - width / 2.0, 0.0), (x + width / 2.0, v)],
                    fill.filled(),
                )
            }))?
            .label(name)
            .legend(move |(x, y)| Rectangle::new([(x, y - 6), (x + 20, y + 6)], fill.filled()));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.85))
        .border_style(RGBColor(160, 160, 160))
        .label_font((FONT, 15))
        .draw()?;
    root.present()?;
    Ok(())
}

/// Draws the training loss (log scale) against the optimiser step to the PNG `path`.
pub fn draw_loss_curve(path: &Path, points: &[(f64, f64)], title: &str) -> Result<()> {
    init_fonts();
    wrap(path, loss_curve(path, points, title))
}

fn loss_curve(path: &Path, points: &[(f64, f64)], title: &str) -> DrawResult {
    let root = BitMapBackend::new(path, (1000, 480)).into_drawing_area();
    root.fill(&WHITE)?;
    let positive: Vec<(f64, f64)> = points
        .iter()
        .copied()
        .filter(|(s, l)| s.is_finite() && *l > 0.0 && l.is_finite())
        .collect();
    if positive.is_empty() {
        return Err("no positive loss values".into());
    }
    let max_step = positive.iter().map(|p| p.0).fold(1.0, f64::max);
    let (lo, hi) = positive
        .iter()
        .fold((f64::INFINITY, 0.0f64), |(lo, hi), p| {
            (lo.min(p.1), hi.max(p.1))
        });
    let mut chart = ChartBuilder::on(&root)
        .caption(title, (FONT, 20))
        .margin(14)
        .x_label_area_size(40)
        .y_label_area_size(70)
        .build_cartesian_2d(0.0..max_step, ((lo * 0.8)..(hi * 1.25)).log_scale())?;
    chart
        .configure_mesh()
        .x_desc("optimiser step")
        .y_desc("training loss (log)")
        .x_label_formatter(&|x| format!("{x:.0}"))
        .y_label_formatter(&|y| {
            if *y >= 0.01 {
                format!("{y:.2}")
            } else {
                format!("{y:.0e}")
            }
        })
        .label_style((FONT, 15))
        .axis_desc_style((FONT, 16))
        .light_line_style(RGBColor(240, 240, 240))
        .draw()?;
    chart.draw_series(LineSeries::new(positive, colour(0).stroke_width(2)))?;
    root.present()?;
    Ok(())
}
