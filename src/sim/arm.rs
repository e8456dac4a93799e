//! The simulated joints: position-commanded, tracking ideally within velocity, acceleration and
//! position limits.
//!
//! Model (documented in docs/SIM.md): as ros2_control's mock hardware (`mock_components/
//! GenericSystem`, which reads back the last command), each joint reaches the commanded
//! position by the next update, one period later, **if the robot's limits allow it**. Per joint
//! and update over `dt`:
//! 1. the command's own velocity `v_cmd = (c_k - c_{k-1}) / dt` and the lag `e = c_{k-1} - q`
//!    (how far the joint is behind the previous command; 0 while it tracks);
//! 2. the wanted velocity `v = v_cmd + sign(e) min(|e| / dt, sqrt(2 a_max |e|))`, which is
//!    `(c_k - q) / dt` (exact tracking) while the lag is small, and otherwise closes the lag no
//!    faster than it can brake (so a step command does not overshoot and oscillate);
//! 3. `v` limited to `v_prev ± a_max dt`, then to `± v_max`; `q += v dt`, kept inside the
//!    position limits (velocity 0 at a limit).
//!
//! Here `c_k` is the command to reach by the end of this step (set at the previous update) and
//! `c_{k-1}` the one before. The reported velocity is that `v`. The tracking error is
//! `max_j |c_k - q|` after the step: zero when the command is feasible, the shortfall when a
//! limit saturated.

use crate::{Error, Result};

/// Limits of one joint (radians, rad/s, rad/s²).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct JointLimits {
    pub lower_rad: f64,
    pub upper_rad: f64,
    pub max_velocity_rad_s: f64,
    pub max_acceleration_rad_s2: f64,
}

/// What one step did.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct StepReport {
    /// The largest |command - position| after the step, radians.
    pub tracking_error_rad: f64,
    /// Whether a velocity, acceleration or position limit changed the motion.
    pub saturated: bool,
}

/// See the module docs.
#[derive(Debug, Clone)]
pub struct SimulatedJoints {
    limits: Vec<JointLimits>,
    positions: Vec<f64>,
    velocities: Vec<f64>,
    /// The command of this step and of the step before.
    command: Vec<f64>,
    previous_command: Vec<f64>,
}

/// Relative slack before a clamp counts as saturation (rounding of exact tracking).
const SATURATION_SLACK: f64 = 1e-9;

impl SimulatedJoints {
    /// Joints at rest at `initial_positions`, which must be finite and inside the limits.
    pub fn new(limits: Vec<JointLimits>, initial_positions: Vec<f64>) -> Result<Self> {
        if limits.len() != initial_positions.len() {
            return Err(Error::Shape {
                what: "initial positions".into(),
                expected: vec![limits.len()],
                found: vec![initial_positions.len()],
            });
        }
        for (i, (l, &q)) in limits.iter().zip(&initial_positions).enumerate() {
            if !(q >= l.lower_rad && q <= l.upper_rad) {
                return Err(Error::config(
                    "initial_positions",
                    format!(
                        "joint {i} at {q} rad is outside its limits [{}, {}]",
                        l.lower_rad, l.upper_rad
                    ),
                ));
            }
        }
        let n = limits.len();
        Ok(SimulatedJoints {
            limits,
            velocities: vec![0.0; n],
            command: initial_positions.clone(),
            previous_command: initial_positions.clone(),
            positions: initial_positions,
        })
    }

    /// Multiplies every acceleration limit by `scale` (> 0; 1 is the robot description's
    /// limit, a larger value models actuators stronger than the planning limit).
    pub fn scale_acceleration_limits(&mut self, scale: f64) -> Result<()> {
        if !(scale > 0.0 && scale.is_finite()) {
            return Err(Error::config(
                "acceleration_limit_scale",
                format!("must be finite and > 0, found {scale}"),
            ));
        }
        for l in &mut self.limits {
            l.max_acceleration_rad_s2 *= scale;
        }
        Ok(())
    }

    pub fn positions(&self) -> &[f64] {
        &self.positions
    }

    pub fn velocities(&self) -> &[f64] {
        &self.velocities
    }

    /// The position command for the next step (a non-finite or missing value keeps the
    /// joint's previous command).
    pub fn command(&mut self, positions: &[f64]) {
        self.previous_command = self.command.clone();
        for (j, c) in self.command.iter_mut().enumerate() {
            if let Some(&p) = positions.get(j).filter(|p| p.is_finite()) {
                *c = p;
            }
        }
    }

    /// Moves the joints over `dt_secs` toward the command (see the module docs).
    pub fn step(&mut self, dt_secs: f64) -> StepReport {
        let mut report = StepReport::default();
        if !(dt_secs > 0.0 && dt_secs.is_finite()) {
            return report;
        }
        for j in 0..self.positions.len() {
            let l = self.limits[j];
            let q = self.positions[j];
            let v_cmd = (self.command[j] - self.previous_command[j]) / dt_secs;
            let lag = self.previous_command[j] - q;
            let catch_up = (lag.abs() / dt_secs)
                .min((2.0 * l.max_acceleration_rad_s2 * lag.abs()).sqrt())
                .copysign(lag);
            let wanted = v_cmd + catch_up;
            let dv = l.max_acceleration_rad_s2 * dt_secs;
            let v_prev = self.velocities[j];
            let mut v = wanted
                .clamp(v_prev - dv, v_prev + dv)
                .clamp(-l.max_velocity_rad_s, l.max_velocity_rad_s);
            let slack = SATURATION_SLACK * (1.0 + wanted.abs());
            let mut saturated = (v - wanted).abs() > slack;
            let mut q_next = q + v * dt_secs;
            if q_next < l.lower_rad || q_next > l.upper_rad {
                q_next = q_next.clamp(l.lower_rad, l.upper_rad);
                v = 0.0;
                saturated = true;
            }
            if !saturated {
                // Exact tracking: land on the command, not a rounding away from it.
                if (q_next - self.command[j]).abs() <= slack * dt_secs {
                    q_next = self.command[j];
                }
            }
            self.positions[j] = q_next;
            self.velocities[j] = v;
            report.saturated |= saturated;
            report.tracking_error_rad = report
                .tracking_error_rad
                .max((self.command[j] - q_next).abs());
        }
        report
    }
}
