//! The report: Markdown tables (also printed by `dplan modes`) and the report page with plots.

use std::fmt::Write as _;
use std::path::Path;

use super::data::{DatasetKind, Points};
use super::jobs::sweep_mixture;
use super::plots::{histograms_1d, line_plot, scatter_2d, score_histograms, ScorePanel, Series};
use super::run::ModesReport;
use crate::{Error, Result};

fn pct(v: f64) -> String {
    format!("{:.1}", 100.0 * v)
}

fn pct2(v: f64) -> String {
    format!("{:.2}", 100.0 * v)
}

fn opt_pct(v: Option<f64>) -> String {
    v.map_or_else(|| "n/a".into(), pct)
}

/// The result tables in Markdown (what `dplan modes` prints).
pub fn summary(report: &ModesReport) -> String {
    let mut s = String::new();
    let st = &report.settings;
    let _ = writeln!(
        s,
        "## Mode coverage ({} samples per row; 3σ rule)\n",
        st.eval_samples
    );
    s.push_str("| data set | method | modes captured | high quality % | interpolation % | other out-of-support % | mode KL |\n");
    s.push_str("|---|---|---|---|---|---|---|\n");
    for (dataset, methods) in ordered(report) {
        for (method, r) in methods {
            let m = &r.metrics;
            let _ = writeln!(
                s,
                "| {dataset} | {method} | {}/{} | {} | {} | {} | {} |",
                m.modes_captured,
                m.num_modes,
                pct(m.high_quality_fraction),
                pct(m.interpolation_fraction),
                pct(m.outlier_fraction),
                m.mode_kl
                    .map_or_else(|| "n/a".into(), |v| format!("{v:.3}"))
            );
        }
    }
    s.push_str("\n## Conditional sampling by mode id (labelled network, classifier-free guidance, DDPM)\n\n");
    s.push_str("| data set | guidance scale | samples per mode | in requested mode (3σ) % | nearest mode is requested % | worst mode % |\n");
    s.push_str("|---|---|---|---|---|---|\n");
    for (dataset, methods) in ordered(report) {
        for (_, r) in methods {
            if let Some(c) = &r.conditional {
                let a = &c.accuracy;
                let _ = writeln!(
                    s,
                    "| {dataset} | {} | {} | {} | {} | {} |",
                    c.guidance_scale,
                    a.samples_per_mode,
                    pct(a.accuracy),
                    pct(a.nearest_mode_accuracy),
                    pct(a.worst_mode_accuracy)
                );
            }
        }
    }
    let _ = writeln!(
        s,
        "\n## x̂0-variance filter (DDPM, last {} of {} steps; threshold keeps {}% of a calibration draw's in-support samples)\n",
        st.x0_variance_last_k,
        st.ddpm_steps,
        pct(st.filter_keep_in_support)
    );
    s.push_str("| data set | out of support % | flagged % | precision % | recall % | random filter: precision % / recall % | in-support kept % |\n");
    s.push_str("|---|---|---|---|---|---|---|\n");
    for (dataset, methods) in ordered(report) {
        for (_, r) in methods {
            if let Some(f) = &r.filter {
                let _ = writeln!(
                    s,
                    "| {dataset} | {} ({}) | {} | {} | {} | {} / {} | {} |",
                    pct(f.random_precision),
                    f.num_out_of_support,
                    pct(f.flagged_fraction),
                    opt_pct(f.precision),
                    opt_pct(f.recall),
                    pct(f.random_precision),
                    pct(f.flagged_fraction),
                    pct(f.in_support_kept)
                );
            }
        }
    }
    let _ = writeln!(
        s,
        "\n## Two 1-D modes (σ = 0.05): interpolation vs distance ({} training steps, {} DDPM samples)\n",
        st.sweep_train.steps, st.sweep_samples
    );
    s.push_str("| distance | distance / σ | modes captured | high quality % | interpolation % (95% CI) | other % |\n|---|---|---|---|---|---|\n");
    for p in &report.sweep_distance {
        let m = &p.metrics;
        let _ = writeln!(
            s,
            "| {} | {:.0} | {}/{} | {} | {} ({}–{}) | {} |",
            p.distance,
            p.distance / 0.05,
            m.modes_captured,
            m.num_modes,
            pct(m.high_quality_fraction),
            pct2(m.interpolation_fraction),
            pct2(p.interpolation_ci95.0),
            pct2(p.interpolation_ci95.1),
            pct(m.outlier_fraction)
        );
    }
    let _ = writeln!(
        s,
        "\n## Interpolation vs training steps (distance {})\n",
        st.steps_sweep_distance
    );
    s.push_str(
        "| training steps | high quality % | interpolation % | other % |\n|---|---|---|---|\n",
    );
    for p in &report.sweep_training_steps {
        let m = &p.metrics;
        let _ = writeln!(
            s,
            "| {} | {} | {} ({}–{}) | {} |",
            p.train_steps,
            pct(m.high_quality_fraction),
            pct2(m.interpolation_fraction),
            pct2(p.interpolation_ci95.0),
            pct2(p.interpolation_ci95.1),
            pct(m.outlier_fraction)
        );
    }
    let _ = writeln!(
        s,
        "\nTotal wall time: {:.1} s ({} logical cores, load average {} at the end)\n",
        report.total_secs,
        report.logical_cores,
        report
            .load_average_1min
            .map_or_else(|| "unknown".to_string(), |l| format!("{l:.1}"))
    );
    s
}

