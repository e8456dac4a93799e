use super::*;

fn cand(label: Option<usize>, kept: bool, good: bool) -> CandidateOutcome {
    CandidateOutcome {
        raw_label: label,
        raw_valid: good,
        raw_collides: !good,
        raw_goal_error_m: if good { 0.001 } else { 0.1 },
        label,
        kept,
        good,
        collides: !good,
        x0_variance: 0.0,
        reasons: if kept { vec![] } else { vec!["collision"] },
        repaired: false,
        collision_repaired: false,
        expert_distance_rad: Some(0.0),
    }
}

fn chosen(success: bool, collides: bool, time_ratio: f64) -> Option<ChosenOutcome> {
    Some(ChosenOutcome {
        success,
        collides,
        out_of_limits: false,
        goal_error_m: if success { 0.0 } else { 0.05 },
        label: Some(0),
        duration_secs: 2.0,
        path_length_rad: 1.0,
        max_velocity_ratio: 0.5,
        max_acceleration_ratio: 0.9,
        max_jerk_rad_s3: 10.0,
        time_ratio: Some(time_ratio),
        length_ratio: Some(1.0),
    })
}

#[test]
fn kl_is_forward_smoothed_and_zero_only_in_the_limit() {
    // Expert: modes 0 and 2 with 1 and 3 paths (P = 1/4, 3/4); M = 4 labels.
    let expert = [1, 0, 3, 0];
    let labels = [Some(0), Some(2), Some(2), Some(2), None, Some(1)];
    // Q(0) = 1.5 / 8.5, Q(2) = 3.5 / 8.5 (K = 6, α (M + 1) = 2.5).
    let want = 0.25 * (0.25f64 / (1.5 / 8.5)).ln() + 0.75 * (0.75f64 / (3.5 / 8.5)).ln();
    let kl = scene_mode_kl(&expert, &labels).unwrap();
    assert!((kl - want).abs() < 1e-12, "{kl} vs {want}");
    let even = [1, 0, 1, 0];
    let missing = vec![Some(2); 8];
    let extra: Vec<_> = [0, 0, 0, 2, 2, 2, 1, 1].into_iter().map(Some).collect();
    let (kl_missing, kl_extra) = (
        scene_mode_kl(&even, &missing).unwrap(),
        scene_mode_kl(&even, &extra).unwrap(),
    );
    assert!((kl_extra - 1.5f64.ln()).abs() < 1e-12, "{kl_extra}");
    assert!(kl_missing > 2.0 * kl_extra, "{kl_missing} {kl_extra}");
    let matched: Vec<_> = (0..4000)
        .map(|i| Some(if i % 4 == 0 { 0 } else { 2 }))
        .collect();
    assert!(scene_mode_kl(&expert, &matched).unwrap() < 1e-3);
    assert_eq!(scene_mode_kl(&[0, 0], &matched), None);
}

#[test]
fn coverage_per_column_and_both_routes() {
    let scene = |candidates| SceneOutcome {
        expert_counts: vec![1, 0, 2, 0],
        both_routes: true,
        candidates,
        chosen: chosen(true, false, 1.0),
        requests: vec![],
    };
    let both = scene(vec![cand(Some(0), true, true), cand(Some(2), true, true)]);
    assert!(both.multimodal() && both.coverage(false) == 1.0 && both.coverage(true) == 1.0);
    // Mode 2 only among rejected, bad candidates: half covered.
    let rejected = scene(vec![cand(Some(0), true, true), cand(Some(2), false, false)]);
    assert_eq!(rejected.coverage(false), 0.5);
    // Kept but bad by the oracle: not offered in the pipeline column either.
    let mut kept_bad = cand(Some(2), true, false);
    kept_bad.raw_valid = true;
    let kept_bad = scene(vec![cand(Some(0), true, true), kept_bad]);
    assert_eq!(
        (kept_bad.coverage(false), kept_bad.coverage(true)),
        (0.5, 1.0)
    );
    let single = SceneOutcome {
        expert_counts: vec![0, 3, 0, 0],
        both_routes: false,
        ..both.clone()
    };
    assert!(!single.multimodal());
    let m = RowMetrics::compute(&[both, rejected, kept_bad, single]);
    assert_eq!((m.multimodal_scenes, m.both_route_scenes), (3, 3));
    assert_eq!(m.pipeline.mode_coverage, Some(1.0 / 3.0));
    assert_eq!(m.pipeline.per_scene_coverage_both_routes, Some(2.0 / 3.0));
    assert_eq!(m.raw.mode_coverage, Some(2.0 / 3.0));
}

