//! The PNG plots of the demo report: the end-effector path in the workspace with the goals and
//! the obstacles over time, the joint positions against time with the goal times, and the
//! chosen mode against time.
//!
//! Drawn with plotters' bitmap backend and the crate's embedded font (see `crate::plot`).

use std::path::Path;

use plotters::prelude::*;

use super::trace::DemoTrace;
use crate::plot::{colour, init_fonts, FONT};
use crate::robot::PlanarArm;
use crate::{Error, Result};

type DrawResult<T = ()> = std::result::Result<T, Box<dyn std::error::Error>>;

const ARM_START: RGBColor = RGBColor(170, 170, 170);
const ARM_END: RGBColor = RGBColor(40, 40, 40);
const GOAL_LINE: RGBColor = RGBColor(120, 120, 120);
const REACHED: RGBColor = RGBColor(44, 160, 44);

/// Viridis at five stops, for "colour = time".
const TIME_STOPS: [(u8, u8, u8); 5] = [
    (68, 1, 84),
    (59, 82, 139),
    (33, 145, 140),
    (94, 201, 98),
    (253, 231, 37),
];

fn wrap(path: &Path, result: DrawResult) -> Result<()> {
    result.map_err(|e| Error::Invalid(format!("drawing {}: {e}", path.display())))
}

/// The colour of time fraction `f` in [0, 1] (clamped).
pub fn time_colour(f: f64) -> RGBColor {
    let f = if f.is_finite() {
        f.clamp(0.0, 1.0)
    } else {
        0.0
    };
    let x = f * (TIME_STOPS.len() - 1) as f64;
    let i = (x.floor() as usize).min(TIME_STOPS.len() - 2);
    let u = x - i as f64;
    let (a, b) = (TIME_STOPS[i], TIME_STOPS[i + 1]);
    let mix = |p: u8, q: u8| (f64::from(p) + u * (f64::from(q) - f64::from(p))).round() as u8;
    RGBColor(mix(a.0, b.0), mix(a.1, b.1), mix(a.2, b.2))
}

fn circle_points(center: [f64; 2], radius: f64) -> Vec<(f64, f64)> {
    (0..=72)
        .map(|i| {
            let a = std::f64::consts::TAU * f64::from(i) / 72.0;
            (center[0] + radius * a.cos(), center[1] + radius * a.sin())
        })
        .collect()
}

/// The time axis: 0 to the end of the scenario (at least a second).
fn time_range(trace: &DemoTrace) -> f64 {
    let last = trace.joint_states.t_s.last().copied().unwrap_or(0.0);
    trace.duration_s.max(last).max(1.0)
}

/// Draws the workspace plot to the PNG `path`.
pub fn draw_workspace(path: &Path, trace: &DemoTrace, arm: &PlanarArm) -> Result<()> {
    init_fonts();
    wrap(path, workspace(path, trace, arm))
}

fn workspace(path: &Path, trace: &DemoTrace, arm: &PlanarArm) -> DrawResult {
    let root = BitMapBackend::new(path, (900, 980)).into_drawing_area();
    root.fill(&WHITE)?;
    let (main, bar) = root.split_vertically(900);
    let t_max = time_range(trace);
    let base = arm.base_m();
    let reach = arm.max_reach_m() + 0.08;
    let mut chart = ChartBuilder::on(&main)
        .caption(
            "end-effector path, goals and obstacles (colour = time)",
            (FONT, 20),
        )
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(50)
        .build_cartesian_2d(
            (base[0] - reach)..(base[0] + reach),
            (base[1] - reach)..(base[1] + reach),
        )?;
    chart
        .configure_mesh()
        .x_desc("x (m)")
        .y_desc("y (m)")
        .label_style((FONT, 14))
        .axis_desc_style((FONT, 15))
        .light_line_style(RGBColor(242, 242, 242))
        .draw()?;
    chart.draw_series(std::iter::once(PathElement::new(
        circle_points(base, arm.max_reach_m()),
        RGBColor(200, 200, 200).stroke_width(1),
    )))?;
    // Obstacles: every set sent, faint fill and an outline in the colour of its time; the
    // last set strongest.
    let sets = trace.obstacles.len();
    for (k, event) in trace.obstacles.iter().enumerate() {
        let c = time_colour(event.t_s / t_max);
        let last = k + 1 == sets;
        for circle in &event.circles {
            let points = circle_points(circle.center_m, circle.radius_m);
            let fill = if last { 0.35 } else { 0.08 };
            chart.draw_series(std::iter::once(Polygon::new(
                points.clone(),
                c.mix(fill).filled(),
            )))?;
            let width = if last { 2 } else { 1 };
            chart.draw_series(std::iter::once(PathElement::new(
                points,
                c.mix(0.8).stroke_width(width),
            )))?;
        }
    }
    let series = &trace.joint_states;
    let arm_line = |q: &[f64]| -> Vec<(f64, f64)> {
        arm.joint_points(q).iter().map(|p| (p[0], p[1])).collect()
    };
    if let Some(first) = series.positions_rad.first() {
        chart.draw_series(std::iter::once(PathElement::new(
            arm_line(first),
            ARM_START.stroke_width(6),
        )))?;
    }
    if let Some(last) = series.positions_rad.last() {
        chart.draw_series(std::iter::once(PathElement::new(
            arm_line(last),
            ARM_END.mix(0.8).stroke_width(4),
        )))?;
    }
    let ee: Vec<(f64, (f64, f64))> = series
        .t_s
        .iter()
        .zip(&series.positions_rad)
        .map(|(t, q)| {
            let p = arm.end_effector(q);
            (*t, (p[0], p[1]))
        })
        .collect();
    chart.draw_series(ee.windows(2).map(|w| {
        PathElement::new(
            vec![w[0].1, w[1].1],
            time_colour(w[0].0 / t_max).stroke_width(3),
        )
    }))?;
    for goal in &trace.goals {
        let p = (goal.goal_m[0], goal.goal_m[1]);
        let c = time_colour(goal.t_s / t_max);
        chart.draw_series(std::iter::once(Cross::new(p, 9, BLACK.stroke_width(4))))?;
        chart.draw_series(std::iter::once(Cross::new(p, 8, c.stroke_width(2))))?;
        let verdict = if goal.reached_t_s.is_some() {
            ""
        } else {
            " (missed)"
        };
        chart.draw_series(std::iter::once(Text::new(
            format!("{}{verdict}", goal.name),
            (p.0 + 0.02, p.1 + 0.02),
            (FONT, 16).into_font().color(&BLACK),
        )))?;
    }
    time_bar(&bar, t_max)?;
    root.present()?;
    Ok(())
}

