//! The tracking monitor: compares the measured joint positions with the commanded ones every
//! control tick. Two faults (docs/NODE.md, "Safety rules"):
//! - **off the command**: a joint farther than `tracking_tolerance_rad` from its commanded
//!   position (the controller aborted, a collision, an e-stop, the arm pushed);
//! - **not following**: over `tracking_timeout_secs` the command moved but the measured state
//!   did not follow (a controller switched off or inactive, whose states still arrive). The
//!   window slides (it ends at every check) and goes on for one timeout after the command came
//!   to rest, so a controller that drops out near the end of a motion is caught too.
//!
//! On a fault the core holds at the *measured* state and replans from it; stitching onto the
//! commanded state is only done while it agrees with the measured one.

/// Of the commanded motion over the timeout window, the measured state must have moved at least
/// this fraction, else the controller does not follow.
const FOLLOW_FRACTION: f64 = 0.1;
/// A commanded motion smaller than this over the window (radians) is too small to judge.
const MIN_WINDOW_MOTION_RAD: f64 = 1e-3;

/// Settings of the monitor (from the node parameters).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TrackingSettings {
    /// Largest |measured - commanded| per joint, radians.
    pub tolerance_rad: f64,
    /// Window of the not-following check, seconds.
    pub timeout_secs: f64,
}

impl Default for TrackingSettings {
    fn default() -> Self {
        TrackingSettings {
            tolerance_rad: 0.1,
            timeout_secs: 0.5,
        }
    }
}

/// A tracking fault.
#[derive(Debug, Clone, PartialEq)]
pub enum TrackingFault {
    /// `joint` is `error_rad` from its command.
    OffCommand { joint: usize, error_rad: f64 },
    /// Over `window_secs` the command moved `commanded_rad`, the robot `measured_rad`.
    NotFollowing {
        window_secs: f64,
        commanded_rad: f64,
        measured_rad: f64,
    },
}

#[derive(Debug, Clone)]
struct Sample {
    secs: f64,
    measured: Vec<f64>,
    commanded: Vec<f64>,
}

/// See the module docs.
#[derive(Debug, Clone, Default)]
pub struct TrackingMonitor {
    settings: TrackingSettings,
    /// The checks of the last timeout (the oldest one at least a timeout old, when there is
    /// one), while the command moves and for one timeout after.
    history: std::collections::VecDeque<Sample>,
    /// Samples that left the window, reused for the next checks (no allocation per tick once
    /// the window is full).
    spare: Vec<Sample>,
    /// The last check at which the command moved.
    last_moving_secs: Option<f64>,
    /// The largest error of the last check, radians (diagnostics).
    last_error_rad: Option<f64>,
}

fn max_abs_diff(a: &[f64], b: &[f64]) -> (usize, f64) {
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .enumerate()
        .fold((0, 0.0), |best, (j, d)| {
            if d > best.1 || d.is_nan() {
                (j, d)
            } else {
                best
            }
        })
}

impl TrackingMonitor {
    pub fn new(settings: TrackingSettings) -> Self {
        TrackingMonitor {
            settings,
            ..Default::default()
        }
    }

    pub fn settings(&self) -> TrackingSettings {
        self.settings
    }

    /// The largest |measured - commanded| of the last check, radians.
    pub fn last_error_rad(&self) -> Option<f64> {
        self.last_error_rad
    }

    /// Forgets the window (after a fault or a hold at the measured state).
    pub fn reset(&mut self) {
        self.spare.extend(self.history.drain(..));
        self.last_moving_secs = None;
    }

    /// One check at `now`: `measured` and `commanded` positions (robot order) at the same time;
    /// `moving`: the command is a motion (not a hold).
    pub fn check(
        &mut self,
        now: f64,
        measured: &[f64],
        commanded: &[f64],
        moving: bool,
    ) -> Option<TrackingFault> {
        let (joint, error_rad) = max_abs_diff(measured, commanded);
        self.last_error_rad = Some(error_rad);
        if !(error_rad <= self.settings.tolerance_rad) {
            self.reset();
            return Some(TrackingFault::OffCommand { joint, error_rad });
        }
        let timeout = self.settings.timeout_secs;
        if moving {
            self.last_moving_secs = Some(now);
        }
        match self.last_moving_secs {
            Some(t) if now - t <= timeout => {}
            _ => {
                self.reset();
                return None;
            }
        }
        let mut sample = self.spare.pop().unwrap_or_else(|| Sample {
            secs: now,
            measured: Vec::with_capacity(measured.len()),
            commanded: Vec::with_capacity(commanded.len()),
        });
        sample.secs = now;
        sample.measured.clear();
        sample.measured.extend_from_slice(measured);
        sample.commanded.clear();
        sample.commanded.extend_from_slice(commanded);
        self.history.push_back(sample);
        while self.history.len() >= 2 && now - self.history[1].secs >= timeout {
            self.spare.extend(self.history.pop_front());
        }
        let oldest = &self.history[0];
        let window_secs = now - oldest.secs;
        if window_secs < timeout {
            return None;
        }
        let (_, commanded_rad) = max_abs_diff(commanded, &oldest.commanded);
        let (_, measured_rad) = max_abs_diff(measured, &oldest.measured);
        let fault =
            commanded_rad > MIN_WINDOW_MOTION_RAD && measured_rad < FOLLOW_FRACTION * commanded_rad;
        if !fault {
            return None;
        }
        self.reset();
        Some(TrackingFault::NotFollowing {
            window_secs,
            commanded_rad,
            measured_rad,
        })
    }
}

