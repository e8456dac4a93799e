//! The Markdown page of a demo run (`README.md` beside the plots and the recording).

use std::fmt::Write as _;

use super::summary::DemoSummary;
use super::trace::DemoTrace;
use super::{JOINTS_PNG, MODES_PNG, WORKSPACE_PNG};

fn ms(value: Option<f64>) -> String {
    value.map_or_else(|| "n/a".to_string(), |v| format!("{v:.1}"))
}

fn count(value: Option<u64>) -> String {
    value.map_or_else(|| "unknown".to_string(), |v| v.to_string())
}

/// The page for `trace` and its `summary`.
pub fn markdown(trace: &DemoTrace, summary: &DemoSummary) -> String {
    let mut md = String::new();
    let verdict = if summary.passed { "passed" } else { "FAILED" };
    let _ = writeln!(md, "# Demo run: {verdict}\n");
    let _ = writeln!(
        md,
        "`scripts/demo`: the `diffusion_planner` node (`model_path: {}`) driving the simulated \
         arm (`diffusion_planner_sim`) through a scripted scenario: goals, moving obstacles and \
         mode requests (`tools/demo_scenario.py`).\n",
        trace.model
    );
    for problem in &summary.problems {
        let _ = writeln!(md, "- **problem:** {problem}");
    }
    if !summary.problems.is_empty() {
        md.push('\n');
    }
    let clearance = summary
        .min_clearance_m
        .map_or(String::new(), |c| format!(" (min clearance {c:.3} m)"));
    let sequence = if summary.mode_sequence.is_empty() {
        "no mode chosen".to_string()
    } else {
        summary.mode_sequence.join(" → ")
    };
    let received = summary
        .accepted_trajectories
        .zip(summary.rejected_trajectories)
        .map(|(a, r)| a + r);
    let recording = match &trace.recording {
        Some(r) => format!(
            "{} messages on {} topics in [`{}/`]({}/) ({})",
            r.messages(),
            r.topics.len(),
            r.path,
            r.path,
            r.storage
        ),
        None => "none".to_string(),
    };
    let rows = [
        (
            "goals reached",
            format!("{} / {}", summary.goals_reached, summary.goals_sent),
        ),
        (
            "collisions (simulator)",
            format!("{}{clearance}", count(summary.collisions)),
        ),
        (
            "mode switches",
            format!(
                "{} ({sequence}; {} mode requests)",
                summary.mode_switches, summary.mode_requests
            ),
        ),
        (
            "planning latency p50 / p99",
            format!(
                "{} / {} ms ({} of {} calls seen)",
                ms(summary.latency_ms_p50),
                ms(summary.latency_ms_p99),
                summary.latency_samples,
                count(summary.planning_calls)
            ),
        ),
        (
            "rejected trajectories (simulator)",
            format!(
                "{} of {} received",
                count(summary.rejected_trajectories),
                count(received)
            ),
        ),
        ("duration", format!("{:.1} s", summary.duration_s)),
        ("recording", recording),
    ];
    let _ = writeln!(md, "| | |\n|---|---|");
    for (name, value) in rows {
        let _ = writeln!(md, "| {name} | {value} |");
    }
    if !trace.node_parameters.is_empty() {
        let params: Vec<String> = trace
            .node_parameters
            .iter()
            .map(|(k, v)| format!("`{k}: {v}`"))
            .collect();
        let _ = writeln!(
            md,
            "\nThe node ran with `config/planar_arm.yaml` and {}.",
            params.join(", ")
        );
    }
    if let Some(node) = &trace.node {
        let _ = writeln!(
            md,
            "\nThe node's own counters: {} plans, {} failed calls, {} without a valid candidate, \
             {} late plans; its latency p50 {} ms, max {} ms over its recent calls; control \
             rate {} Hz.",
            node.outcomes,
            node.failed_calls,
            node.no_valid_candidate,
            node.late_plans,
            ms(node.latency_ms_p50),
            ms(node.latency_ms_max),
            node.control_rate_hz
                .map_or_else(|| "n/a".to_string(), |r| format!("{r:.2}"))
        );
    }

    let _ = writeln!(md, "\n## Goals\n");
    let _ = writeln!(
        md,
        "| goal | x, y (m) | mode request | sent (s) | reached (s) | took (s) |\n|---|---|---|---|---|---|"
    );
    for g in &trace.goals {
        let (reached, took) = match g.reached_t_s {
            Some(t) => (format!("{t:.1}"), format!("{:.1}", t - g.t_s)),
            None => (format!("no (waited {:.0} s)", g.timeout_s), "–".to_string()),
        };
        let _ = writeln!(
            md,
            "| {} | {:.2}, {:.2} | {} | {:.1} | {reached} | {took} |",
            g.name, g.goal_m[0], g.goal_m[1], g.mode, g.t_s
        );
    }

    let _ = writeln!(md, "\n## Plots\n");
    let _ = writeln!(
        md,
        "End-effector path (from `/joint_states` through forward kinematics), goals and every \
         obstacle set sent, coloured by time; the arm at the start (light) and at the end \
         (dark):\n\n![workspace]({WORKSPACE_PNG})\n"
    );
    let _ = writeln!(
        md,
        "Joint positions against time; dashed: a goal sent, green: reached:\n\n\
         ![joints]({JOINTS_PNG})\n"
    );
    let _ = writeln!(
        md,
        "The chosen candidate's geometric mode label for each planning call the driver saw \
         (from `/diagnostics`; `none`: nothing chosen, e.g. a hold or no valid candidate), and \
         the requested mode as a band:\n\n![modes]({MODES_PNG})"
    );

    if let Some(r) = &trace.recording {
        let _ = writeln!(md, "\n## Recording\n");
        let _ = writeln!(
            md,
            "A rosbag2 bag (`{}`, metadata version 9) of every topic, written with `rosbags`. \
             Open the `.mcap` file in Foxglove, or read it with `rosbags` \
             (`rosbags.highlevel.AnyReader`).\n",
            r.storage
        );
        let _ = writeln!(md, "| topic | type | messages |\n|---|---|---|");
        for (name, topic) in &r.topics {
            let _ = writeln!(
                md,
                "| `{name}` | `{}` | {} |",
                topic.msgtype, topic.messages
            );
        }
    }
    if !trace.notes.is_empty() {
        let _ = writeln!(md, "\n## Notes\n");
        for note in &trace.notes {
            let _ = writeln!(md, "- {note}");
        }
    }
    md
}
