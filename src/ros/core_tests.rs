//! Tests of the node's behaviour without ROS: a simulated robot that follows the commanded
//! state exactly, planning with the geometric source and a simulated latency.

use super::*;
use crate::planning::{CandidateSource, Planner, PlannerConfig};
use crate::ros::geometric_source::GeometricSource;
use crate::ros::inputs::marker;
use crate::ros::worker::PlanFailure;
use crate::task::{GeometricLabeller, LabelScheme};

pub(super) const PERIOD: f64 = 0.02;

pub(super) struct Harness {
    pub(super) core: NodeCore,
    pub(super) planner: Planner,
    /// (deliver at this time, result), in order.
    pub(super) in_flight: Vec<(f64, PlanResult)>,
    pub(super) latency_secs: f64,
    pub(super) now: f64,
    /// The simulated robot: follows the commanded state.
    pub(super) q: Vec<f64>,
    pub(super) publish_states: bool,
    /// Added to the measured positions (the robot pushed away from the command).
    pub(super) offset: Vec<f64>,
    pub(super) commands: Vec<(f64, Vec<CommandPoint>)>,
    /// The commands' stamps, as published.
    pub(super) stamps: Vec<Option<f64>>,
    /// The joint states' stamps lag the node clock by this (another clock), seconds.
    pub(super) clock_offset: f64,
}

impl Harness {
    pub(super) fn new(q: Vec<f64>, latency_secs: f64) -> Self {
        let source = GeometricSource::reference().unwrap();
        let arm = source.arm().clone();
        let names = source.mode_names().to_vec();
        let planner = Planner::new(arm.clone(), Box::new(source), PlannerConfig::default())
            .unwrap()
            .with_labeller(Box::new(GeometricLabeller {
                scheme: LabelScheme::Elbow,
            }));
        let inputs = Inputs::new(arm.joint_names(), "base_link", 0.5, vec![], names.clone());
        let settings = CoreSettings {
            period_secs: PERIOD,
            replan_period_secs: 0.5,
            goal_tolerance_m: 0.02,
            stamp_trajectories: true,
            tracking: Default::default(),
        };
        Harness {
            core: NodeCore::new(settings, arm, inputs).with_mode_names(names),
            planner,
            in_flight: Vec::new(),
            latency_secs,
            now: 0.0,
            q,
            publish_states: true,
            offset: vec![0.0, 0.0],
            commands: Vec::new(),
            stamps: Vec::new(),
            clock_offset: 0.0,
        }
    }

    pub(super) fn step(&mut self) {
        self.now += PERIOD;
        if self.publish_states {
            let msg = JointStateIn {
                stamp_secs: self.now - self.clock_offset,
                names: vec!["shoulder".into(), "elbow".into()],
                positions: self
                    .q
                    .iter()
                    .zip(&self.offset)
                    .map(|(q, o)| q + o)
                    .collect(),
                velocities_len: 0,
                efforts_len: 0,
            };
            self.core.on_joint_state(&msg, self.now);
        }
        while self
            .in_flight
            .first()
            .is_some_and(|(at, _)| *at <= self.now + 1e-9)
        {
            let (_, result) = self.in_flight.remove(0);
            self.core.on_result(result, self.now);
        }
        let out = self.core.tick(self.now, !self.in_flight.is_empty());
        if let Some(request) = out.request {
            let outcome = self
                .planner
                .plan(&request.observation)
                .map_err(|e| PlanFailure::Error(e.to_string()));
            self.in_flight.push((
                self.now + self.latency_secs,
                PlanResult {
                    id: request.id,
                    requested_secs: request.requested_secs,
                    wall_secs: 0.001,
                    outcome,
                },
            ));
        }
        if let Some(points) = out.command {
            self.commands.push((self.now, points));
            self.stamps.push(out.stamp_secs);
        }
        if let Some((q, _)) = self.core.executor().state_at(self.now) {
            self.q = q;
        }
    }