impl std::fmt::Display for TrackingFault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TrackingFault::OffCommand { joint, error_rad } => write!(
                f,
                "joint {joint} is {error_rad:.3} rad from its commanded position"
            ),
            TrackingFault::NotFollowing {
                window_secs,
                commanded_rad,
                measured_rad,
            } => write!(
                f,
                "the controller does not follow: in {window_secs:.2} s the command moved \
                 {commanded_rad:.3} rad, the robot {measured_rad:.4} rad"
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_past_the_tolerance_and_a_robot_that_does_not_follow_are_faults() {
        let mut m = TrackingMonitor::new(TrackingSettings {
            tolerance_rad: 0.05,
            timeout_secs: 0.2,
        });
        assert_eq!(m.check(0.0, &[0.0, 0.0], &[0.01, -0.04], true), None);
        assert_eq!(
            m.check(0.1, &[0.0, 0.0], &[0.01, -0.06], true),
            Some(TrackingFault::OffCommand {
                joint: 1,
                error_rad: 0.06
            })
        );
        m.reset();
        // The command creeps at 0.1 rad/s, the robot stands still: within the tolerance but
        // detected after the timeout.
        let mut fault = None;
        for k in 0..=30 {
            let t = k as f64 * 0.02;
            fault = fault.or(m.check(t, &[0.0, 0.0], &[0.1 * (t - 0.2).max(0.0), 0.0], true));
            if fault.is_some() {
                assert!(t <= 0.2 + 0.2 + 1e-9, "detected within two windows: {t}");
                break;
            }
        }
        assert!(
            matches!(fault, Some(TrackingFault::NotFollowing { .. })),
            "{fault:?}"
        );
        // A robot that follows with a lag is fine; so is a hold.
        let mut m = TrackingMonitor::new(TrackingSettings {
            tolerance_rad: 0.05,
            timeout_secs: 0.2,
        });
        for k in 0..100 {
            let t = k as f64 * 0.02;
            assert_eq!(m.check(t, &[0.5 * (t - 0.04)], &[0.5 * t], true), None);
        }
        assert_eq!(m.check(3.0, &[1.0], &[1.0], false), None);
        assert!(matches!(
            m.check(3.1, &[f64::NAN], &[1.0], false),
            Some(TrackingFault::OffCommand { joint: 0, .. })
        ));
    }

    #[test]
    fn a_controller_dropping_out_near_the_end_of_a_motion_is_detected() {
        // The arm stops following 50 ms before the command comes to rest, 2.8 mrad short (within
        // the tolerance). Fixed windows, restarted every timeout, missed it whenever the window
        // that saw the dropout also saw most of the motion and the next saw none.
        let settings = TrackingSettings {
            tolerance_rad: 0.05,
            timeout_secs: 0.25,
        };
        let command = |t: f64| {
            let u = (t / 0.5).clamp(0.0, 1.0);
            0.1 * (3.0 * u * u - 2.0 * u * u * u)
        };
        for start in [0.0, 0.01, 0.05, 0.1, 0.2] {
            let mut m = TrackingMonitor::new(settings);
            let mut fault = None;
            for k in 0..=60 {
                let t = start + k as f64 * 0.02;
                let measured = command(t.min(0.45));
                // After its end the command holds (not a motion).
                let moving = t <= 0.5 + 1e-9;
                fault = fault.or(m.check(t, &[measured], &[command(t)], moving));
                if fault.is_some() {
                    break;
                }
            }
            assert!(
                matches!(fault, Some(TrackingFault::NotFollowing { .. })),
                "first check at {start}: {fault:?}"
            );
        }
    }

    #[test]
    fn a_full_window_reuses_its_samples() {
        // 0.5 s at 50 Hz: the window holds about 26 samples; after it is full, each check takes
        // a sample that left it instead of allocating.
        let mut m = TrackingMonitor::new(TrackingSettings::default());
        for k in 0..100 {
            let t = k as f64 * 0.02;
            m.check(t, &[0.5 * t, 0.0], &[0.5 * t, 0.0], true);
        }
        let pointers: Vec<*const f64> = m
            .history
            .iter()
            .chain(&m.spare)
            .map(|s| s.measured.as_ptr())
            .collect();
        for k in 100..300 {
            let t = k as f64 * 0.02;
            m.check(t, &[0.5 * t, 0.0], &[0.5 * t, 0.0], true);
        }
        assert!(m.history.len() <= 27, "{}", m.history.len());
        for sample in m.history.iter().chain(&m.spare) {
            assert!(
                pointers.contains(&sample.measured.as_ptr()),
                "a new buffer was allocated"
            );
        }
    }
}
