//! The text summary and the Markdown report (`README.md` with PNG plots) of `dplan eval`.

use std::fmt::Write as _;
use std::path::Path;

use super::figures::{draw_gallery, draw_loss_curve, draw_mode_histogram};
use super::{read_loss_curve, EvalReport, KL_SMOOTHING, SUCCESS_GOAL_TOLERANCE_M};
use crate::robot::PlanarArm;
use crate::{Error, Result};

/// The targets (for `dplan eval --scenes 1000`), shown beside the measured values.
const TARGETS: [(&str, &str); 9] = [
    ("success_rate", ">= 0.98"),
    ("chosen_collisions", "= 0"),
    ("valid_candidate_rate", ""),
    ("mode_coverage", ">= 0.90"),
    ("mode_kl", ""),
    ("mode_request_accuracy", ">= 0.95"),
    ("filter_recall", ">= 0.90"),
    ("filter_keep_rate", ">= 0.90"),
    ("latency_ms_p50 / p99", ""),
];

fn number(value: Option<f64>) -> String {
    value.map_or_else(|| "n/a".to_string(), |v| format!("{v:.3}"))
}

fn ms(value: Option<f64>) -> String {
    value.map_or_else(|| "n/a".to_string(), |v| format!("{v:.1}"))
}

/// Metric name and value as text, in the order of [`TARGETS`].
fn rows(report: &EvalReport) -> Vec<(&'static str, String)> {
    let m = &report.metrics;
    let values = [
        format!("{:.3}", m.success_rate),
        m.chosen_collisions.to_string(),
        format!("{:.3}", m.valid_candidate_rate),
        number(m.mode_coverage),
        number(m.mode_kl),
        number(m.mode_request_accuracy),
        number(m.filter_recall),
        number(m.filter_keep_rate),
        format!("{} / {}", ms(m.latency_ms_p50), ms(m.latency_ms_p99)),
    ];
    TARGETS.iter().map(|(name, _)| *name).zip(values).collect()
}

/// One metric per line, with the scene counts.
pub(super) fn summary(report: &EvalReport) -> String {
    let mut text = String::new();
    let c = &report.counts;
    let _ = writeln!(
        text,
        "model {} (step {}), {} held-out scenes from seed {} ({} infeasible draws skipped)",
        report.model.name,
        report.model.training_steps,
        report.metrics.scenes,
        report.seed,
        report.infeasible_scenes
    );
    for (name, value) in rows(report) {
        let _ = writeln!(text, "  {name:>24}: {value}");
    }
    let _ = writeln!(
        text,
        "  failures: {} without a valid candidate, {} chosen goal misses, {} chosen limit \
         violations; {} multimodal scenes, {} mode requests, {} planning calls",
        c.no_valid_candidate,
        c.chosen_goal_misses,
        c.chosen_limit_violations,
        c.multimodal_scenes,
        c.mode_requests,
        c.planning_calls
    );
    let _ = writeln!(
        text,
        "  rejections: {}; x0-variance AUROC for bad candidates: {}",
        rejections(report),
        number(c.hallucination_auroc)
    );
    let _ = writeln!(
        text,
        "  repair: {} of {} candidates bent ({} of them collided before)",
        c.repaired_candidates, c.candidates, c.collisions_repaired
    );
    text
}

fn rejections(report: &EvalReport) -> String {
    let list: Vec<String> = report
        .counts
        .rejections
        .iter()
        .map(|(kind, n)| format!("{kind} {n}"))
        .collect();
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
    let m = &report.metrics;
    let c = &report.counts;
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
        "`dplan eval --model {} --scenes {} --seed {}` on held-out scenes of `{}` \
         ({} infeasible draws skipped). Weights sha256 `{}`.\n",
        report.model.dir,
        m.scenes,
        report.seed,
        report.data_config,
        report.infeasible_scenes,
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
    md.push_str("## Metrics\n\n| metric | value | issue target (1000 scenes) |\n|---|---|---|\n");
    for ((name, value), (_, target)) in rows(report).into_iter().zip(TARGETS) {
        let _ = writeln!(md, "| `{name}` | {value} | {target} |");
    }
    let split = &report.latency_split_ms;
    let _ = writeln!(
        md,
        "\nLatency by call: unconditioned p50 {} / p99 {} ms, with a mode request (guidance, \
         batch 2K) p50 {} / p99 {} ms. Evaluation time: expert {:.1} s, planning {:.1} s.\n",
        ms(split.unconditioned_p50),
        ms(split.unconditioned_p99),
        ms(split.requested_p50),
        ms(split.requested_p99),
        report.expert_secs,
        report.planning_secs
    );
    let _ = writeln!(
        md,
        "Counts: {} successes; {} scenes without a valid candidate, {} chosen paths missing \
         the goal, {} outside the limits; {} candidates ({} kept), {} good ({} kept), {} bad \
         ({} rejected); {} scenes with >= 2 expert modes ({} covered); {} mode requests; {} \
         planning calls. Rejections of the unconditioned calls' candidates by kind: {}. \
         The x̂0 variance as a detector of bad candidates has an AUROC of {} (0.5: chance). \
         The candidate repair bent {} candidates, {} of which collided as sampled.\n",
        c.successes,
        c.no_valid_candidate,
        c.chosen_goal_misses,
        c.chosen_limit_violations,
        c.candidates,
        c.kept_candidates,
        c.good_candidates,
        c.good_kept,
        c.bad_candidates,
        c.bad_rejected,
        c.multimodal_scenes,
        c.covered_scenes,
        c.mode_requests,
        c.planning_calls,
        rejections(report),
        number(c.hallucination_auroc),
        c.repaired_candidates,
        c.collisions_repaired
    );
    let _ = writeln!(
        md,
        "### Definitions\n\n\
         - A path is **good** when it is finite, within the joint limits at every waypoint, \
         its swept arm never touches an obstacle (zero clearance) and its end effector ends \
         within {tol} m of the goal; otherwise **bad**. Candidates are judged as the planner \
         scores them: anchored at the start (and bent onto the goal), and repaired where the \
         planner's repair bent them (counted above).\n\
         - `success_rate`: the unconditioned call chose a path, and the path and its timed plan \
         (every 5 ms) are good. `chosen_collisions`: chosen path or plan collides.\n\
         - `valid_candidate_rate`: kept / all candidates of the unconditioned calls.\n\
         - `mode_coverage`: over scenes with >= 2 expert modes (distinct labels of the \
         expert's paths), the share where every expert mode has a **kept** candidate with its \
         label.\n\
         - `mode_kl`: mean over scenes of KL(P_expert || Q_candidates) in nats; P: share of \
         the expert's paths per label; Q: all K candidates' labels (plus \"no label\"), +{alpha} \
         per category. A perfect sampler scores about 0.045 on a one-mode scene.\n\
         - `mode_request_accuracy`: per (scene, expert mode), request the mode (guidance on its \
         label) and take the share of the K candidates with that label; the mean.\n\
         - `filter_recall` / `filter_keep_rate`: bad candidates the planner rejects / good \
         candidates it keeps, over the unconditioned calls.\n\
         - Latencies: nearest-rank percentiles of `Planner::plan` wall-clock time over all \
         calls.\n",
        tol = SUCCESS_GOAL_TOLERANCE_M,
        alpha = KL_SMOOTHING
    );
    md.push_str(
        "## Mode distribution\n\nShare of each label per scene, averaged over scenes: the \
         expert's paths, all candidates of the unconditioned call, and the kept ones.\n\n\
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