    pub(super) fn run(&mut self, secs: f64) {
        let steps = (secs / PERIOD).round() as usize;
        for _ in 0..steps {
            let before = self.q.clone();
            self.step();
            let moved = before
                .iter()
                .zip(&self.q)
                .map(|(a, b)| (a - b).abs())
                .fold(0.0, f64::max);
            assert!(
                moved <= 1.5 * PERIOD * 1.05 + 1e-9,
                "jump of {moved} rad at {}",
                self.now
            );
        }
    }

    pub(super) fn goal(&mut self, x: f64, y: f64) {
        let goal = GoalIn {
            frame_id: "base_link".into(),
            position_m: [x, y, 0.0],
        };
        self.core.on_goal(&goal, self.now);
    }

    pub(super) fn end_effector_error(&self, goal: [f64; 2]) -> f64 {
        let p = self.core.arm.end_effector(&self.q);
        (p[0] - goal[0]).hypot(p[1] - goal[1])
    }

    pub(super) fn problem(&self, key: &str) -> Option<String> {
        self.core.problems.get(key).map(|p| p.text.clone())
    }
}

pub(super) fn check_rules(points: &[CommandPoint]) {
    assert!(points[0].time_from_start_secs >= PERIOD - 1e-12);
    for pair in points.windows(2) {
        assert!(pair[1].time_from_start_secs > pair[0].time_from_start_secs);
    }
    assert!(points.last().unwrap().velocities.iter().all(|&v| v == 0.0));
}

#[test]
fn reaches_a_goal_and_stops_replanning() {
    let mut h = Harness::new(vec![0.0, 0.5], 0.15);
    h.run(0.2);
    assert_eq!(h.commands.len(), 10, "holds from the first joint state on");
    assert!(h.core.executor().motion(h.now) == Motion::Holding);
    h.goal(0.2, 0.6);
    h.run(6.0);
    assert!(h.core.goal_reached, "{:?}", h.core.problems);
    assert!(h.end_effector_error([0.2, 0.6]) < 0.02);
    for (_, points) in &h.commands {
        check_rules(points);
    }
    let outcomes = h.core.stats.outcomes;
    assert!(outcomes >= 2, "receding-horizon replans: {outcomes}");
    // The replans of the same straight motion end no sooner: the plan is kept.
    assert!(h.core.stats.not_better >= 1, "{:?}", h.core.stats);
    h.run(2.0);
    assert_eq!(h.core.stats.outcomes, outcomes, "no replanning at the goal");
    h.offset = vec![0.003, 0.0];
    h.run(1.0);
    assert_eq!(
        h.core.stats.outcomes, outcomes,
        "within the drift allowance"
    );
    h.offset = vec![0.0, 0.0];
    h.run(0.1);
    h.q[0] += 0.2;
    h.run(1.0);
    assert!(h.core.stats.outcomes > outcomes, "pushed away: plans again");
    assert_eq!(
        h.core.stats.tracking_faults, 1,
        "the push is a tracking fault"
    );
    h.run(3.0);
    let diagnostics = h.core.diagnostics("dp", h.now, &Default::default());
    assert_eq!(diagnostics.len(), 3);
    assert!(
        diagnostics.iter().all(|s| s.level == Level::Ok),
        "{diagnostics:?}"
    );
    assert_eq!(diagnostics[2].message, "goal reached");
}

