//! `dplan robot show`: the arm in one configuration, its link frames joined base to tip and its
//! collision spheres, projected on three planes (top x-y, front x-z, side y-z).

use std::path::Path;

use nalgebra::Vector3;
use plotters::prelude::*;

use crate::plot::{colour, init_fonts, FONT};
use crate::robot::{Frame, Robot};
use crate::{Error, Result};

/// Draws `robot` at `q` into `png`.
pub fn draw(robot: &Robot, q: &[f64], png: &Path) -> Result<()> {
    init_fonts();
    let mut frames = robot.frames_scratch();
    robot.body_frames(q, &mut frames);
    let mut links = vec![Frame::IDENTITY; robot.links.len()];
    robot.link_frames(&frames, &mut links);
    let mut centers = vec![Vector3::zeros(); robot.spheres.len()];
    robot.sphere_centers(&frames, &mut centers);
    // The chain: the base and every body origin, then the tip.
    let mut chain: Vec<Vector3<f64>> = frames.iter().map(|f| f.translation).collect();
    chain.push(robot.tip_frame(&frames).translation);
    let mut lo = Vector3::repeat(f64::INFINITY);
    let mut hi = Vector3::repeat(f64::NEG_INFINITY);
    for p in &chain {
        lo = lo.inf(p);
        hi = hi.sup(p);
    }
    for (c, s) in centers.iter().zip(&robot.spheres) {
        lo = lo.inf(&(c - Vector3::repeat(s.radius)));
        hi = hi.sup(&(c + Vector3::repeat(s.radius)));
    }
    let half = ((hi - lo).max() / 2.0 + 0.05).max(0.1);
    let mid = (lo + hi) / 2.0;
    if let Some(parent) = png.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
    }
    let plot_err = |e: &dyn std::fmt::Display| {
        Error::Invalid(format!("{}: drawing failed: {e}", png.display()))
    };
    let root = BitMapBackend::new(png, (1500, 540)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| plot_err(&e))?;
    let title = format!(
        "{} ({} -> {}), q = [{}]",
        robot.name,
        robot.base_link,
        robot.tip_link,
        q.iter()
            .map(|v| format!("{v:.3}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let root = root
        .titled(&title, (FONT, 18).into_font())
        .map_err(|e| plot_err(&e))?;
    let panels = root.split_evenly((1, 3));
    let views = [
        ("top (x, y)", 0usize, 1usize),
        ("front (x, z)", 0, 2),
        ("side (y, z)", 1, 2),
    ];
    for (panel, (name, a, b)) in panels.iter().zip(views) {
        let axis = ["x", "y", "z"];
        let mut chart = ChartBuilder::on(panel)
            .caption(name, (FONT, 16).into_font())
            .margin(10)
            .x_label_area_size(30)
            .y_label_area_size(40)
            .build_cartesian_2d(mid[a] - half..mid[a] + half, mid[b] - half..mid[b] + half)
            .map_err(|e| plot_err(&e))?;
        chart
            .configure_mesh()
            .x_desc(format!("{} (m)", axis[a]))
            .y_desc(format!("{} (m)", axis[b]))
            .label_style((FONT, 12).into_font())
            .draw()
            .map_err(|e| plot_err(&e))?;
        // Pixels per metre, for sphere radii.
        let (px_w, _) = panel.dim_in_pixel();
        let scale = (px_w as f64 - 60.0) / (2.0 * half);
        for (c, s) in centers.iter().zip(&robot.spheres) {
            let style = colour(robot.links[s.link].body).mix(0.35).filled();
            chart
                .draw_series(std::iter::once(Circle::new(
                    (c[a], c[b]),
                    (s.radius * scale).max(1.0) as i32,
                    style,
                )))
                .map_err(|e| plot_err(&e))?;
        }
        chart
            .draw_series(LineSeries::new(
                chain.iter().map(|p| (p[a], p[b])),
                BLACK.stroke_width(3),
            ))
            .map_err(|e| plot_err(&e))?;
        chart
            .draw_series(
                chain
                    .iter()
                    .map(|p| Circle::new((p[a], p[b]), 4, BLACK.filled())),
            )
            .map_err(|e| plot_err(&e))?;
    }
    root.present().map_err(|e| plot_err(&e))?;
    Ok(())
}
