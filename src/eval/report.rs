//! The text summary and the Markdown report (`README.md` with PNG plots) of `dplan eval`.

use std::fmt::Write as _;
use std::path::Path;

use super::figures::{draw_gallery, draw_loss_curve, draw_mode_histogram};
use super::metrics::ColumnMetrics;
use super::oracle::{ORACLE_GOAL_TOLERANCE_M, ORACLE_START_TOLERANCE_RAD, PLAN_ORACLE_DT_SECS};
use super::{read_loss_curve, EvalReport, RowReport, KL_SMOOTHING};
use crate::robot::PlanarArm;
use crate::{Error, Result};

fn number(value: Option<f64>) -> String {
    value.map_or_else(|| "n/a".to_string(), |v| format!("{v:.3}"))
}

fn ms(value: Option<f64>) -> String {
    value.map_or_else(|| "n/a".to_string(), |v| format!("{v:.1}"))
}

fn mm(value: Option<f64>) -> String {
    value.map_or_else(|| "n/a".to_string(), |v| format!("{:.1}", v * 1e3))
}

/// The column table: one line per metric, `raw | pipeline` for each row.
fn column_lines(report: &EvalReport) -> (Vec<String>, Vec<Vec<String>>) {
    let header: Vec<String> = report.rows.iter().map(|r| r.name.clone()).collect();
    type Getter = fn(&ColumnMetrics) -> String;
    let metrics: [(&str, Getter); 8] = [
        ("valid rate", |c| format!("{:.3}", c.valid_rate)),
        ("collision rate", |c| number(c.collision_rate)),
        ("goal error p50 / p90 (mm)", |c| {
            format!("{} / {}", mm(c.goal_error_m_p50), mm(c.goal_error_m_p90))
        }),
        ("mode coverage (all modes)", |c| number(c.mode_coverage)),
        ("per-scene coverage, both routes", |c| {
            number(c.per_scene_coverage_both_routes)
        }),
        ("per-scene KL mean", |c| number(c.mode_kl_mean)),
        ("per-scene KL p90", |c| number(c.mode_kl_p90)),
        ("request accuracy", |c| number(c.request_accuracy)),
    ];
    let lines = metrics
        .iter()
        .map(|(name, get)| {
            let mut line = vec![name.to_string()];
            for row in &report.rows {
                line.push(get(&row.metrics.raw));
                line.push(get(&row.metrics.pipeline));
            }
            line
        })
        .collect();
    (header, lines)
}

/// The executed-plan table: one line per metric, one column per row.
fn executed_lines(report: &EvalReport) -> Vec<Vec<String>> {
    type Getter = fn(&RowReport) -> String;
    let metrics: [(&str, Getter); 9] = [
        ("scenes", |r| r.metrics.scenes.to_string()),
        ("success rate (target >= 0.98)", |r| {
            format!("{:.3}", r.metrics.executed.success_rate)
        }),
        ("chosen collisions (target 0)", |r| {
            r.metrics.executed.chosen_collisions.to_string()
        }),
        ("no plan / limit violations / goal misses", |r| {
            let e = &r.metrics.executed;
            format!("{} / {} / {}", e.no_plan, e.limit_violations, e.goal_misses)
        }),
        ("time ratio p50 (target <= 1.5) / p90", |r| {
            let e = &r.metrics.executed;
            format!(
                "{} / {}",
                number(e.time_ratio_p50),
                number(e.time_ratio_p90)
            )
        }),
        ("length ratio p50 / p90", |r| {
            let e = &r.metrics.executed;
            format!(
                "{} / {}",
                number(e.length_ratio_p50),
                number(e.length_ratio_p90)
            )
        }),
        ("plan duration p50 (s)", |r| {
            number(r.metrics.executed.duration_secs_p50)
        }),
        ("max velocity / accel. ratio; jerk p50 (rad/s³)", |r| {
            let e = &r.metrics.executed;
            format!(
                "{} / {}; {}",
                number(e.max_velocity_ratio),
                number(e.max_acceleration_ratio),
                ms(e.max_jerk_rad_s3_p50)
            )
        }),
        ("filter recall / keep rate (oracle truth)", |r| {
            let f = &r.metrics.filter;
            format!("{} / {}", number(f.recall), number(f.keep_rate))
        }),
    ];
    metrics
        .iter()
        .map(|(name, get)| {
            let mut line = vec![name.to_string()];
            line.extend(report.rows.iter().map(get));
            line
        })
        .collect()
}