#[test]
fn goes_around_an_obstacle_and_honours_a_mode_request() {
    let mut h = Harness::new(vec![-0.3, 0.6], 0.05);
    let obstacle = MarkerIn {
        ns: "o".into(),
        id: 0,
        kind: marker::CYLINDER,
        action: marker::ADD,
        frame_id: "base_link".into(),
        position_m: [0.6, 0.6, 0.0],
        scale_m: [0.16, 0.16, 1.0],
        lifetime_secs: 0.0,
    };
    h.core.on_obstacles(&[obstacle], 0.0);
    h.run(0.1);
    h.goal(0.1, 0.6);
    h.run(0.2);
    let first = h.core.stats.last.clone().unwrap();
    assert!(
        first.kept < first.candidates,
        "the straight way is blocked: {first:?}"
    );
    h.run(10.0);
    assert!(h.end_effector_error([0.1, 0.6]) < 0.02);
    assert!(h.core.goal_reached);
    assert!(h.q[1] > 0.0, "elbow down: {:?}", h.q);
    h.core.on_mode("elbow_up", h.now);
    h.goal(0.2, 0.8);
    h.run(0.2);
    let last = h.core.stats.last.clone().unwrap();
    assert_eq!(last.chosen_label.as_deref(), Some("elbow_up"));
    assert_eq!(last.requested_mode, "elbow_up");
    h.run(8.0);
    assert!(
        h.end_effector_error([0.2, 0.8]) < 0.02,
        "{:?}",
        h.core.problems
    );
    assert!(h.q[1] < 0.0, "ends elbow up: {:?}", h.q);
    let last = h.core.stats.last.clone().unwrap();
    assert_eq!(
        last.chosen_label.as_deref(),
        Some("elbow_up"),
        "replans stay in the mode"
    );
}

#[test]
fn stale_joint_states_stop_the_robot_and_planning_resumes_after() {
    let mut h = Harness::new(vec![0.0, 0.5], 0.05);
    h.run(0.1);
    h.goal(-0.3, 0.6);
    h.run(0.4);
    assert_eq!(h.core.executor().motion(h.now), Motion::Following);
    h.publish_states = false;
    h.run(0.6);
    assert!(h.problem(keys::JS_STALE).unwrap().contains("shoulder"));
    assert_ne!(h.core.executor().motion(h.now), Motion::Following);
    h.run(1.0);
    assert_eq!(h.core.executor().motion(h.now), Motion::Holding);
    let held = h.q.clone();
    h.run(0.5);
    assert_eq!(h.q, held);
    h.publish_states = true;
    h.run(6.0);
    assert!(h.problem(keys::JS_STALE).is_none());
    assert!(h.end_effector_error([-0.3, 0.6]) < 0.02, "resumed");
}

#[test]
fn bad_goals_and_covering_obstacles_hold_with_an_error() {
    let mut h = Harness::new(vec![0.0, 0.5], 0.05);
    h.run(0.1);
    h.goal(3.0, 0.0);
    h.run(0.2);
    assert!(h
        .problem(keys::GOAL)
        .unwrap()
        .contains("outside the reachable workspace"));
    assert_eq!(
        h.core.inputs().goal(),
        None,
        "an unreachable goal is dropped"
    );
    assert_eq!(h.core.problems.level(Area::Inputs), Level::Error);
    h.goal(0.2, 0.6);
    h.run(0.1);
    assert!(h.problem(keys::GOAL).is_none());
    let covering = MarkerIn {
        ns: "o".into(),
        id: 0,
        kind: marker::SPHERE,
        action: marker::ADD,
        frame_id: "base_link".into(),
        position_m: [0.0, 0.0, 0.0],
        scale_m: [0.6, 0.6, 0.6],
        lifetime_secs: 0.0,
    };
    h.core.on_obstacles(std::slice::from_ref(&covering), h.now);
    h.run(0.3);
    assert!(h
        .problem(plan_keys::START_COLLISION)
        .unwrap()
        .contains("start configuration collides"));
    h.run(1.0);
    assert_eq!(h.core.executor().motion(h.now), Motion::Holding);
    let away = MarkerIn {
        position_m: [-0.7, -0.5, 0.0],
        scale_m: [0.1, 0.1, 0.1],
        ..covering
    };
    h.core.on_obstacles(&[away], h.now);
    h.run(6.0);
    assert!(h.problem(plan_keys::START_COLLISION).is_none());
    assert!(h.end_effector_error([0.2, 0.6]) < 0.02);
    let goal_inside = MarkerIn {
        ns: "o".into(),
        id: 1,
        kind: marker::SPHERE,
        action: marker::ADD,
        frame_id: "base_link".into(),
        position_m: [-0.4, 0.5, 0.0],
        scale_m: [0.1, 0.1, 0.1],
        lifetime_secs: 0.0,
    };
    h.core.on_obstacles(&[goal_inside], h.now);
    h.goal(-0.4, 0.5);
    h.run(0.2);
    assert!(h
        .problem(plan_keys::GOAL_BLOCKED)
        .unwrap()
        .contains("inside obstacles"));
    assert!(
        h.core.inputs().goal().is_some(),
        "kept: the obstacle may move away"
    );
}

