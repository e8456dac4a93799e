//! Cross-module tests of the planning pipeline, on the reference arm and the `blocked` example
//! scene with synthetic candidate bundles.

mod observation;
mod pipeline;
mod verify;

use crate::planning::SyntheticSource;
use crate::robot::{PlanarArm, RobotDescription};
use crate::task::Scene;

pub(super) fn arm() -> PlanarArm {
    PlanarArm::new(RobotDescription::planar_2link()).unwrap()
}

/// `config/scenes/blocked.yaml`.
pub(super) fn blocked_scene() -> Scene {
    crate::planning::blocked_scene().unwrap()
}

pub(super) fn mode_names() -> Vec<String> {
    vec!["elbow_down".into(), "elbow_up".into()]
}

/// See [`crate::planning::blocked_scene_source`].
pub(super) fn blocked_source(
    horizon: usize,
    weights: (usize, usize, usize),
    variance: (f64, f64, f64),
) -> SyntheticSource {
    crate::planning::blocked_scene_source(horizon, weights, variance).unwrap()
}
