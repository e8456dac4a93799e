//! The simulator's parameters (`diffusion_planner_sim`), validated like the node's: a missing
//! required key, a wrong type, a value out of range or an unknown key fails the start naming
//! the key. Every key: docs/SIM.md.

use std::path::{Path, PathBuf};

use crate::robot::{CircleObstacle, RobotDescription};
use crate::ros::geometric_source::SYNTHETIC_MODEL_PATH;
use crate::ros::params::{ParamMap, ParamValue, Reader};
use crate::sim::JtcSettings;
use crate::{Error, Result};

/// The simulator's node name.
pub const SIM_NODE_NAME: &str = "diffusion_planner_sim";

/// Defaults of the optional parameters (docs/SIM.md).
pub mod defaults {
    pub const UPDATE_RATE_HZ: f64 = 100.0;
    pub const PUBLISH_CLOCK: bool = false;
    pub const REAL_TIME_FACTOR: f64 = 1.0;
    pub const INTERPOLATE_FROM_DESIRED_STATE: bool = true;
    pub const ALLOW_PARTIAL_JOINTS_GOAL: bool = false;
    pub const ALLOW_NONZERO_VELOCITY_AT_TRAJECTORY_END: bool = false;
    pub const BASE_FRAME: &str = "base_link";
    pub const GOAL_TOLERANCE_M: f64 = 0.02;
    pub const DIAGNOSTICS_RATE_HZ: f64 = 2.0;
    pub const ACCELERATION_LIMIT_SCALE: f64 = 1.0;
}

/// Every key the simulator accepts.
pub const SIM_PARAMETER_KEYS: &[&str] = &[
    "model_path",
    "joints",
    "initial_positions",
    "update_rate_hz",
    "publish_clock",
    "real_time_factor",
    "acceleration_limit_scale",
    "interpolate_from_desired_state",
    "allow_partial_joints_goal",
    "allow_nonzero_velocity_at_trajectory_end",
    "base_frame",
    "goal_tolerance_m",
    "diagnostics_rate_hz",
    "static_obstacles",
    "use_sim_time",
];

/// The validated parameters of the simulator.
#[derive(Debug, Clone, PartialEq)]
pub struct SimParams {
    /// Where the robot description comes from: a model folder (its `model.yaml`), a YAML file
    /// with a top-level `robot:` section (e.g. `config/data_planar_arm.yaml`), or `synthetic`
    /// (the reference arm).
    pub model_path: PathBuf,
    /// The controller's joints, in its order (the order of `/joint_states`).
    pub joints: Vec<String>,
    /// Start positions, controller order, radians (all zero when absent).
    pub initial_positions: Vec<f64>,
    /// Controller manager update rate: joint states, commands, integration.
    pub update_rate_hz: f64,
    /// Own the time: publish `/clock`, advancing one period per update.
    pub publish_clock: bool,
    /// With `publish_clock`: simulated seconds per wall-clock second.
    pub real_time_factor: f64,
    /// The joints' acceleration limits as a multiple of the robot description's.
    pub acceleration_limit_scale: f64,
    pub interpolate_from_desired_state: bool,
    pub allow_partial_joints_goal: bool,
    pub allow_nonzero_velocity_at_trajectory_end: bool,
    /// Frame of goals and obstacles.
    pub base_frame: String,
    /// End-effector distance to the goal that counts as reached (at rest).
    pub goal_tolerance_m: f64,
    pub diagnostics_rate_hz: f64,
    /// Obstacles always present besides the `obstacles` topic.
    pub static_obstacles: Vec<CircleObstacle>,
}