/// A text summary: both tables and the x̂0 study.
pub(super) fn summary(report: &EvalReport) -> String {
    let mut text = String::new();
    let m = report.model_row();
    let _ = writeln!(
        text,
        "model {} (step {}), {} held-out scenes from seed {} ({} infeasible draws skipped; {} \
         with >= 2 expert modes, {} with both routes)",
        report.model.name,
        report.model.training_steps,
        m.scenes,
        report.seed,
        report.infeasible_scenes,
        m.multimodal_scenes,
        m.both_route_scenes
    );
    let (header, lines) = column_lines(report);
    let mut head = format!("  {:<34}", "");
    for name in &header {
        let _ = write!(head, " {:>15} {:>15}", format!("{name} raw"), "pipeline");
    }
    let _ = writeln!(text, "{head}");
    for line in lines {
        let _ = write!(text, "  {:<34}", line[0]);
        for value in &line[1..] {
            let _ = write!(text, " {value:>15}");
        }
        let _ = writeln!(text);
    }
    let mut head = format!("  {:<48}", "executed plans");
    for name in &header {
        let _ = write!(head, " {name:>15}");
    }
    let _ = writeln!(text, "{head}");
    for line in executed_lines(report) {
        let _ = write!(text, "  {:<48}", line[0]);
        for value in &line[1..] {
            let _ = write!(text, " {value:>15}");
        }
        let _ = writeln!(text);
    }
    let h = &report.hallucination;
    let _ = writeln!(
        text,
        "  x0-variance study (test half, {} candidates): {} in between ({} colliding), {} \
         collision-free in between; threshold {} flags {} collision-free candidates ({} in \
         between): recall {}, precision {}, keep rate {}, AUROC in-between {} / bad {}",
        h.test_candidates,
        h.in_between,
        h.in_between_colliding,
        h.collision_free_in_between,
        h.threshold
            .map_or_else(|| "n/a".into(), |t| format!("{t:.3e}")),
        h.flagged,
        h.flagged_in_between,
        number(h.recall),
        number(h.precision),
        number(h.test_keep_rate),
        number(h.auroc_in_between),
        number(h.auroc_bad)
    );
    let f = &m.filter;
    let _ = writeln!(
        text,
        "  model row rejections: {}; repair bent {} of {} candidates ({} collided before); \
         {} kept candidates collide by the oracle",
        rejections(&f.rejections),
        f.repaired,
        f.candidates,
        f.collisions_repaired,
        f.kept_colliding
    );
    text
}

fn rejections(map: &std::collections::BTreeMap<&'static str, usize>) -> String {
    let list: Vec<String> = map.iter().map(|(kind, n)| format!("{kind} {n}")).collect();
    if list.is_empty() {
        "none".into()
    } else {
        list.join(", ")
    }
}

/// Writes `dir/README.md` with `gallery.png`, `modes.png` and, when the model folder has a
/// `loss.csv`, `loss.png`.
pub(super) fn write_report(
    dir: &Path,
    report: &EvalReport,
    arm: &PlanarArm,
    model_dir: &Path,
) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let names = &report.model.mode_names;
    if !report.gallery.is_empty() {
        draw_gallery(&dir.join("gallery.png"), arm, &report.gallery, names)?;
    }
    draw_mode_histogram(&dir.join("modes.png"), &report.mode_histogram)?;
    let loss = read_loss_curve(model_dir)?.filter(|points| !points.is_empty());
    if let Some(points) = &loss {
        let title = format!(
            "training curve of {} ({} logged steps)",
            report.model.name,
            points.len()
        );
        draw_loss_curve(&dir.join("loss.png"), points, &title)?;
    }
    let text = markdown(report, loss.is_some());
    let path = dir.join("README.md");
    std::fs::write(&path, text).map_err(|e| Error::io(&path, e))
}

