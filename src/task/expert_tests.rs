//! Tests of the expert planner.

use super::*;

/// A point robot (configuration = position) in a box with a disc obstacle: the two classes
/// are "above" and "below" the disc.
fn point_problem(free: &(dyn Fn(Config2) -> bool + Sync)) -> ExpertProblem<'_> {
    ExpertProblem {
        limits: [[-2.0, 2.0], [-2.0, 2.0]],
        is_free: free,
    }
}

#[test]
fn finds_both_ways_around_a_blocking_disc() {
    let free = |q: Config2| q[0].hypot(q[1]) > 0.5;
    let problem = point_problem(&free);
    let paths = plan_all_classes(
        &problem,
        [-1.5, 0.0],
        &[[1.5, 0.0]],
        32,
        &ExpertConfig::default(),
        7,
    )
    .unwrap();
    assert_eq!(paths.len(), 2, "{paths:?}");
    assert_ne!(paths[0].signature, paths[1].signature);
    let mut above = 0;
    for path in &paths {
        assert_eq!(path.waypoints.len(), 32);
        assert_eq!(path.waypoints[0], [-1.5, 0.0]);
        assert_eq!(path.waypoints[31], [1.5, 0.0]);
        assert!(path.waypoints.iter().all(|&q| free(q)));
        // Around a disc of radius 0.5 from (−1.5,0) to (1.5,0): the optimum is ~3.28.
        assert!(path.length_rad < 3.6, "{}", path.length_rad);
        // The cut goes up from the disc: the path above crosses it once, left to right.
        let is_above = path.waypoints.iter().any(|q| q[1] > 0.4);
        assert_eq!(path.signature == [1], is_above);
        above += usize::from(is_above);
    }
    assert_eq!(above, 1);
}

#[test]
fn two_islands_give_at_least_three_classes() {
    let free = |q: Config2| q[0].hypot(q[1] - 0.7) > 0.3 && q[0].hypot(q[1] + 0.7) > 0.3;
    let problem = point_problem(&free);
    let config = ExpertConfig {
        max_length_ratio: 3.0,
        ..ExpertConfig::default()
    };
    let paths = plan_all_classes(&problem, [-1.5, 0.0], &[[1.5, 0.0]], 16, &config, 3).unwrap();
    let mut signatures: Vec<Vec<i8>> = paths.iter().map(|p| p.signature.clone()).collect();
    signatures.sort();
    signatures.dedup();
    // Between, above both, below both: three simple classes (weaving is not simple).
    assert!(signatures.len() >= 3, "{signatures:?}");
    assert!(
        (paths[0].length_rad - 3.0).abs() < 0.05,
        "{}",
        paths[0].length_rad
    );
}

#[test]
fn drops_the_long_way_round_a_disc_that_does_not_block() {
    let free = |q: Config2| q[0].hypot(q[1] - 1.6) > 0.2;
    let problem = point_problem(&free);
    let paths = plan_all_classes(
        &problem,
        [-1.5, 0.0],
        &[[1.5, 0.0]],
        16,
        &ExpertConfig::default(),
        7,
    )
    .unwrap();
    assert_eq!(paths.len(), 1, "{paths:?}");
    assert!((paths[0].length_rad - 3.0).abs() < 0.05);
}

#[test]
fn obstacles_on_the_border_have_no_classes() {
    // A wall from the lower border: only one way past it.
    let free = |q: Config2| !(q[0].abs() < 0.2 && q[1] < 0.5);
    let problem = point_problem(&free);
    let paths = plan_all_classes(
        &problem,
        [-1.5, 0.0],
        &[[1.5, 0.0]],
        16,
        &ExpertConfig::default(),
        7,
    )
    .unwrap();
    assert_eq!(paths.len(), 1, "{paths:?}");
    assert!(paths[0].signature.is_empty());
}

#[test]
fn resample_keeps_ends_and_spacing() {
    let path = [[0.0, 0.0], [1.0, 0.0], [1.0, 1.0]];
    let out = resample(&path, 5);
    assert_eq!(out.len(), 5);
    assert_eq!(out[0], [0.0, 0.0]);
    assert_eq!(out[4], [1.0, 1.0]);
    assert!((out[2][0] - 1.0).abs() < 1e-12 && out[2][1].abs() < 1e-12);
}

#[test]
fn start_in_collision_is_an_error() {
    let free = |q: Config2| q[0].hypot(q[1]) > 0.5;
    let problem = point_problem(&free);
    let err = plan_all_classes(
        &problem,
        [0.0, 0.0],
        &[[1.5, 0.0]],
        8,
        &ExpertConfig::default(),
        1,
    )
    .unwrap_err();
    assert!(err.to_string().contains("start"), "{err}");
}