impl SimParams {
    /// Builds and validates the parameters (every problem reported, each naming its key).
    pub fn from_map(map: &ParamMap) -> Result<SimParams> {
        let mut r = Reader::new(map);
        for (key, value) in map {
            if *value == ParamValue::NotSet
                && key != "static_obstacles"
                && key != "initial_positions"
            {
                r.fail(key, "has no value (an empty list has no type in ROS 2)");
            }
        }
        let joints = r.string_array("joints");
        let initial_positions = match r.get("initial_positions") {
            None => vec![0.0; joints.len()],
            Some(ParamValue::DoubleArray(v)) => v,
            Some(other) => {
                r.wrong_type("initial_positions", "a double array", &other);
                Vec::new()
            }
        };
        let params = SimParams {
            model_path: PathBuf::from(r.string("model_path", None)),
            joints,
            initial_positions,
            update_rate_hz: r.positive("update_rate_hz", defaults::UPDATE_RATE_HZ),
            publish_clock: r.bool("publish_clock", defaults::PUBLISH_CLOCK),
            real_time_factor: r.positive("real_time_factor", defaults::REAL_TIME_FACTOR),
            acceleration_limit_scale: r.positive(
                "acceleration_limit_scale",
                defaults::ACCELERATION_LIMIT_SCALE,
            ),
            interpolate_from_desired_state: r.bool(
                "interpolate_from_desired_state",
                defaults::INTERPOLATE_FROM_DESIRED_STATE,
            ),
            allow_partial_joints_goal: r.bool(
                "allow_partial_joints_goal",
                defaults::ALLOW_PARTIAL_JOINTS_GOAL,
            ),
            allow_nonzero_velocity_at_trajectory_end: r.bool(
                "allow_nonzero_velocity_at_trajectory_end",
                defaults::ALLOW_NONZERO_VELOCITY_AT_TRAJECTORY_END,
            ),
            base_frame: r.string("base_frame", Some(defaults::BASE_FRAME)),
            goal_tolerance_m: r.positive("goal_tolerance_m", defaults::GOAL_TOLERANCE_M),
            diagnostics_rate_hz: r.positive("diagnostics_rate_hz", defaults::DIAGNOSTICS_RATE_HZ),
            static_obstacles: r
                .obstacles("static_obstacles")
                .into_iter()
                .map(|o| CircleObstacle {
                    center_m: [o.x_m, o.y_m],
                    radius_m: o.radius_m,
                })
                .collect(),
        };
        if r.bool("use_sim_time", false) {
            r.fail(
                "use_sim_time",
                "the simulator does not follow another clock; set publish_clock: true to make \
                 it the clock of the other nodes",
            );
        }
        params.check_values(&mut r);
        for key in map.keys() {
            if !SIM_PARAMETER_KEYS.contains(&key.as_str()) {
                r.fail(
                    key,
                    format!(
                        "unknown parameter; the simulator accepts: {}",
                        SIM_PARAMETER_KEYS.join(", ")
                    ),
                );
            }
        }
        r.finish()?;
        Ok(params)
    }

    fn check_values(&self, r: &mut Reader<'_>) {
        if r.ok("model_path") && self.model_path.as_os_str().is_empty() {
            r.fail(
                "model_path",
                "is empty; give a model folder, a YAML file with `robot:` or `synthetic`",
            );
        }
        if r.ok("joints") {
            if let Err(e) = self.jtc_settings().validate() {
                r.fail("joints", e.to_string());
            }
        }
        if r.ok("joints")
            && r.ok("initial_positions")
            && self.initial_positions.len() != self.joints.len()
        {
            r.fail(
                "initial_positions",
                format!(
                    "has {} values for {} joints",
                    self.initial_positions.len(),
                    self.joints.len()
                ),
            );
        }
        if r.ok("initial_positions") && !self.initial_positions.iter().all(|v| v.is_finite()) {
            r.fail("initial_positions", "must be finite");
        }
        if r.ok("real_time_factor") && !self.publish_clock && self.real_time_factor != 1.0 {
            r.fail(
                "real_time_factor",
                format!(
                    "is {} but publish_clock is false: on the system clock the simulation runs \
                     in real time",
                    self.real_time_factor
                ),
            );
        }
        if r.ok("base_frame") && self.base_frame.trim().is_empty() {
            r.fail("base_frame", "is empty");
        }
        if r.ok("diagnostics_rate_hz")
            && r.ok("update_rate_hz")
            && self.diagnostics_rate_hz > self.update_rate_hz
        {
            r.fail(
                "diagnostics_rate_hz",
                format!(
                    "is {} Hz, above update_rate_hz ({} Hz)",
                    self.diagnostics_rate_hz, self.update_rate_hz
                ),
            );
        }
    }

    /// The simulated controller's settings.
    pub fn jtc_settings(&self) -> JtcSettings {
        JtcSettings {
            joints: self.joints.clone(),
            allow_partial_joints_goal: self.allow_partial_joints_goal,
            allow_nonzero_velocity_at_trajectory_end: self.allow_nonzero_velocity_at_trajectory_end,
            interpolate_from_desired_state: self.interpolate_from_desired_state,
            effort_command_interface: false,
        }
    }

    pub fn update_period_secs(&self) -> f64 {
        1.0 / self.update_rate_hz
    }
}

