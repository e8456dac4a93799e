//! The reference task: a 2-link planar arm moving its end effector to a goal point around a
//! circular obstacle.
//!
//! - [`scene`]: scenes (start, goal, obstacles) in YAML and seeded scene sampling.
//! - [`labels`]: the geometric mode label of a path (side of the obstacle, elbow branch), the
//!   condition for mode requests and the ground truth for evaluation.
//! - [`expert`]: the complete configuration-space planner that gives the shortest path of every
//!   homotopy class; [`generate`] turns it into a data set.

pub mod expert;
pub mod generate;
pub mod labels;
pub mod scene;

pub use labels::{
    label_path, labelling_obstacle, path_side, GeometricLabeller, LabelScheme, ModeLabel, Side,
    SideMeasure,
};
pub use scene::{sample_scene, sample_scenes, Scene, SceneSamplerConfig};