type Methods<'a> = Vec<(&'a str, &'a super::jobs::MethodResult)>;

/// Data sets in report order, methods in job order.
fn ordered(report: &ModesReport) -> Vec<(&'static str, Methods<'_>)> {
    report
        .datasets
        .iter()
        .map(|d| {
            let name = d.kind.name();
            let methods = d
                .methods
                .iter()
                .filter_map(|(m, _)| report.result(d.kind, m).map(|r| (m.as_str(), r)))
                .collect();
            (name, methods)
        })
        .collect()
}

/// The published GAN rows with our ring and grid rows below them.
fn published_table(report: &ModesReport) -> String {
    let mut s = String::from(
        "| source | method | ring: modes (of 8) | ring: high quality % | grid: modes (of 25) | grid: high quality % |\n|---|---|---|---|---|---|\n",
    );
    for r in &report.published_gan {
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} | {} |",
            r.source,
            r.method,
            r.ring_modes,
            r.ring_high_quality_pct,
            r.grid_modes,
            r.grid_high_quality_pct
        );
    }
    let ring = report.results.get(DatasetKind::Ring8.name());
    let grid = report.results.get(DatasetKind::Grid25.name());
    if let (Some(ring), Some(grid)) = (ring, grid) {
        for (ring_key, grid_key, label) in [
            ("gmm_k8", "gmm_k25", "GMM, K = true count"),
            ("gmm_k4", "gmm_k9", "GMM, K = 4 (ring) / 9 (grid)"),
            (
                "diffusion_ddpm",
                "diffusion_ddpm",
                "diffusion, DDPM 100 steps",
            ),
            (
                "diffusion_ddpm_filtered",
                "diffusion_ddpm_filtered",
                "diffusion, DDPM + x̂0 filter",
            ),
            (
                "diffusion_ddim_10",
                "diffusion_ddim_10",
                "diffusion, DDIM 10 steps",
            ),
            (
                "diffusion_ddim_100",
                "diffusion_ddim_100",
                "diffusion, DDIM 100 steps",
            ),
        ] {
            if let (Some(r), Some(g)) = (ring.get(ring_key), grid.get(grid_key)) {
                let _ = writeln!(
                    s,
                    "| **this run** (seed {}, 1 run) | {label} | {} | {} | {} | {} |",
                    report.settings.seed,
                    r.metrics.modes_captured,
                    pct(r.metrics.high_quality_fraction),
                    g.metrics.modes_captured,
                    pct(g.metrics.high_quality_fraction)
                );
            }
        }
    }
    s
}

