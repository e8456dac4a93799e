//! Builds the planner the node runs from its parameters: the candidate source (the model folder
//! at `model_path`, or the geometric source for `model_path: synthetic`), the robot, and the
//! geometric labeller when the model's modes are the reference task's.

use super::geometric_source::{GeometricSource, SYNTHETIC_MODEL_PATH};
use super::params::{NodeParams, SamplerKind, SelectionPolicy};
use crate::planning::{
    CandidateSource, DiffusionSource, Planner, PlannerConfig, SelectionPolicy as Policy,
};
use crate::robot::PlanarArm;
use crate::task::{GeometricLabeller, LabelScheme};
use crate::Result;

/// The planner and what the node needs to know about it.
pub struct NodePlanner {
    pub planner: Planner,
    pub arm: PlanarArm,
    pub mode_names: Vec<String>,
    /// For the start-up log, e.g. `model models/planar_arm (cpu), 4 modes`.
    pub description: String,
}

/// The planner's settings from the node parameters.
pub fn planner_config(params: &NodeParams) -> PlannerConfig {
    PlannerConfig {
        num_samples: params.num_samples,
        seed: params.seed,
        selection_policy: match params.selection {
            SelectionPolicy::Mass => Policy::Mass,
            SelectionPolicy::Cost => Policy::Cost,
        },
        goal_tolerance_m: params.goal_tolerance_m,
        hallucination_threshold: (params.hallucination_threshold > 0.0)
            .then_some(params.hallucination_threshold),
        min_clearance_m: params.min_clearance_m,
        repair: crate::planning::RepairConfig {
            margin_m: params.clearance_margin_m,
            ..Default::default()
        },
        ..PlannerConfig::default()
    }
}

/// Reverse steps whose predicted x̂0 enter the hallucination score (at most `inference_steps`),
/// as `dplan sample` uses by default.
pub const HALLUCINATION_LAST_K: usize = 5;

/// The sampler settings from the node parameters (DDIM with eta 0).
pub fn sampler_settings(params: &NodeParams) -> crate::diffusion::SamplerSettings {
    use crate::diffusion::SamplerKind as Kind;
    crate::diffusion::SamplerSettings {
        kind: match params.sampler {
            SamplerKind::Ddim => Kind::Ddim,
            SamplerKind::Ddpm => Kind::Ddpm,
        },
        inference_steps: params.inference_steps,
        guidance_scale: params.guidance_scale,
        record_last_k: HALLUCINATION_LAST_K.min(params.inference_steps),
        ..crate::diffusion::SamplerSettings::default()
    }
}

/// The labeller whose names are exactly `mode_names`, if any.
pub fn labeller_for(mode_names: &[String]) -> Option<GeometricLabeller> {
    [
        LabelScheme::Side,
        LabelScheme::Elbow,
        LabelScheme::SideElbow,
    ]
    .into_iter()
    .find(|scheme| scheme.names() == mode_names)
    .map(|scheme| GeometricLabeller { scheme })
}

/// Loads the source named by `params.model_path`, checks that `params.joints` are the robot's,
/// and builds the planner.
pub fn build_planner(params: &NodeParams) -> Result<NodePlanner> {
    let (arm, source, description): (PlanarArm, Box<dyn CandidateSource>, String) =
        if params.model_path.as_os_str() == SYNTHETIC_MODEL_PATH {
            let source = GeometricSource::reference()?;
            let arm = source.arm().clone();
            (
                arm,
                Box::new(source),
                "the geometric source (model_path: synthetic, no network)".to_string(),
            )
        } else {
            load_model(params)?
        };
    params.check_joints(&arm.joint_names())?;
    let mode_names = source.mode_names().to_vec();
    let mut planner = Planner::new(arm.clone(), source, planner_config(params))?;
    if let Some(labeller) = labeller_for(&mode_names) {
        planner = planner.with_labeller(Box::new(labeller));
    }
    Ok(NodePlanner {
        planner,
        arm,
        description: format!("{description}, modes {mode_names:?}"),
        mode_names,
    })
}

fn load_model(params: &NodeParams) -> Result<(PlanarArm, Box<dyn CandidateSource>, String)> {
    let source = DiffusionSource::load(&params.model_path, params.device, sampler_settings(params))
        .map_err(|e| {
            crate::Error::config(
                "model_path",
                format!(
                    "cannot load the model folder {}: {e}",
                    params.model_path.display()
                ),
            )
        })?;
    let arm = PlanarArm::new(source.spec().robot.clone())?;
    let description = format!(
        "model `{}` from {} ({}, {} {} steps)",
        source.spec().name,
        params.model_path.display(),
        if source.is_cuda() { "cuda" } else { "cpu" },
        params.sampler,
        params.inference_steps
    );
    Ok((arm, Box::new(source), description))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ros::params::{ParamMap, ParamValue};

    fn params(model_path: &str, joints: &[&str]) -> NodeParams {
        let mut map = ParamMap::new();
        map.insert("model_path".into(), ParamValue::String(model_path.into()));
        map.insert(
            "joints".into(),
            ParamValue::StringArray(joints.iter().map(|s| s.to_string()).collect()),
        );
        map.insert("num_samples".into(), ParamValue::Integer(8));
        NodeParams::from_map(&map).unwrap()
    }

    #[test]
    fn synthetic_builds_the_reference_planner() {
        let built = build_planner(&params("synthetic", &["elbow", "shoulder"])).unwrap();
        assert_eq!(built.arm.joint_names(), ["shoulder", "elbow"]);
        assert_eq!(built.mode_names, ["elbow_up", "elbow_down"]);
        assert_eq!(built.planner.config().num_samples, 8);
        let err = build_planner(&params("synthetic", &["a", "b"]))
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("`joints`"), "{err}");
    }

    #[test]
    fn a_model_folder_builds_a_diffusion_planner_with_its_robot_and_modes() {
        let dir = tempfile::tempdir().unwrap();
        let names: Vec<String> = LabelScheme::Side.names();
        let spec = crate::planning::tiny_model_spec(8, &names);
        crate::planning::random_model_folder(dir.path(), &spec, 1).unwrap();
        let path = dir.path().display().to_string();
        let mut p = params(&path, &["shoulder", "elbow"]);
        p.device = crate::device::DeviceSpec::Cpu;
        let built = build_planner(&p).unwrap();
        assert_eq!(built.mode_names, names);
        assert_eq!(built.arm.joint_names(), ["shoulder", "elbow"]);
        assert!(
            built.description.contains("tiny_random"),
            "{}",
            built.description
        );
        let settings = sampler_settings(&p);
        assert_eq!((settings.inference_steps, settings.record_last_k), (10, 5));

        let err = build_planner(&params("/nonexistent/model", &["shoulder", "elbow"]))
            .err()
            .unwrap()
            .to_string();
        assert!(
            err.contains("`model_path`") && err.contains("/nonexistent/model"),
            "{err}"
        );
        let err = build_planner(&params(&path, &["shoulder", "wrist"]))
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("`joints`"), "{err}");
    }

    #[test]
    fn labellers_match_mode_names_exactly() {
        let names = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            labeller_for(&names(&["left", "right"])).unwrap().scheme,
            LabelScheme::Side
        );
        assert!(labeller_for(&names(&["right", "left"])).is_none());
        assert!(labeller_for(&[]).is_none());
    }
}
