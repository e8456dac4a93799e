//! The node's time base: the ROS clock made continuous.
//!
//! Everything the node keeps in time (the trajectory being executed, input ages, timeouts,
//! problem expiry) is in absolute seconds of one clock. When the ROS clock jumps back (sim time
//! reset by a restarted simulation, a looping bag with `--clock`, a system clock stepped back),
//! those times would all lie in the future: the executor would publish its trajectory from its
//! start again, a jump of the commanded position. So the core runs on *node time*: the ROS clock
//! plus an offset that grows by each backward jump, continuous across it. What leaves the node
//! (trajectory and diagnostics stamps) is converted back to ROS time, what comes in (joint-state
//! stamps) into node time. Forward jumps are taken as they come: the controller executes on the
//! same clock, so time that passed has passed for it too.

/// A backward step of the ROS clock larger than this (seconds) is a jump; smaller ones (clock
/// noise) are absorbed by holding node time still.
pub const CLOCK_JUMP_TOLERANCE_SECS: f64 = 0.05;

/// See the module docs.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct TimeBase {
    /// Node time minus ROS time, seconds (>= 0).
    offset_secs: f64,
    /// The last node time returned.
    last_secs: Option<f64>,
}

impl TimeBase {
    /// Node time for the ROS clock reading `ros_secs`, and the size of a backward jump (seconds)
    /// when the clock jumped back since the last reading. Node time never decreases.
    pub fn update(&mut self, ros_secs: f64) -> (f64, Option<f64>) {
        let candidate = ros_secs + self.offset_secs;
        let Some(last) = self.last_secs else {
            self.last_secs = Some(candidate);
            return (candidate, None);
        };
        if candidate >= last {
            self.last_secs = Some(candidate);
            return (candidate, None);
        }
        let back_by = last - candidate;
        if back_by <= CLOCK_JUMP_TOLERANCE_SECS {
            return (last, None);
        }
        // Continue from where node time was: the jump takes no node time.
        self.offset_secs += back_by;
        (last, Some(back_by))
    }

    /// ROS time for node time `node_secs` (outgoing stamps).
    pub fn to_ros(&self, node_secs: f64) -> f64 {
        node_secs - self.offset_secs
    }

    /// Node time for a ROS stamp (incoming stamps); 0 (unstamped) stays 0.
    pub fn from_ros(&self, ros_secs: f64) -> f64 {
        if ros_secs == 0.0 {
            0.0
        } else {
            ros_secs + self.offset_secs
        }
    }

    /// How far node time is ahead of ROS time, seconds (the sum of the backward jumps).
    pub fn offset_secs(&self) -> f64 {
        self.offset_secs
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_time_is_continuous_across_a_backward_jump() {
        let mut t = TimeBase::default();
        assert_eq!(t.update(100.0), (100.0, None));
        assert_eq!(t.update(100.5), (100.5, None));
        // Clock noise: held still.
        assert_eq!(t.update(100.48), (100.5, None));
        assert_eq!(t.update(100.52), (100.52, None));
        // A simulation restarted at 3 s.
        let (now, jump) = t.update(3.0);
        assert_eq!(now, 100.52);
        assert!((jump.unwrap() - 97.52).abs() < 1e-9);
        let (now, jump) = t.update(3.25);
        assert!((now - 100.77).abs() < 1e-9 && jump.is_none());
        assert!((t.to_ros(now) - 3.25).abs() < 1e-9);
        assert!((t.from_ros(3.2) - 100.72).abs() < 1e-9);
        assert_eq!(t.from_ros(0.0), 0.0, "unstamped stays unstamped");
        // Forward jumps are taken as they come.
        let (now, jump) = t.update(13.25);
        assert!((now - 110.77).abs() < 1e-9 && jump.is_none());
    }
}