/// Checks of the claims the experiments are about, computed from the numbers (no judgement).
pub fn direction_checks(report: &ModesReport) -> Vec<(String, bool)> {
    let mut checks = Vec::new();
    for kind in DatasetKind::ALL {
        let [k_true, k_small] = super::settings::ModesSettings::gmm_components(kind);
        let name = kind.name();
        if let Some(d) = report.result(kind, "diffusion_ddpm") {
            checks.push((
                format!(
                    "{name}: diffusion (DDPM) captures every mode ({}/{})",
                    d.metrics.modes_captured, d.metrics.num_modes
                ),
                d.metrics.modes_captured == d.metrics.num_modes,
            ));
            if let Some(small) = report.result(kind, &format!("gmm_k{k_small}")) {
                let (g, dm) = (&small.metrics, &d.metrics);
                checks.push((
                    format!(
                        "{name}: GMM with K = {k_small} captures fewer modes than diffusion by \
                         VEEGAN's count ({} < {})",
                        g.modes_captured, dm.modes_captured
                    ),
                    g.modes_captured < dm.modes_captured,
                ));
                checks.push((
                    format!(
                        "{name}: GMM with K = {k_small} has fewer high-quality samples than \
                         diffusion ({}% < {}%)",
                        pct(g.high_quality_fraction),
                        pct(dm.high_quality_fraction)
                    ),
                    g.high_quality_fraction < dm.high_quality_fraction,
                ));
                if let (Some(gk), Some(dk)) = (g.mode_kl, dm.mode_kl) {
                    checks.push((
                        format!(
                            "{name}: GMM with K = {k_small} spreads its high-quality samples less \
                             evenly over the modes than diffusion (mode KL {gk:.3} > {dk:.3})"
                        ),
                        gk > dk,
                    ));
                }
            }
            if let Some(full) = report.result(kind, &format!("gmm_k{k_true}")) {
                checks.push((
                    format!(
                        "{name}: GMM with K = {k_true} (the true count) captures every mode ({}/{})",
                        full.metrics.modes_captured, full.metrics.num_modes
                    ),
                    full.metrics.modes_captured == full.metrics.num_modes,
                ));
            }
        }
        for r in report
            .results
            .get(name)
            .into_iter()
            .flat_map(|m| m.values())
        {
            if let Some(c) = &r.conditional {
                checks.push((
                    format!(
                        "{name}: conditional accuracy at guidance scale {} is at least 95% ({}%)",
                        c.guidance_scale,
                        pct(c.accuracy.accuracy)
                    ),
                    c.accuracy.accuracy >= 0.95,
                ));
            }
        }
        if let Some(d) = report.result(kind, "diffusion_ddpm") {
            if let Some(f) = &d.filter {
                if let Some(recall) = f.recall {
                    checks.push((
                        format!(
                            "{name}: the x̂0 filter's recall beats a random filter's ({}% > {}%)",
                            pct(recall),
                            pct(f.flagged_fraction)
                        ),
                        recall > f.flagged_fraction,
                    ));
                }
            }
        }
    }
    let sweep = &report.sweep_distance;
    if let (Some(first), Some(last)) = (sweep.first(), sweep.last()) {
        checks.push((
            format!(
                "interpolation falls from the closest to the farthest modes ({}% at {} -> {}% at {})",
                pct(first.metrics.interpolation_fraction),
                first.distance,
                pct(last.metrics.interpolation_fraction),
                last.distance
            ),
            last.metrics.interpolation_fraction < first.metrics.interpolation_fraction,
        ));
        checks.push((
            format!(
                "the drop is larger than the sampling noise (95% intervals {}–{}% and {}–{}% do \
                 not overlap)",
                pct2(first.interpolation_ci95.0),
                pct2(first.interpolation_ci95.1),
                pct2(last.interpolation_ci95.0),
                pct2(last.interpolation_ci95.1)
            ),
            first.interpolation_ci95.0 > last.interpolation_ci95.1,
        ));
    }
    let steps = &report.sweep_training_steps;
    if let (Some(first), Some(last)) = (steps.first(), steps.last()) {
        checks.push((
            format!(
                "interpolation falls with training ({}% after {} steps -> {}% after {})",
                pct(first.metrics.interpolation_fraction),
                first.train_steps,
                pct(last.metrics.interpolation_fraction),
                last.train_steps
            ),
            last.metrics.interpolation_fraction < first.metrics.interpolation_fraction,
        ));
    }
    checks
}