#[test]
fn failed_planning_holds_and_superseded_results_are_dropped() {
    let mut h = Harness::new(vec![0.0, 0.5], 0.3);
    h.run(0.1);
    h.goal(0.2, 0.6);
    h.run(0.04);
    assert_eq!(h.in_flight.len(), 1);
    // A newer goal supersedes the request in flight.
    h.goal(-0.2, 0.6);
    h.run(0.4);
    assert_eq!(h.core.stats.superseded, 1);
    // A failure for the current request: error, hold.
    h.run(0.3);
    let id = h.core.next_id;
    h.in_flight.clear();
    let failure = PlanResult {
        id,
        requested_secs: h.now,
        wall_secs: 0.01,
        outcome: Err(PlanFailure::Panic("boom".into())),
    };
    h.core.event(Change::Replan, h.now);
    h.core.event_id = id;
    h.core.on_result(failure, h.now);
    let text = h.problem(plan_keys::PLANNING).unwrap();
    assert!(text.contains("planning panicked: boom"), "{text}");
    assert_eq!(h.core.problems.level(Area::Planning), Level::Error);
    assert_ne!(h.core.executor().motion(h.now + 2.0), Motion::Following);
    h.run(6.0);
    assert!(
        h.problem(plan_keys::PLANNING).is_none(),
        "recovered by replanning"
    );
    assert!(h.end_effector_error([-0.2, 0.6]) < 0.02);
}

#[test]
fn an_obstacle_on_the_current_trajectory_stops_at_once() {
    let mut h = Harness::new(vec![0.0, 0.5], 0.3);
    h.run(0.1);
    h.goal(-0.3, 0.6);
    h.run(0.6);
    assert_eq!(h.core.executor().motion(h.now), Motion::Following);
    let remaining = h.core.executor().remaining_secs(h.now);
    let (q_mid, _) = h.core.executor().state_at(h.now + 0.5 * remaining).unwrap();
    let ahead = h.core.arm.end_effector(&q_mid);
    let blocker = MarkerIn {
        ns: "o".into(),
        id: 0,
        kind: marker::SPHERE,
        action: marker::ADD,
        frame_id: "base_link".into(),
        position_m: [ahead[0], ahead[1], 0.0],
        scale_m: [0.04, 0.04, 0.04],
        lifetime_secs: 0.0,
    };
    h.core.on_obstacles(&[blocker], h.now);
    assert!(h.problem(plan_keys::OBSTACLE_AHEAD).is_some());
    assert_eq!(h.core.executor().motion(h.now), Motion::Stopping);
}

