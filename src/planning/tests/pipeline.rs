//! The whole pipeline on the `blocked` scene with synthetic bundles: scoring, modes, selection
//! with hysteresis across calls, stitching, mode requests, determinism.

use super::{arm, blocked_scene, blocked_source, mode_names};
use crate::planning::{
    segment_extrema, CandidateBatch, CandidateSource, CommandedState, ConditionTerm, ModeRequest,
    Plan, PlanOutcome, Planner, PlannerConfig, RejectReason, SelectionReason, SyntheticSource,
};
use crate::robot::JointPath;
use crate::task::{GeometricLabeller, LabelScheme};
use crate::Result;

const HORIZON: usize = 32;

fn config() -> PlannerConfig {
    PlannerConfig {
        num_samples: 20,
        seed: 3,
        hallucination_threshold: Some(0.5),
        ..PlannerConfig::default()
    }
}

/// Returns the batches of its sources in turn (the last one repeats).
struct Scripted {
    sources: Vec<SyntheticSource>,
    calls: usize,
}

impl CandidateSource for Scripted {
    fn condition_terms(&self) -> &[ConditionTerm] {
        self.sources[0].condition_terms()
    }

    fn mode_names(&self) -> &[String] {
        self.sources[0].mode_names()
    }

    fn sample(
        &mut self,
        condition: &[f32],
        label: Option<usize>,
        num_samples: usize,
        seed: u64,
    ) -> Result<CandidateBatch> {
        let i = self.calls.min(self.sources.len() - 1);
        self.calls += 1;
        self.sources[i].sample(condition, label, num_samples, seed)
    }
}

fn assert_plan_within_limits(plan: &Plan) {
    plan.validate().unwrap();
    let arm = arm();
    let (vmax, amax) = (arm.max_velocities_rad_s(), arm.max_accelerations_rad_s2());
    for pair in plan.points.windows(2) {
        let h = pair[1].time_from_start_secs - pair[0].time_from_start_secs;
        for j in 0..2 {
            let (v, a) = segment_extrema(
                pair[0].positions[j],
                pair[0].velocities[j],
                pair[1].positions[j],
                pair[1].velocities[j],
                h,
            );
            assert!(
                v <= vmax[j] * (1.0 + 1e-9) && a <= amax[j] * (1.0 + 1e-9),
                "{v} {a}"
            );
        }
    }
}

fn plan_once(planner: &mut Planner, mode: ModeRequest) -> PlanOutcome {
    let observation = blocked_scene()
        .observation(planner.arm(), mode, &mode_names())
        .unwrap();
    planner.plan(&observation).unwrap()
}