/// Writes `README.md` and the PNGs into `dir` (created if needed).
pub fn write_report(report: &ModesReport, dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let mut figures = Vec::new();
    for d in &report.datasets {
        let mixture = d.kind.mixture();
        let train_n = 2_500.min(report.settings.train_points);
        let data = mixture.sample(
            train_n,
            &mut rand::SeedableRng::seed_from_u64(report.settings.seed),
        );
        let mut panels: Vec<(String, &Points)> =
            vec![("training data (a draw of 2,500)".into(), &data.points)];
        for s in &d.samples {
            panels.push((s.method.clone(), &s.points));
        }
        let file = format!("{}.png", d.kind.name());
        let path = dir.join(&file);
        match d.kind {
            DatasetKind::Line3 => histograms_1d(&path, &panels, &mixture, (0.5, 3.5), 240)?,
            DatasetKind::Ring8 => scatter_2d(&path, &panels, &mixture, 1.5)?,
            DatasetKind::Grid25 => scatter_2d(&path, &panels, &mixture, 5.0)?,
        }
        figures.push((d.kind.name(), file));
    }
    let score_panels: Vec<ScorePanel<'_>> = report
        .datasets
        .iter()
        .map(|d| ScorePanel {
            title: format!("{}: DDPM samples", d.kind.name()),
            scores: &d.filter_scores,
            threshold: d.filter_threshold,
        })
        .collect();
    score_histograms(&dir.join("filter.png"), &score_panels)?;

    let sweep_series = vec![
        Series {
            label: "interpolation (between the modes, outside 3σ)".into(),
            points: report
                .sweep_distance
                .iter()
                .map(|p| (p.distance, 100.0 * p.metrics.interpolation_fraction))
                .collect(),
            errors: report
                .sweep_distance
                .iter()
                .map(|p| {
                    (
                        100.0 * p.interpolation_ci95.0,
                        100.0 * p.interpolation_ci95.1,
                    )
                })
                .collect(),
        },
        Series {
            label: "other out-of-support".into(),
            points: report
                .sweep_distance
                .iter()
                .map(|p| (p.distance, 100.0 * p.metrics.outlier_fraction))
                .collect(),
            errors: Vec::new(),
        },
    ];
    line_plot(
        &dir.join("sweep_distance.png"),
        "Two 1-D modes, σ = 0.05: samples between the modes (95% CI)",
        ("distance between the modes", "% of samples"),
        &sweep_series,
        false,
    )?;
    if !report.sweep_training_steps.is_empty() {
        let steps_series = vec![Series {
            label: format!(
                "interpolation, distance {}",
                report.settings.steps_sweep_distance
            ),
            points: report
                .sweep_training_steps
                .iter()
                .map(|p| {
                    (
                        p.train_steps as f64,
                        100.0 * p.metrics.interpolation_fraction,
                    )
                })
                .collect(),
            errors: report
                .sweep_training_steps
                .iter()
                .map(|p| {
                    (
                        100.0 * p.interpolation_ci95.0,
                        100.0 * p.interpolation_ci95.1,
                    )
                })
                .collect(),
        }];
        line_plot(
            &dir.join("sweep_steps.png"),
            "Samples between two 1-D modes vs training steps (95% CI)",
            ("training steps", "% of samples"),
            &steps_series,
            true,
        )?;
    }
    let max_d = report
        .sweep_distance
        .iter()
        .map(|p| p.distance)
        .fold(1.0, f64::max);
    let half = max_d / 2.0 + 0.3;
    for s in &report.sweeps {
        let mixture = sweep_mixture(s.distance);
        histograms_1d(
            &dir.join(format!("sweep_d{}.png", s.distance)),
            &[(format!("distance {}", s.distance), &s.samples)],
            &mixture,
            (-half, half),
            240,
        )?;
    }

    let text = page(report, &figures);
    let path = dir.join("README.md");
    std::fs::write(&path, text).map_err(|e| Error::io(&path, e))
}

fn page(report: &ModesReport, figures: &[(&str, String)]) -> String {
    let st = &report.settings;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "# Modes, GMM collapse and mode interpolation (`dplan modes{}`)\n",
        if st.quick { " --quick" } else { "" }
    );
    s.push_str(include_str!("report_intro.md"));
    let _ = writeln!(
        s,
        "\nThis run: seed {}, {} training points per data set, {} / {} training steps (main / sweep), \
         batch {}, AdamW lr {}, width {}, {} blocks; schedule `{}` with {} timesteps, DDPM {} steps, \
         DDIM (steps, eta) {:?}; wall time {:.0} s on {} worker threads, {} logical cores, \
         1-minute load average {} at the end of the run.\n",
        st.seed,
        st.train_points,
        st.train.steps,
        st.sweep_train.steps,
        st.train.batch_size,
        st.train.learning_rate,
        st.model_width,
        st.model_hidden_layers,
        st.scheduler.beta_schedule,
        st.scheduler.num_train_timesteps,
        st.ddpm_steps,
        st.ddim_variants,
        report.total_secs,
        st.threads,
        report.logical_cores,
        report
            .load_average_1min
            .map_or_else(|| "unknown".to_string(), |l| format!("{l:.1}"))
    );
    s.push_str("## Direction checks (computed from the numbers below)\n\n");
    for (text, ok) in direction_checks(report) {
        let _ = writeln!(s, "- {} {text}", if ok { "yes:" } else { "**NO**:" });
    }
    s.push('\n');
    s.push_str(&summary(report));
    s.push_str("\n## Published GAN results on the same ring and grid (reference only)\n\n");
    s.push_str(&published_table(report));
    s.push_str("\n## Plots\n\n");
    for (name, file) in figures {
        let _ = writeln!(s, "### {name}\n\n![{name}]({file})\n");
    }
    s.push_str(
        "### x̂0 variance of the DDPM samples, in and out of support\n\n![filter](filter.png)\n\n",
    );
    s.push_str("### Distance sweep\n\n![sweep](sweep_distance.png)\n\n");
    for p in &report.sweep_distance {
        let _ = writeln!(s, "![distance {0}](sweep_d{0}.png)", p.distance);
    }
    if !report.sweep_training_steps.is_empty() {
        s.push_str("\n### Training steps\n\n![steps](sweep_steps.png)\n");
    }
    s.push_str(
        "\n## Training\n\n| data set | final loss | training s | job s |\n|---|---|---|---|\n",
    );
    for (name, t) in &report.training {
        let _ = writeln!(
            s,
            "| {name} | {:.4} | {:.1} | {:.1} |",
            t.final_loss, t.train_secs, t.job_secs
        );
    }
    s
}
