//! The `dplan sample` figure: two panels from a [`SampleReport`].
//!
//! - Left, workspace (metres, equal axes): the reachable annulus, the obstacles, every
//!   candidate's end-effector path coloured by run-time mode (rejected ones thin and faded,
//!   grey when no mode is near), the chosen one bold with the arm drawn at its end, the arm at
//!   the start as thick segments, the goal; a legend with each mode's label counts and sizes.
//! - Right, configuration space (shoulder vs elbow, radians): the configurations in collision
//!   (grey), the joint-limit box, the same paths, the start and the goal's IK solutions.
//!
//! Drawn with plotters' bitmap backend and the crate's embedded font, so the same report gives
//! the same PNG bytes on every machine.

use std::path::Path;

use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;

use super::report::{label_counts, SampleReport};
use crate::plot::{colour, init_fonts, FONT};
use crate::robot::PlanarArm;
use crate::{Error, Result};

/// Figure size, pixels.
pub const FIGURE_SIZE: (u32, u32) = (1600, 820);
/// Cells per joint of the configuration-space collision grid.
const CSPACE_GRID: usize = 160;
const MARGIN: u32 = 12;
const X_LABEL_AREA: u32 = 45;
const Y_LABEL_AREA: u32 = 60;

type Chart<'a, 'b> =
    ChartContext<'a, BitMapBackend<'b>, Cartesian2d<RangedCoordf64, RangedCoordf64>>;
type DrawResult<T = ()> = std::result::Result<T, Box<dyn std::error::Error>>;

const ARM: RGBColor = RGBColor(55, 55, 55);
const OBSTACLE: RGBColor = RGBColor(150, 60, 60);
const COLLISION: RGBColor = RGBColor(218, 218, 218);
const NO_MODE: RGBColor = RGBColor(150, 150, 150);

/// Draws the figure of `report` (planned for `arm`) to the PNG `path`.
pub fn draw_figure(path: &Path, arm: &PlanarArm, report: &SampleReport) -> Result<()> {
    init_fonts();
    draw(path, arm, report).map_err(|e| Error::Invalid(format!("drawing {}: {e}", path.display())))
}

fn draw(path: &Path, arm: &PlanarArm, report: &SampleReport) -> DrawResult {
    let root = BitMapBackend::new(path, FIGURE_SIZE).into_drawing_area();
    root.fill(&WHITE)?;
    let root = root.titled(&title(report), (FONT, 20).into_font().color(&BLACK))?;
    let (left, right) = root.split_horizontally(FIGURE_SIZE.0 / 2);
    workspace_panel(&left, arm, report)?;
    cspace_panel(&right, arm, report)?;
    root.present()?;
    Ok(())
}

fn title(report: &SampleReport) -> String {
    let scene = Path::new(&report.scene_file).file_stem().map_or_else(
        || report.scene_file.clone(),
        |s| s.to_string_lossy().into_owned(),
    );
    let chosen = match report.chosen {
        Some(i) => {
            let label = report
                .candidates
                .get(i)
                .and_then(|c| c.label.as_deref())
                .unwrap_or("-");
            format!("chosen #{i} ({label})")
        }
        None => "none valid: hold".to_string(),
    };
    let s = &report.sampler;
    format!(
        "{scene}: {}/{} valid, {} modes, {chosen} | model {} step {}, {} {} steps, mode {}, \
         guidance {}, seed {}",
        report.valid_count,
        report.num_samples,
        report.modes.len(),
        report.model.name,
        report.model.training_steps,
        s.kind,
        s.inference_steps,
        report.mode_request,
        s.guidance_scale,
        report.seed
    )
}

/// The plotting area's size in pixels for a chart built on `area` with the constants above.
fn plot_pixels(area: &DrawingArea<BitMapBackend<'_>, plotters::coord::Shift>) -> (f64, f64) {
    let (w, h) = area.dim_in_pixel();
    let w = w.saturating_sub(2 * MARGIN + Y_LABEL_AREA).max(1);
    let h = h.saturating_sub(2 * MARGIN + X_LABEL_AREA).max(1);
    (f64::from(w), f64::from(h))
}