/// The robot description named by `model_path` (see [`SimParams::model_path`]), validated.
pub fn load_robot(model_path: &Path) -> Result<RobotDescription> {
    if model_path.as_os_str() == SYNTHETIC_MODEL_PATH {
        return Ok(RobotDescription::planar_2link());
    }
    let file = if model_path.is_dir() {
        model_path.join(crate::model::MODEL_YAML)
    } else {
        model_path.to_path_buf()
    };
    let text = std::fs::read_to_string(&file).map_err(|e| Error::io(&file, e))?;
    let yaml: serde_yaml::Value = serde_yaml::from_str(&text).map_err(|source| Error::Yaml {
        path: file.clone(),
        source,
    })?;
    let section = yaml.get("robot").cloned().ok_or_else(|| {
        Error::config(
            "model_path",
            format!("{} has no top-level `robot:` section", file.display()),
        )
    })?;
    let robot: RobotDescription =
        serde_yaml::from_value(section).map_err(|source| Error::Yaml {
            path: file.clone(),
            source,
        })?;
    robot.validate()?;
    Ok(robot)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(entries: &[(&str, ParamValue)]) -> ParamMap {
        entries
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect()
    }

    fn minimal() -> Vec<(&'static str, ParamValue)> {
        vec![
            ("model_path", ParamValue::String("synthetic".into())),
            (
                "joints",
                ParamValue::StringArray(vec!["shoulder".into(), "elbow".into()]),
            ),
        ]
    }

    #[test]
    fn defaults_fill_the_optional_keys() {
        let p = SimParams::from_map(&map(&minimal())).unwrap();
        assert_eq!(p.initial_positions, vec![0.0, 0.0]);
        assert_eq!(p.update_rate_hz, 100.0);
        assert!(!p.publish_clock && p.interpolate_from_desired_state);
        assert_eq!(p.real_time_factor, 1.0);
        assert_eq!(p.base_frame, "base_link");
        assert!(p.static_obstacles.is_empty());
    }

    #[test]
    fn bad_values_name_their_keys() {
        let mut entries = minimal();
        entries.push(("initial_positions", ParamValue::DoubleArray(vec![0.1])));
        entries.push(("update_rate_hz", ParamValue::Integer(100)));
        entries.push(("real_time_factor", ParamValue::Double(2.0)));
        entries.push(("colour", ParamValue::String("red".into())));
        entries.push(("use_sim_time", ParamValue::Bool(true)));
        let err = SimParams::from_map(&map(&entries)).unwrap_err().to_string();
        for key in [
            "`initial_positions`",
            "`update_rate_hz`",
            "write 100.0",
            "`real_time_factor`",
            "`colour`",
            "`use_sim_time`",
        ] {
            assert!(err.contains(key), "{key} missing in: {err}");
        }
        let err = SimParams::from_map(&map(&minimal()[..1]))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("`joints`") && err.contains("required"),
            "{err}"
        );
    }

    #[test]
    fn real_time_factor_needs_the_own_clock() {
        let mut entries = minimal();
        entries.push(("publish_clock", ParamValue::Bool(true)));
        entries.push(("real_time_factor", ParamValue::Double(4.0)));
        let p = SimParams::from_map(&map(&entries)).unwrap();
        assert_eq!(p.real_time_factor, 4.0);
    }

    /// The keys of the table under `### Parameters` in docs/SIM.md.
    fn documented_keys() -> Vec<String> {
        let text =
            std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/SIM.md"))
                .unwrap();
        let section = text.split("### Parameters").nth(1).unwrap();
        let section = section.split("\n## ").next().unwrap();
        section
            .lines()
            .filter_map(|l| l.strip_prefix("| `"))
            .filter_map(|l| l.split('`').next())
            .map(str::to_string)
            .collect()
    }

    #[test]
    fn the_documentation_lists_every_key_and_the_shipped_config_is_valid() {
        assert_eq!(documented_keys(), SIM_PARAMETER_KEYS);
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let map = crate::ros::params::load_params_file(
            &root.join("config/sim_planar_arm.yaml"),
            SIM_NODE_NAME,
            "",
        )
        .unwrap();
        let params = SimParams::from_map(&map).unwrap();
        assert_eq!(params.joints, ["shoulder", "elbow"]);
        assert_eq!(params.update_rate_hz, defaults::UPDATE_RATE_HZ);
        let robot = load_robot(&root.join("config/data_planar_arm.yaml")).unwrap();
        let arm = crate::robot::PlanarArm::new(robot).unwrap();
        assert!(arm.within_limits(&params.initial_positions));
    }

    #[test]
    fn the_robot_comes_from_a_model_folder_a_config_or_synthetic() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let from_config = load_robot(&root.join("config/data_planar_arm.yaml")).unwrap();
        assert_eq!(from_config, RobotDescription::planar_2link());
        assert_eq!(
            load_robot(Path::new("synthetic")).unwrap(),
            RobotDescription::planar_2link()
        );
        let dir = tempfile::tempdir().unwrap();
        let spec = crate::planning::tiny_model_spec(8, &[]);
        crate::planning::random_model_folder(dir.path(), &spec, 1).unwrap();
        assert_eq!(load_robot(dir.path()).unwrap(), spec.robot);
        let err = load_robot(&root.join("config/planar_arm.yaml"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("`robot:`"), "{err}");
    }
}