#[test]
fn blocked_scene_end_to_end() {
    let source = blocked_source(HORIZON, (5, 3, 2), (0.0, 0.0, 0.0));
    let labeller = GeometricLabeller {
        scheme: LabelScheme::Elbow,
    };
    let mut planner = Planner::new(arm(), Box::new(source), config())
        .unwrap()
        .with_labeller(Box::new(labeller));
    let outcome = plan_once(&mut planner, ModeRequest::Any);
    assert_eq!(outcome.candidates.len(), 20);
    // 10 down, 6 up, 4 straight through the obstacle (in that order).
    for report in &outcome.candidates[16..] {
        assert!(!report.valid);
        assert!(
            report
                .reasons
                .iter()
                .any(|r| matches!(r, RejectReason::Collision { .. })),
            "{:?}",
            report.reasons
        );
    }
    let valid: Vec<usize> = outcome
        .candidates
        .iter()
        .filter(|c| c.valid)
        .map(|c| c.index)
        .collect();
    assert_eq!(
        valid,
        (0..16).collect::<Vec<_>>(),
        "{:?}",
        outcome.candidates
    );
    // Two modes, ordered by mass, labelled by the elbow at the goal.
    assert_eq!(outcome.modes.len(), 2);
    assert_eq!(outcome.modes[0].members, (0..10).collect::<Vec<_>>());
    assert_eq!(outcome.modes[0].label.as_deref(), Some("elbow_down"));
    assert_eq!(outcome.modes[1].members, (10..16).collect::<Vec<_>>());
    assert_eq!(outcome.modes[1].label.as_deref(), Some("elbow_up"));
    // Invalid candidates are shown with their nearest mode.
    assert!(outcome.candidates[16..].iter().all(|c| c.mode.is_some()));
    assert_eq!(
        outcome
            .modes
            .iter()
            .map(|m| m.assigned_invalid.len())
            .sum::<usize>(),
        4
    );
    // Chosen: the best member of the heaviest mode.
    assert_eq!(outcome.selection, Some(SelectionReason::BestByMass));
    assert_eq!(outcome.chosen_mode, Some(0));
    let chosen = outcome.chosen.unwrap();
    assert_eq!(chosen, outcome.modes[0].best_member);
    let plan = outcome.plan.as_ref().unwrap();
    assert_plan_within_limits(plan);
    let start = &blocked_scene().start_rad;
    assert_eq!(&plan.points[0].positions, start);
    assert_eq!(plan.points[0].velocities, vec![0.0, 0.0]);
    assert_eq!(
        plan.points.last().unwrap().positions,
        outcome.candidates[chosen].path.last()
    );
    assert!(outcome.timings.pipeline_secs > 0.0);

    // Seeded: a fresh planner reproduces the outcome exactly (timings aside).
    let source = blocked_source(HORIZON, (5, 3, 2), (0.0, 0.0, 0.0));
    let mut again = Planner::new(arm(), Box::new(source), config())
        .unwrap()
        .with_labeller(Box::new(labeller));
    let repeat = plan_once(&mut again, ModeRequest::Any);
    assert_eq!(repeat.candidates, outcome.candidates);
    assert_eq!(repeat.plan, outcome.plan);
    assert_eq!(repeat.seed, 3);
}

#[test]
fn keeps_the_mode_across_calls_then_switches_when_invalid() {
    let source = Scripted {
        sources: vec![
            // Call 1: elbow down has the mass.
            blocked_source(HORIZON, (6, 4, 0), (0.0, 0.0, 0.0)),
            // Call 2: elbow up has the mass, elbow down is still valid.
            blocked_source(HORIZON, (3, 7, 0), (0.0, 0.0, 0.0)),
            // Call 3: every elbow-down candidate hallucinates.
            blocked_source(HORIZON, (6, 4, 0), (0.9, 0.0, 0.0)),
        ],
        calls: 0,
    };
    let mut planner = Planner::new(arm(), Box::new(source), config()).unwrap();
    let first = plan_once(&mut planner, ModeRequest::Any);
    assert_eq!(first.selection, Some(SelectionReason::BestByMass));
    assert!(first.chosen.unwrap() < 12, "{:?}", first.chosen);

    let second = plan_once(&mut planner, ModeRequest::Any);
    assert_eq!(second.modes[0].members.len(), 14);
    assert_eq!(second.selection, Some(SelectionReason::KeptCurrentMode));
    assert!(second.chosen.unwrap() < 6, "{:?}", second.chosen);
    assert_eq!(second.chosen_mode, Some(1));

    let third = plan_once(&mut planner, ModeRequest::Any);
    assert!(third.candidates[..12].iter().all(|c| c
        .reasons
        .iter()
        .any(|r| matches!(r, RejectReason::Hallucination { .. }))));
    assert_eq!(third.modes.len(), 1);
    assert_eq!(third.selection, Some(SelectionReason::BestByMass));
    assert!(third.chosen.unwrap() >= 12);
    assert_plan_within_limits(third.plan.as_ref().unwrap());
}