fn chart<'a, 'b>(
    area: &'a DrawingArea<BitMapBackend<'b>, plotters::coord::Shift>,
    x: (f64, f64),
    y: (f64, f64),
    x_desc: &str,
    y_desc: &str,
) -> DrawResult<Chart<'a, 'b>> {
    let mut chart = ChartBuilder::on(area)
        .margin(MARGIN)
        .x_label_area_size(X_LABEL_AREA)
        .y_label_area_size(Y_LABEL_AREA)
        .build_cartesian_2d(x.0..x.1, y.0..y.1)?;
    chart
        .configure_mesh()
        .x_desc(x_desc)
        .y_desc(y_desc)
        .label_style((FONT, 15))
        .axis_desc_style((FONT, 16))
        .max_light_lines(0)
        .bold_line_style(RGBColor(228, 228, 228))
        .draw()?;
    Ok(chart)
}

/// Draws every candidate's curve `map(waypoint)`: rejected first (thin, faded), then valid, then
/// the chosen one bold.
fn draw_candidates(
    chart: &mut Chart<'_, '_>,
    report: &SampleReport,
    map: &dyn Fn(&[f64]) -> (f64, f64),
) -> DrawResult {
    let points = |rows: &[Vec<f64>]| rows.iter().map(|q| map(q)).collect::<Vec<_>>();
    for c in report.candidates.iter().filter(|c| !c.valid) {
        let style = match c.mode {
            Some(m) => colour(m).mix(0.35).stroke_width(1),
            None => NO_MODE.mix(0.6).stroke_width(1),
        };
        chart.draw_series(std::iter::once(PathElement::new(
            points(&c.path_rad),
            style,
        )))?;
    }
    for c in report.candidates.iter().filter(|c| c.valid && !c.chosen) {
        let style = colour(c.mode.unwrap_or(0)).stroke_width(2);
        chart.draw_series(std::iter::once(PathElement::new(
            points(&c.path_rad),
            style,
        )))?;
    }
    for c in report.candidates.iter().filter(|c| c.chosen) {
        let curve = points(&c.path_rad);
        chart.draw_series(std::iter::once(PathElement::new(
            curve.clone(),
            BLACK.stroke_width(7),
        )))?;
        let style = colour(c.mode.unwrap_or(0)).stroke_width(4);
        chart.draw_series(std::iter::once(PathElement::new(curve, style)))?;
    }
    Ok(())
}

/// A circle of `radius` around `center` as a closed polygon in data coordinates.
fn circle_points(center: [f64; 2], radius: f64) -> Vec<(f64, f64)> {
    (0..=96)
        .map(|i| {
            let a = std::f64::consts::TAU * f64::from(i) / 96.0;
            (center[0] + radius * a.cos(), center[1] + radius * a.sin())
        })
        .collect()
}

/// The chart corner whose box (45 % of the width, 35 % of the height) covers the fewest of
/// `points` (ties: upper left, upper right, lower left, lower right), for the legend.
fn legend_corner(points: &[(f64, f64)], x: (f64, f64), y: (f64, f64)) -> SeriesLabelPosition {
    let (w, h) = (0.45 * (x.1 - x.0), 0.35 * (y.1 - y.0));
    let corners = [
        (SeriesLabelPosition::UpperLeft, x.0, y.1 - h),
        (SeriesLabelPosition::UpperRight, x.1 - w, y.1 - h),
        (SeriesLabelPosition::LowerLeft, x.0, y.0),
        (SeriesLabelPosition::LowerRight, x.1 - w, y.0),
    ];
    let covered = |left: f64, bottom: f64| {
        points
            .iter()
            .filter(|p| p.0 >= left && p.0 <= left + w && p.1 >= bottom && p.1 <= bottom + h)
            .count()
    };
    let mut best = (SeriesLabelPosition::UpperLeft, usize::MAX);
    for (position, left, bottom) in corners {
        let n = covered(left, bottom);
        if n < best.1 {
            best = (position, n);
        }
    }
    best.0
}

/// Every candidate's curve points, plus `extra` points counted `weight` times each.
fn crowded_points(
    report: &SampleReport,
    map: &dyn Fn(&[f64]) -> (f64, f64),
    extra: &[(f64, f64)],
    weight: usize,
) -> Vec<(f64, f64)> {
    let mut points: Vec<(f64, f64)> = report
        .candidates
        .iter()
        .flat_map(|c| c.path_rad.iter().map(|q| map(q)))
        .collect();
    for p in extra {
        points.extend(std::iter::repeat_n(*p, weight));
    }
    points
}

