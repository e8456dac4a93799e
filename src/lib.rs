//! # diffusion_planner
//!
//! Plans robot motion with a conditional diffusion model: one batch of K candidate trajectories
//! is sampled (DDIM or DDPM, classifier-free guidance on a mode label), scored (limits,
//! collisions, goal error, smoothness, mode-interpolation score), grouped into modes, and one is
//! chosen, staying in the current mode while it remains valid.
//!
//! Layout (see `docs/ARCHITECTURE.md`):
//! - [`model`]: the 1-D conditional U-Net of Diffusion Policy (LeRobot tensor names), the
//!   denoiser with its optional mode-label embedding, and the model folder format.
//! - [`diffusion`]: noise schedules, DDPM and DDIM steps as diffusers computes them,
//!   classifier-free guidance and the batched, seeded sampler.
//! - [`robot`]: planar serial arm kinematics, joint limits and collision geometry; and the
//!   robot-agnostic layer (any serial arm from URDF + spheres + SRDF + joint_limits.yaml: FK,
//!   Jacobians, IK, 3-D obstacles, swept checks), inspected with `dplan robot` ([`robot_cli`]).
//! - [`planning`]: observation, condition vector, scoring, modes, selection, timing, plans.
//! - [`task`]: the reference task (planar arm around an obstacle), expert demonstrations.
//! - [`train`]: dataset, training loop, EMA, checkpoints.
//! - [`experiments`]: the seed experiments on toy data (`dplan modes`).
//! - [`ros`]: the node. Only its parts behind feature `ros` use r2r; its parameter validation
//!   is plain Rust, tested without ROS.
//!
//! The core has no ROS types and builds and tests with `--no-default-features`.

pub mod bench;
pub mod demo;
pub mod device;
pub mod diffusion;
pub mod error;
pub mod eval;
pub mod experiments;
pub mod model;
pub mod planning;
pub mod plot;
pub mod robot;
pub mod robot_cli;
pub mod sample_cli;
pub mod sim;
pub mod task;
pub mod train;

pub mod ros;

pub use error::{Error, Result};