#[test]
fn a_new_plan_starts_at_the_commanded_state() {
    let source = blocked_source(HORIZON, (5, 3, 0), (0.0, 0.0, 0.0));
    let mut planner = Planner::new(arm(), Box::new(source), config()).unwrap();
    let first = plan_once(&mut planner, ModeRequest::Any);
    let previous = first.plan.unwrap();
    let now_secs = 0.4 * previous.duration_secs();
    let (positions, velocities) = previous.state_at(now_secs);
    assert!(velocities.iter().any(|v| v.abs() > 0.05), "{velocities:?}");

    let scene = blocked_scene();
    let mut input = scene.observation_input(planner.arm(), ModeRequest::Any);
    input.commanded = Some(CommandedState {
        positions_rad: positions.clone(),
        velocities_rad_s: velocities.clone(),
        stamp_secs: now_secs,
    });
    let observation = planner.observation(input).unwrap();
    let second = planner.plan(&observation).unwrap();
    let plan = second.plan.unwrap();
    assert_eq!(plan.points[0].positions, positions);
    assert_eq!(plan.points[0].velocities, velocities);
    assert_eq!(plan.start_stamp_secs, now_secs);
    assert_plan_within_limits(&plan);
    // Candidates are anchored at the commanded positions; the mode is kept.
    assert!(second
        .candidates
        .iter()
        .all(|c| c.path.first() == positions.as_slice()));
    assert_eq!(second.selection, Some(SelectionReason::KeptCurrentMode));
    // The controller-facing resampling keeps the start and the end at rest.
    let resampled = plan.resample(0.02).unwrap();
    resampled.validate().unwrap();
    assert_eq!(resampled.points[1].time_from_start_secs, 0.02);
}

#[test]
fn a_requested_mode_is_sampled_and_checked_geometrically() {
    let source = blocked_source(HORIZON, (5, 3, 2), (0.0, 0.0, 0.0));
    let labeller = GeometricLabeller {
        scheme: LabelScheme::Elbow,
    };
    let mut planner = Planner::new(arm(), Box::new(source), config())
        .unwrap()
        .with_labeller(Box::new(labeller));
    let outcome = plan_once(&mut planner, ModeRequest::parse("elbow_up"));
    assert!(outcome.candidates.iter().all(|c| c.valid));
    assert!(outcome
        .candidates
        .iter()
        .all(|c| c.label.as_deref() == Some("elbow_up")));
    assert_eq!(outcome.modes.len(), 1);

    // A source that ignores the label: the labeller rejects the wrong branch.
    let deaf = Scripted {
        sources: vec![blocked_source(HORIZON, (5, 3, 0), (0.0, 0.0, 0.0))],
        calls: 0,
    };
    struct IgnoresLabel(Scripted);
    impl CandidateSource for IgnoresLabel {
        fn condition_terms(&self) -> &[ConditionTerm] {
            self.0.condition_terms()
        }
        fn mode_names(&self) -> &[String] {
            self.0.mode_names()
        }
        fn sample(
            &mut self,
            c: &[f32],
            _: Option<usize>,
            k: usize,
            s: u64,
        ) -> Result<CandidateBatch> {
            self.0.sample(c, None, k, s)
        }
    }
    let mut planner = Planner::new(arm(), Box::new(IgnoresLabel(deaf)), config())
        .unwrap()
        .with_labeller(Box::new(labeller));
    let outcome = plan_once(&mut planner, ModeRequest::parse("elbow_up"));
    let wrong = outcome
        .candidates
        .iter()
        .filter(|c| {
            c.reasons
                .iter()
                .any(|r| matches!(r, RejectReason::WrongMode { .. }))
        })
        .count();
    assert_eq!(wrong, 12);
    let chosen = outcome.chosen.unwrap();
    assert_eq!(
        outcome.candidates[chosen].label.as_deref(),
        Some("elbow_up")
    );

    // An unknown mode is a typed error, not a panic.
    let mut input = blocked_scene().observation_input(planner.arm(), ModeRequest::Any);
    input.mode = ModeRequest::parse("sideways");
    assert!(planner.observation(input).is_err());
}

#[test]
fn no_valid_candidate_means_no_plan() {
    let source = blocked_source(HORIZON, (0, 0, 1), (0.0, 0.0, 0.0));
    let mut planner = Planner::new(arm(), Box::new(source), config()).unwrap();
    let outcome = plan_once(&mut planner, ModeRequest::Any);
    assert!(outcome.plan.is_none() && outcome.chosen.is_none());
    assert!(outcome.modes.is_empty());
    assert!(outcome
        .candidates
        .iter()
        .all(|c| !c.valid && c.mode.is_none()));
}