#[test]
fn row_metrics_on_a_hand_made_set() {
    let a = SceneOutcome {
        expert_counts: vec![1, 1],
        both_routes: true,
        // good kept, good rejected, bad rejected, bad kept
        candidates: vec![
            cand(Some(0), true, true),
            cand(Some(1), false, true),
            cand(None, false, false),
            cand(Some(1), true, false),
        ],
        chosen: chosen(true, false, 1.2),
        requests: vec![
            RequestOutcome {
                mode: 0,
                raw_matching: 4,
                total: 4,
                executed_matches: true,
            },
            RequestOutcome {
                mode: 1,
                raw_matching: 1,
                total: 4,
                executed_matches: false,
            },
        ],
    };
    let b = SceneOutcome {
        expert_counts: vec![2, 0],
        both_routes: false,
        candidates: vec![
            cand(Some(0), false, false),
            cand(Some(0), false, false),
            cand(Some(1), false, true),
            cand(Some(0), false, false),
        ],
        chosen: None,
        requests: vec![RequestOutcome {
            mode: 0,
            raw_matching: 2,
            total: 4,
            executed_matches: false,
        }],
    };
    let c = SceneOutcome {
        chosen: chosen(false, true, 3.0),
        ..b.clone()
    };
    let m = RowMetrics::compute(&[a, b, c]);
    assert_eq!(m.scenes, 3);
    let e = &m.executed;
    assert!((e.success_rate - 1.0 / 3.0).abs() < 1e-12);
    assert_eq!((e.chosen_collisions, e.no_plan, e.goal_misses), (1, 1, 1));
    assert_eq!((e.time_ratio_p50, e.time_ratio_p90), (Some(1.2), Some(3.0)));
    assert_eq!(e.with_reference, 2);
    assert_eq!(m.filter.rejections.get("collision"), Some(&10));
    // Pipeline valid: kept and good, 1 of 12; raw valid: 4 of 12.
    assert!((m.pipeline.valid_rate - 1.0 / 12.0).abs() < 1e-12);
    assert!((m.raw.valid_rate - 4.0 / 12.0).abs() < 1e-12);
    // Kept: 2 (both in a), 1 of them colliding.
    assert_eq!(m.pipeline.collision_rate, Some(0.5));
    assert_eq!(m.filter.kept_colliding, 1);
    // Good: 2 in a, 1 in b, 1 in c; kept: 1. Bad: 2 in a (1 rejected), 3 + 3 rejected.
    assert_eq!(m.filter.keep_rate, Some(0.25));
    assert_eq!(m.filter.recall, Some(7.0 / 8.0));
    // Raw requests: (1 + 0.25 + 0.5 + 0.5) / 4; executed: 1 of 4.
    assert_eq!(m.raw.request_accuracy, Some(2.25 / 4.0));
    assert_eq!(m.pipeline.request_accuracy, Some(0.25));
    assert_eq!(m.pipeline.mode_coverage, Some(0.0));
    assert_eq!(m.raw.mode_coverage, Some(1.0));
    assert!(m.raw.mode_kl_mean.unwrap() > 0.0);
    // Goal errors: pipeline over the 2 executed plans (0 and 5 cm).
    assert_eq!(m.pipeline.goal_error_m_p90, Some(0.05));

    let empty = RowMetrics::compute(&[]);
    assert_eq!(empty.executed.success_rate, 0.0);
    assert_eq!(
        (empty.pipeline.mode_coverage, empty.filter.recall),
        (None, None)
    );
}

#[test]
fn auroc_counts_ordered_pairs() {
    assert_eq!(auroc([(0.1, false), (0.2, false), (0.3, true)]), Some(1.0));
    assert_eq!(auroc([(0.3, false), (0.1, true)]), Some(0.0));
    let mixed = [(0.1, false), (0.3, false), (0.2, true), (0.4, true)];
    assert_eq!(auroc(mixed), Some(0.75));
    assert_eq!(auroc([(0.2, false), (0.2, true)]), Some(0.5));
    assert_eq!(auroc([(0.2, false)]), None);
    assert_eq!(auroc([(f64::NAN, true), (0.1, false)]), None);
}

#[test]
fn nearest_rank_percentiles() {
    let v: Vec<f64> = (1..=100).map(f64::from).collect();
    assert_eq!(percentile(&v, 0.5), Some(50.0));
    assert_eq!(percentile(&v, 0.99), Some(99.0));
    assert_eq!(percentile(&v[..10], 0.99), Some(10.0));
    assert_eq!(percentile(&[5.0], 0.5), Some(5.0));
    assert_eq!(percentile(&[], 0.5), None);
}