/// A horizontal colour bar for time, 0 to `t_max` seconds.
fn time_bar(
    area: &DrawingArea<BitMapBackend<'_>, plotters::coord::Shift>,
    t_max: f64,
) -> DrawResult {
    let (w, _) = area.dim_in_pixel();
    let (left, right, top, height) = (70i32, w as i32 - 40, 10i32, 22i32);
    let width = (right - left).max(1);
    for x in 0..width {
        let c = time_colour(f64::from(x) / f64::from(width));
        area.draw(&Rectangle::new(
            [(left + x, top), (left + x + 1, top + height)],
            c.filled(),
        ))?;
    }
    let style = (FONT, 14).into_font().color(&BLACK);
    area.draw(&Text::new("time", (12, top + 3), style.clone()))?;
    let ticks = 6;
    for k in 0..=ticks {
        let f = f64::from(k) / f64::from(ticks);
        let x = left + (f * f64::from(width)) as i32;
        area.draw(&PathElement::new(
            vec![(x, top + height), (x, top + height + 5)],
            BLACK.stroke_width(1),
        ))?;
        area.draw(&Text::new(
            format!("{:.0} s", f * t_max),
            (x - 10, top + height + 8),
            style.clone(),
        ))?;
    }
    Ok(())
}

/// Draws the joint positions against time, with the goal times, to the PNG `path`.
pub fn draw_joints(path: &Path, trace: &DemoTrace) -> Result<()> {
    init_fonts();
    wrap(path, joints(path, trace))
}

fn joints(path: &Path, trace: &DemoTrace) -> DrawResult {
    let root = BitMapBackend::new(path, (1100, 520)).into_drawing_area();
    root.fill(&WHITE)?;
    let t_max = time_range(trace);
    let series = &trace.joint_states;
    let (lo, hi) = series
        .positions_rad
        .iter()
        .flatten()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
            (lo.min(*v), hi.max(*v))
        });
    let (lo, hi) = if lo.is_finite() && hi.is_finite() {
        let pad = 0.1 * (hi - lo).max(0.5);
        (lo - pad, hi + 2.0 * pad)
    } else {
        (-1.0, 1.0)
    };
    let mut chart = ChartBuilder::on(&root)
        .caption(
            "joint positions (dashed: goal sent, green: goal reached)",
            (FONT, 20),
        )
        .margin(14)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(0.0..t_max, lo..hi)?;
    chart
        .configure_mesh()
        .x_desc("time (s)")
        .y_desc("position (rad)")
        .label_style((FONT, 14))
        .axis_desc_style((FONT, 15))
        .light_line_style(RGBColor(242, 242, 242))
        .draw()?;
    for goal in &trace.goals {
        chart.draw_series(std::iter::once(plotters::element::DashedPathElement::new(
            vec![(goal.t_s, lo), (goal.t_s, hi)],
            5,
            4,
            GOAL_LINE.stroke_width(1),
        )))?;
        chart.draw_series(std::iter::once(Text::new(
            goal.name.clone(),
            (goal.t_s, hi),
            (FONT, 14).into_font().color(&BLACK),
        )))?;
        if let Some(t) = goal.reached_t_s {
            chart.draw_series(std::iter::once(PathElement::new(
                vec![(t, lo), (t, hi)],
                REACHED.mix(0.6).stroke_width(2),
            )))?;
        }
    }
    for (j, name) in series.names.iter().enumerate() {
        let points = series
            .t_s
            .iter()
            .zip(&series.positions_rad)
            .filter_map(|(t, q)| q.get(j).map(|v| (*t, *v)));
        let c = colour(j);
        chart
            .draw_series(LineSeries::new(points, c.stroke_width(2)))?
            .label(name.clone())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], c.stroke_width(3)));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerRight)
        .background_style(WHITE.mix(0.85))
        .border_style(RGBColor(160, 160, 160))
        .label_font((FONT, 15))
        .draw()?;
    root.present()?;
    Ok(())
}