fn legend_entry(chart: &mut Chart<'_, '_>, label: String, style: ShapeStyle) -> DrawResult {
    chart
        .draw_series(std::iter::empty::<PathElement<(f64, f64)>>())?
        .label(label)
        .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 24, y)], style));
    Ok(())
}

fn workspace_panel(
    area: &DrawingArea<BitMapBackend<'_>, plotters::coord::Shift>,
    arm: &PlanarArm,
    report: &SampleReport,
) -> DrawResult {
    let area = area.titled("workspace", (FONT, 18))?;
    // Equal axes: the half-extents follow the plotting area's aspect ratio.
    let base = arm.base_m();
    let reach = arm.max_reach_m() + 0.08;
    let (w, h) = plot_pixels(&area);
    let (hx, hy) = if w >= h {
        (reach * w / h, reach)
    } else {
        (reach, reach * h / w)
    };
    let (x_range, y_range) = ((base[0] - hx, base[0] + hx), (base[1] - hy, base[1] + hy));
    let mut chart = chart(&area, x_range, y_range, "x (m)", "y (m)")?;

    let ring = RGBColor(185, 185, 185).stroke_width(1);
    chart.draw_series(std::iter::once(PathElement::new(
        circle_points(base, arm.max_reach_m()),
        ring,
    )))?;
    if arm.min_reach_m() > 1e-6 {
        chart.draw_series(std::iter::once(PathElement::new(
            circle_points(base, arm.min_reach_m()),
            ring,
        )))?;
    }
    for obstacle in &report.scene.obstacles {
        let outline = circle_points(obstacle.center_m, obstacle.radius_m);
        chart.draw_series(std::iter::once(Polygon::new(
            outline.clone(),
            OBSTACLE.mix(0.45).filled(),
        )))?;
        chart.draw_series(std::iter::once(PathElement::new(
            outline,
            OBSTACLE.stroke_width(2),
        )))?;
    }

    let ee = |q: &[f64]| {
        let p = arm.end_effector(q);
        (p[0], p[1])
    };
    draw_candidates(&mut chart, report, &ee)?;

    // The arm at the end of the chosen path, then at the start (thick), then the goal.
    if let Some(chosen) = report.chosen.and_then(|i| report.candidates.get(i)) {
        if let Some(last) = chosen.path_rad.last() {
            let points: Vec<(f64, f64)> = arm
                .joint_points(last)
                .iter()
                .map(|p| (p[0], p[1]))
                .collect();
            let style = colour(chosen.mode.unwrap_or(0)).mix(0.6).stroke_width(5);
            chart.draw_series(std::iter::once(PathElement::new(points, style)))?;
        }
    }
    let start: Vec<(f64, f64)> = arm
        .joint_points(&report.scene.start_rad)
        .iter()
        .map(|p| (p[0], p[1]))
        .collect();
    chart.draw_series(std::iter::once(PathElement::new(
        start.clone(),
        ARM.stroke_width(9),
    )))?;
    chart.draw_series(start.iter().map(|p| Circle::new(*p, 6, WHITE.filled())))?;
    chart.draw_series(
        start
            .iter()
            .map(|p| Circle::new(*p, 6, ARM.stroke_width(2))),
    )?;
    let goal = (report.scene.goal_m[0], report.scene.goal_m[1]);
    chart.draw_series(std::iter::once(Cross::new(goal, 9, BLACK.stroke_width(3))))?;

    for mode in &report.modes {
        let rejected = mode.assigned_invalid.len();
        let labels = label_counts(report.candidates_of(Some(mode.id)).filter(|c| c.valid));
        let text = format!(
            "mode {}: {} valid + {rejected} rejected; {labels}",
            mode.id, mode.mass
        );
        legend_entry(&mut chart, text, colour(mode.id).stroke_width(3))?;
    }
    let unassigned = report.candidates_of(None).count();
    if unassigned > 0 {
        let text = format!("{unassigned} rejected, no mode near");
        legend_entry(&mut chart, text, NO_MODE.stroke_width(2))?;
    }
    if let Some(i) = report.chosen {
        legend_entry(&mut chart, format!("chosen #{i}"), BLACK.stroke_width(5))?;
    }
    legend_entry(&mut chart, "arm at start".into(), ARM.stroke_width(7))?;
    let mut landmarks = start.clone();
    landmarks.push(goal);
    landmarks.extend(
        report
            .scene
            .obstacles
            .iter()
            .map(|o| (o.center_m[0], o.center_m[1])),
    );
    let crowd = crowded_points(report, &ee, &landmarks, report.candidates.len());
    chart
        .configure_series_labels()
        .position(legend_corner(&crowd, x_range, y_range))
        .background_style(WHITE.mix(0.85))
        .border_style(RGBColor(160, 160, 160))
        .label_font((FONT, 15))
        .draw()?;
    Ok(())
}