#[test]
fn stamped_messages_end_late_enough_to_survive_a_late_delivery() {
    // The end of a motion and a short stop: stamped, they must still end at least
    // STAMPED_MIN_END_SECS after the stamp, and what is appended is the last point, at rest.
    let mut h = Harness::new(vec![0.0, 0.5], 0.15);
    h.goal(0.2, 0.6);
    h.run(0.6);
    h.core.stop(h.now);
    h.run(3.0);
    let stamped: Vec<_> = h
        .commands
        .iter()
        .zip(&h.stamps)
        .filter(|(_, stamp)| stamp.is_some())
        .map(|((_, points), _)| points)
        .collect();
    assert!(stamped.len() > 10, "{}", stamped.len());
    let mut extended = 0;
    for points in stamped {
        let last = points.last().unwrap();
        assert!(last.time_from_start_secs >= STAMPED_MIN_END_SECS - 1e-12);
        assert!(last.velocities.iter().all(|v| *v == 0.0));
        if last.time_from_start_secs == STAMPED_MIN_END_SECS {
            let before = &points[points.len() - 2];
            assert_eq!(
                before.positions, last.positions,
                "the tail repeats the rest point"
            );
            assert!(before.velocities.iter().all(|v| *v == 0.0));
            extended += 1;
        }
    }
    assert!(extended > 0, "some messages ended sooner and were extended");
}

#[test]
fn moving_trajectories_carry_the_tick_time_unless_the_clocks_disagree() {
    let mut h = Harness::new(vec![0.0, 0.5], 0.15);
    h.run(0.2);
    assert!(
        h.stamps.iter().all(Option::is_none),
        "holds go out with stamp 0"
    );
    h.goal(0.2, 0.6);
    h.run(1.0);
    let moving: Vec<_> = h
        .commands
        .iter()
        .zip(&h.stamps)
        .filter(|((_, points), _)| points.len() > 1)
        .collect();
    assert!(!moving.is_empty());
    for ((at, _), stamp) in &moving {
        assert_eq!(**stamp, Some(*at), "stamped with the tick's own time");
    }

    // The joint states come on a clock 50 s ahead of the node's: stamp 0 and a warning.
    h.clock_offset = -50.0;
    let before = h.stamps.len();
    h.goal(-0.3, 0.5);
    h.run(0.5);
    let moving_unstamped = h.commands[before + 1..]
        .iter()
        .zip(&h.stamps[before + 1..])
        .filter(|((_, points), stamp)| points.len() > 1 && stamp.is_none())
        .count();
    assert!(moving_unstamped > 10, "{moving_unstamped}");
    assert!(h.stamps[before + 1..].iter().all(Option::is_none));
    let warning = h.problem(plan_keys::CLOCK).expect("a clock warning");
    assert!(warning.contains("another clock"), "{warning}");
    assert!(warning.contains("-50.000 s"), "{warning}");
    h.clock_offset = 0.0;
    h.goal(0.2, 0.6);
    h.run(0.3);
    assert!(h.problem(plan_keys::CLOCK).is_none());
    assert!(h.core.executor().motion(h.now) != Motion::Holding);
    assert!(h.stamps.last().unwrap().is_some(), "stamped again");

    h.core.settings.stamp_trajectories = false;
    h.run(0.2);
    assert!(h.stamps.last().unwrap().is_none(), "stamping off");
}

#[test]
fn a_mode_request_at_the_goal_is_kept_for_the_next_goal() {
    let mut h = Harness::new(vec![0.0, 0.5], 0.05);
    h.run(0.2);
    h.goal(0.2, 0.6);
    h.run(4.0);
    assert!(h.core.goal_reached);
    let outcomes = h.core.stats.outcomes;
    h.core.on_mode("elbow_down", h.now);
    h.run(1.0);
    assert_eq!(h.core.stats.outcomes, outcomes, "no plan at the goal");
    assert!(h.core.goal_reached);
    let note = h.problem(plan_keys::MODE_AT_GOAL).expect("reported");
    assert!(
        note.contains("elbow_down") && note.contains("next goal"),
        "{note}"
    );
    assert!(h.problem(plan_keys::PLANNING).is_none());
    h.goal(-0.2, 0.6);
    h.run(0.5);
    assert!(h.core.stats.outcomes > outcomes);
    assert_eq!(h.core.inputs.mode().name(), Some("elbow_down"));
}