/// The rows of the mode plot: the model's mode names, then labels the node reported that are
/// not among them, then `none`.
pub fn mode_rows(trace: &DemoTrace) -> Vec<String> {
    let mut rows = trace.mode_names.clone();
    let reported = trace
        .planning
        .iter()
        .filter_map(|s| s.chosen_mode_label.clone())
        .chain(trace.mode_requests.iter().map(|m| m.mode.clone()));
    for label in reported {
        if label != "none" && label != "any" && !label.is_empty() && !rows.contains(&label) {
            rows.push(label);
        }
    }
    rows.push("none".to_string());
    rows
}

/// Draws the chosen mode (and the requested one) against time to the PNG `path`.
pub fn draw_modes(path: &Path, trace: &DemoTrace) -> Result<()> {
    init_fonts();
    wrap(path, modes(path, trace))
}

fn modes(path: &Path, trace: &DemoTrace) -> DrawResult {
    let rows = mode_rows(trace);
    let height = 160 + 50 * rows.len() as u32;
    let root = BitMapBackend::new(path, (1100, height)).into_drawing_area();
    root.fill(&WHITE)?;
    let t_max = time_range(trace);
    let n = rows.len();
    let row_of = |label: Option<&str>| -> usize {
        let label = label.filter(|l| !l.is_empty()).unwrap_or("none");
        rows.iter().position(|r| r == label).unwrap_or(n - 1)
    };
    let names = rows.clone();
    let mut chart = ChartBuilder::on(&root)
        .caption(
            "chosen mode per plan (dots) and requested mode (band)",
            (FONT, 20),
        )
        .margin(14)
        .x_label_area_size(40)
        .y_label_area_size(150)
        .build_cartesian_2d(0.0..t_max, -0.6..(n as f64 - 0.4))?;
    chart
        .configure_mesh()
        .disable_y_mesh()
        .y_labels(n + 1)
        .y_label_formatter(&|y| {
            let i = y.round();
            if (y - i).abs() < 1e-6 && i >= 0.0 {
                names.get(i as usize).cloned().unwrap_or_default()
            } else {
                String::new()
            }
        })
        .x_desc("time (s)")
        .label_style((FONT, 14))
        .axis_desc_style((FONT, 15))
        .light_line_style(RGBColor(242, 242, 242))
        .draw()?;
    // Requested mode: a band on its row from the request to the next one.
    for (k, request) in trace.mode_requests.iter().enumerate() {
        if request.mode == "any" {
            continue;
        }
        let end = trace
            .mode_requests
            .get(k + 1)
            .map_or(t_max, |next| next.t_s);
        let y = row_of(Some(&request.mode)) as f64;
        chart.draw_series(std::iter::once(Rectangle::new(
            [(request.t_s, y - 0.3), (end, y + 0.3)],
            RGBColor(255, 200, 120).mix(0.5).filled(),
        )))?;
    }
    for goal in &trace.goals {
        chart.draw_series(std::iter::once(plotters::element::DashedPathElement::new(
            vec![(goal.t_s, -0.6), (goal.t_s, n as f64 - 0.4)],
            5,
            4,
            GOAL_LINE.stroke_width(1),
        )))?;
        chart.draw_series(std::iter::once(Text::new(
            goal.name.clone(),
            (goal.t_s, n as f64 - 0.45),
            (FONT, 13).into_font().color(&BLACK),
        )))?;
    }
    let mut last_calls = 0;
    let mut dots = Vec::new();
    for sample in &trace.planning {
        if sample.calls > last_calls {
            last_calls = sample.calls;
            let row = row_of(sample.chosen_mode_label.as_deref());
            dots.push((sample.t_s, row));
        }
    }
    chart.draw_series(dots.into_iter().map(|(t, row)| {
        let c = if row + 1 == n {
            RGBColor(150, 150, 150)
        } else {
            colour(row)
        };
        Circle::new((t, row as f64), 5, c.filled())
    }))?;
    root.present()?;
    Ok(())
}