fn markdown(report: &EvalReport, has_loss: bool) -> String {
    let m = report.model_row();
    let s = &report.sampler;
    let p = &report.planner;
    let mut md = String::new();
    let _ = writeln!(
        md,
        "# Evaluation of `{}` (training step {})\n",
        report.model.name, report.model.training_steps
    );
    let _ = writeln!(
        md,
        "`dplan eval --model {} --scenes {} --seed {}` on held-out scenes of `{}` ({} \
         infeasible draws skipped; {} scenes with >= 2 expert modes, {} with both routes). \
         Weights sha256 `{}`.\n",
        report.model.dir,
        m.scenes,
        report.seed,
        report.data_config,
        report.infeasible_scenes,
        m.multimodal_scenes,
        m.both_route_scenes,
        report.model.weights_sha256
    );
    let _ = writeln!(
        md,
        "Sampler: {} {} steps, eta {}, guidance {}, x̂0 variance over the last {} steps; \
         K = {}. Planner: goal tolerance {} m, hallucination threshold {}, selection {:?}, \
         cluster threshold {} rad. Label scheme `{:?}`.\n",
        s.kind,
        s.inference_steps,
        s.eta,
        s.guidance_scale,
        s.record_last_k,
        p.num_samples,
        p.goal_tolerance_m,
        p.hallucination_threshold
            .map_or_else(|| "off".to_string(), |t| t.to_string()),
        p.selection_policy,
        p.cluster_threshold_rad,
        report.label_scheme
    );
    let (header, lines) = column_lines(report);
    md.push_str("## Candidates: raw network and pipeline\n\n| metric |");
    for name in &header {
        let _ = write!(md, " {name} raw | {name} pipeline |");
    }
    md.push_str("\n|---|");
    md.push_str(&"---|---|".repeat(header.len()));
    md.push('\n');
    for line in lines {
        let _ = writeln!(md, "| {} |", line.join(" | "));
    }
    md.push_str("\n## Executed plans (unconditioned calls)\n\n| metric |");
    for name in &header {
        let _ = write!(md, " {name} |");
    }
    md.push_str("\n|---|");
    md.push_str(&"---|".repeat(header.len()));
    md.push('\n');
    for line in executed_lines(report) {
        let _ = writeln!(md, "| {} |", line.join(" | "));
    }
    for row in &report.rows {
        let split = &row.latency_split_ms;
        let _ = writeln!(
            md,
            "\nRow `{}`: latency unconditioned p50 {} / p99 {} ms, requested p50 {} / p99 {} \
             ms; planning {:.1} s; rejections {}.",
            row.name,
            ms(split.unconditioned_p50),
            ms(split.unconditioned_p99),
            ms(split.requested_p50),
            ms(split.requested_p99),
            row.planning_secs,
            rejections(&row.metrics.filter.rejections)
        );
    }
    let h = &report.hallucination;
    let _ = writeln!(
        md,
        "\n## The x̂0-variance filter\n\nModel row, unconditioned candidates; a candidate is \
         *in between* when its scene has >= 2 expert modes and it is farther than {} rad \
         (mean waypoint distance) from every expert path. Threshold calibrated on the even \
         scenes for a keep rate of {} of the in-mode good candidates: {}. On the odd scenes \
         ({} candidates): {} in between, {} of them colliding (the collision check catches \
         those), {} collision-free in between. The threshold flags {} collision-free \
         candidates, {} of them in between: recall {}, precision {}, achieved keep rate {}. \
         AUROC of the score for in-between vs in-mode (collision-free): {}; for bad vs good \
         (all): {}.\n",
        h.in_between_rad,
        h.target_keep_rate,
        h.threshold
            .map_or_else(|| "n/a".into(), |t| format!("{t:.3e}")),
        h.test_candidates,
        h.in_between,
        h.in_between_colliding,
        h.collision_free_in_between,
        h.flagged,
        h.flagged_in_between,
        number(h.recall),
        number(h.precision),
        number(h.test_keep_rate),
        number(h.auroc_in_between),
        number(h.auroc_bad)
    );
    let _ = writeln!(
        md,
        "### Definitions\n\n\
         - Ground truth is the oracle (`src/eval/oracle.rs`), which shares no code with the \
         planner's filter: exact capsule-circle distances, a continuous swept test \
         (bisection with a certified motion bound), timed plans checked on the executed cubic \
         every {dt} ms and continuously between samples, limits on the cubic's exact \
         velocities and accelerations (jerk reported), goal tolerance {tol} m (the node's is \
         0.02 m).\n\
         - **raw**: the samples as the network returned them; valid when executable as they \
         are (first waypoint within {start} rad of the start, last within {tol} m of the goal, \
         collision-free, within limits). **pipeline**: after anchoring, goal snap and repair; \
         valid when the planner keeps it and the oracle finds it good; goal error over the \
         executed plans; request accuracy: the executed plan succeeds in the requested mode.\n\
         - Coverage: a mode is offered when a usable candidate (raw: valid raw sample; \
         pipeline: kept and good) has its label. *all modes*: scenes with >= 2 expert modes \
         where every one is offered; *both routes*: mean offered fraction over scenes whose \
         expert has a left and a right route.\n\
         - Per-scene KL(P_expert || Q) in nats, Q with +{alpha} per category (raw: all K \
         samples; pipeline: the kept candidates).\n\
         - Time ratio: plan duration / the fastest expert path of the chosen label timed from \
         rest by the same parameterisation and limits; length ratio likewise with the \
         shortest expert path.\n",
        dt = PLAN_ORACLE_DT_SECS * 1e3,
        tol = ORACLE_GOAL_TOLERANCE_M,
        start = ORACLE_START_TOLERANCE_RAD,
        alpha = KL_SMOOTHING
    );
    md.push_str(
        "## Mode distribution\n\nShare of each label per scene, averaged over scenes: the \
         expert's paths, the raw samples of the unconditioned call, and the kept candidates.\n\n\
         ![mode histogram](modes.png)\n\n| label | expert | candidates | kept |\n|---|---|---|---|\n",
    );
    let h = &report.mode_histogram;
    for (i, name) in h.names.iter().enumerate() {
        let get = |v: &[f64]| v.get(i).map_or_else(String::new, |x| format!("{x:.3}"));
        let _ = writeln!(
            md,
            "| `{name}` | {} | {} | {} |",
            get(&h.expert),
            get(&h.candidates),
            get(&h.kept_candidates)
        );
    }
    if !report.gallery.is_empty() {
        let _ = writeln!(
            md,
            "\n## Gallery\n\nThe first {} scenes: end-effector paths of the unconditioned \
             call's candidates coloured by geometric label (thin and faded: rejected), the \
             chosen one bold, the expert's paths dashed.\n\n![gallery](gallery.png)",
            report.gallery.len()
        );
    }
    if has_loss {
        md.push_str(
            "\n## Training curve\n\nFrom the model folder's `loss.csv`.\n\n![loss](loss.png)\n",
        );
    }
    md
}
