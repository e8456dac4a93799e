//! The `dplan modes --quick` run, seeded, with assertions on the direction of each effect (not
//! on exact numbers, which depend on the CPU's floating-point kernels). One test, so the run
//! (about a minute on 2 cores) is paid once.

use diffusion_planner::experiments::data::DatasetKind;
use diffusion_planner::experiments::{configure_cpu_threads, ModesArgs};

#[test]
fn quick_run_shows_every_effect() {
    // Before any candle operation (this binary has no other test).
    configure_cpu_threads();
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("modes.json");
    let args = ModesArgs {
        quick: true,
        report: Some(dir.path().join("report")),
        json: Some(json.clone()),
        seed: 0,
        device: diffusion_planner::device::DeviceSpec::Cpu,
    };
    let report = diffusion_planner::experiments::run(&args).unwrap();

    // Diffusion keeps every mode.
    for kind in DatasetKind::ALL {
        let d = report.result(kind, "diffusion_ddpm").unwrap();
        assert_eq!(
            d.metrics.modes_captured, d.metrics.num_modes,
            "{kind:?}: diffusion captured {}",
            d.metrics.modes_captured
        );
    }
    // GMMs with too few components: on the ring they lose modes outright; everywhere they
    // smear the modes (fewer high-quality samples, less even over the modes).
    let ring_k4 = report.result(DatasetKind::Ring8, "gmm_k4").unwrap();
    assert!(
        ring_k4.metrics.modes_captured < 8,
        "ring K=4: {}",
        ring_k4.metrics.modes_captured
    );
    for (kind, small, full) in [
        (DatasetKind::Line3, "gmm_k2", "gmm_k3"),
        (DatasetKind::Ring8, "gmm_k4", "gmm_k8"),
        (DatasetKind::Grid25, "gmm_k9", "gmm_k25"),
    ] {
        let small = &report.result(kind, small).unwrap().metrics;
        let full = &report.result(kind, full).unwrap().metrics;
        let diffusion = &report.result(kind, "diffusion_ddpm").unwrap().metrics;
        assert_eq!(
            full.modes_captured, full.num_modes,
            "{kind:?}: GMM with K = N"
        );
        assert!(
            small.high_quality_fraction + 0.2 < diffusion.high_quality_fraction,
            "{kind:?}: GMM K<N {} vs diffusion {}",
            small.high_quality_fraction,
            diffusion.high_quality_fraction
        );
        assert!(
            small.mode_kl.unwrap() > diffusion.mode_kl.unwrap(),
            "{kind:?}: mode KL"
        );
    }
    // Conditional sampling by mode id lands in the requested mode.
    for kind in DatasetKind::ALL {
        let r = report.result(kind, "diffusion_cfg_s3").unwrap();
        let accuracy = r.conditional.as_ref().unwrap().accuracy.accuracy;
        assert!(
            accuracy >= 0.95,
            "{kind:?}: conditional accuracy {accuracy}"
        );
    }
    // The x̂0-variance filter beats a random filter wherever there is enough to flag.
    let mut judged = 0;
    for kind in DatasetKind::ALL {
        let f = report
            .result(kind, "diffusion_ddpm")
            .unwrap()
            .filter
            .clone()
            .unwrap();
        if f.num_out_of_support >= 20 {
            judged += 1;
            let recall = f.recall.unwrap();
            assert!(
                recall > f.flagged_fraction,
                "{kind:?}: recall {recall} vs random {}",
                f.flagged_fraction
            );
            assert!(
                f.precision.unwrap() > f.random_precision,
                "{kind:?}: precision"
            );
        }
    }
    assert!(
        judged >= 1,
        "no data set had 20 out-of-support samples to judge the filter on"
    );
    // Mode interpolation falls as the modes move apart, and with training.
    let sweep = &report.sweep_distance;
    let (near, far) = (sweep.first().unwrap(), sweep.last().unwrap());
    assert!(near.distance < far.distance);
    assert!(
        far.metrics.interpolation_fraction < near.metrics.interpolation_fraction,
        "interpolation {} at {} vs {} at {}",
        near.metrics.interpolation_fraction,
        near.distance,
        far.metrics.interpolation_fraction,
        far.distance
    );
    let steps = &report.sweep_training_steps;
    assert!(
        steps.last().unwrap().metrics.interpolation_fraction
            < steps.first().unwrap().metrics.interpolation_fraction
    );

    // The files: JSON keyed by data set and method, the page and its plots.
    let value: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let hq = &value["results"]["grid25"]["diffusion_ddpm"]["high_quality_fraction"];
    assert!(hq.as_f64().unwrap() > 0.0);
    assert!(value["results"]["ring8"]["gmm_k4"]["modes_captured"]
        .as_u64()
        .is_some());
    let page = std::fs::read_to_string(dir.path().join("report/README.md")).unwrap();
    for file in [
        "line3.png",
        "ring8.png",
        "grid25.png",
        "sweep_distance.png",
        "filter.png",
    ] {
        assert!(page.contains(file), "{file} not linked");
        assert!(
            dir.path().join("report").join(file).exists(),
            "{file} missing"
        );
    }
}