fn cspace_panel(
    area: &DrawingArea<BitMapBackend<'_>, plotters::coord::Shift>,
    arm: &PlanarArm,
    report: &SampleReport,
) -> DrawResult {
    let area = area.titled("configuration space", (FONT, 18))?;
    let (lower, upper) = (arm.lower_limits_rad(), arm.upper_limits_rad());
    let names = arm.joint_names();
    let (Some(&x0), Some(&x1), Some(&y0), Some(&y1)) =
        (lower.first(), upper.first(), lower.get(1), upper.get(1))
    else {
        return Err("the configuration-space panel needs at least 2 joints".into());
    };
    let pad = 0.15;
    let (x_range, y_range) = ((x0 - pad, x1 + pad), (y0 - pad, y1 + pad));
    let mut chart = chart(
        &area,
        x_range,
        y_range,
        &format!("{} (rad)", names.first().map_or("joint 0", String::as_str)),
        &format!("{} (rad)", names.get(1).map_or("joint 1", String::as_str)),
    )?;

    // Configurations in collision (joints beyond the first two at their start values).
    let (dx, dy) = (
        (x1 - x0) / CSPACE_GRID as f64,
        (y1 - y0) / CSPACE_GRID as f64,
    );
    let mut q = report.scene.start_rad.clone();
    if q.len() != arm.dof() {
        return Err(format!(
            "the scene's start has {} joints, the arm {}",
            q.len(),
            arm.dof()
        )
        .into());
    }
    let mut cells = Vec::new();
    for i in 0..CSPACE_GRID {
        for j in 0..CSPACE_GRID {
            let (a, b) = (x0 + dx * i as f64, y0 + dy * j as f64);
            q[0] = a + 0.5 * dx;
            q[1] = b + 0.5 * dy;
            if arm.collision(&q, &report.scene.obstacles).is_some() {
                cells.push([(a, b), (a + dx, b + dy)]);
            }
        }
    }
    chart
        .draw_series(
            cells
                .into_iter()
                .map(|c| Rectangle::new(c, COLLISION.filled())),
        )?
        .label("in collision")
        .legend(|(x, y)| Rectangle::new([(x, y - 6), (x + 24, y + 6)], COLLISION.filled()));
    chart
        .draw_series(std::iter::once(Rectangle::new(
            [(x0, y0), (x1, y1)],
            BLACK.stroke_width(2),
        )))?
        .label("joint limits")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 24, y)], BLACK.stroke_width(2)));

    let joints = |q: &[f64]| {
        (
            q.first().copied().unwrap_or(0.0),
            q.get(1).copied().unwrap_or(0.0),
        )
    };
    draw_candidates(&mut chart, report, &joints)?;

    let start = joints(&report.scene.start_rad);
    chart
        .draw_series(std::iter::once(Circle::new(start, 7, ARM.filled())))?
        .label("start")
        .legend(|(x, y)| Circle::new((x + 12, y), 6, ARM.filled()));
    let goals: Vec<(f64, f64)> = arm
        .ik_all(report.scene.goal_m)
        .map(|all| {
            all.iter()
                .map(|s| (s.positions_rad[0], s.positions_rad[1]))
                .collect()
        })
        .unwrap_or_default();
    if !goals.is_empty() {
        chart
            .draw_series(
                goals
                    .iter()
                    .map(|p| Cross::new(*p, 9, BLACK.stroke_width(3))),
            )?
            .label("goal (IK solutions)")
            .legend(|(x, y)| Cross::new((x + 12, y), 6, BLACK.stroke_width(2)));
    }
    let mut landmarks = goals;
    landmarks.push(start);
    let crowd = crowded_points(report, &joints, &landmarks, report.candidates.len());
    chart
        .configure_series_labels()
        .position(legend_corner(&crowd, x_range, y_range))
        .background_style(WHITE.mix(0.85))
        .border_style(RGBColor(160, 160, 160))
        .label_font((FONT, 15))
        .draw()?;
    Ok(())
}