/// Always the same paths.
struct Fixed(Vec<JointPath>, Vec<String>);

impl CandidateSource for Fixed {
    fn condition_terms(&self) -> &[ConditionTerm] {
        &[]
    }

    fn mode_names(&self) -> &[String] {
        &self.1
    }

    fn sample(&mut self, _: &[f32], _: Option<usize>, _: usize, _: u64) -> Result<CandidateBatch> {
        CandidateBatch::from_paths(&self.0, vec![0.0; self.0.len()])
    }
}

#[test]
fn ends_near_the_goal_are_bent_onto_it_far_ones_rejected() {
    let arm = arm();
    let mut scene = blocked_scene();
    scene.obstacles.clear();
    let goal_q = arm.ik_nearest(scene.goal_m, &[0.0, 1.0]).unwrap();
    // Straight joint-space paths from slightly off the start to slightly off the goal
    // configuration: the end effector ends about 5 cm and about 20 cm from the goal.
    let path_to = |end_offset_rad: f64| {
        let from = [scene.start_rad[0] + 0.05, scene.start_rad[1] - 0.05];
        let to = [goal_q[0] + end_offset_rad, goal_q[1]];
        let waypoints: Vec<Vec<f64>> = (0..HORIZON)
            .map(|i| {
                let s = i as f64 / (HORIZON - 1) as f64;
                vec![
                    from[0] + s * (to[0] - from[0]),
                    from[1] + s * (to[1] - from[1]),
                ]
            })
            .collect();
        JointPath::from_waypoints(&waypoints).unwrap()
    };
    let near = path_to(0.08);
    let far = path_to(0.3);
    let error = |p: &JointPath| {
        let e = arm.end_effector(p.last());
        (e[0] - scene.goal_m[0]).hypot(e[1] - scene.goal_m[1])
    };
    assert!(error(&near) > 0.03 && error(&near) < 0.1 && error(&far) > 0.1);
    let plan_with = |max_goal_projection_m: Option<f64>| {
        let config = PlannerConfig {
            num_samples: 2,
            max_goal_projection_m,
            ..PlannerConfig::default()
        };
        let source = Fixed(vec![near.clone(), far.clone()], mode_names());
        let mut planner = Planner::new(arm.clone(), Box::new(source), config).unwrap();
        let observation = scene
            .observation(&arm, ModeRequest::Any, &mode_names())
            .unwrap();
        planner.plan(&observation).unwrap()
    };

    let outcome = plan_with(Some(0.1));
    let [bent, kept] = &outcome.candidates[..] else {
        panic!("two candidates expected");
    };
    assert!(bent.valid, "{:?}", bent.reasons);
    assert!(bent.scores.goal_error_m < 1e-9);
    assert!((bent.scores.sampled_goal_error_m - error(&near)).abs() < 1e-12);
    assert_eq!(bent.path.first(), &scene.start_rad[..]);
    // The ramp: the middle waypoint moved by the mean of both end offsets.
    let mid = HORIZON / 2;
    let s = mid as f64 / (HORIZON - 1) as f64;
    let moved = bent.path.waypoint(mid).unwrap()[0] - near.waypoint(mid).unwrap()[0];
    let expect = (1.0 - s) * -0.05 + s * (goal_q[0] - near.last()[0]);
    assert!((moved - expect).abs() < 1e-9, "{moved} vs {expect}");
    assert!(matches!(kept.reasons[..], [RejectReason::GoalError { .. }]));
    assert_eq!(kept.path.last(), far.last());
    assert_eq!(outcome.chosen, Some(0));
    let plan = outcome.plan.unwrap();
    assert_plan_within_limits(&plan);
    assert_eq!(plan.points.last().unwrap().positions, goal_q.to_vec());

    // Without projection the sampled end must already be within the tolerance.
    let outcome = plan_with(None);
    assert!(outcome.candidates.iter().all(|c| !c.valid));
    assert!(outcome.plan.is_none());
}
