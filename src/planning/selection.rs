//! Choosing one candidate so that the robot does not dither between modes.
//!
//! The [`SelectorState`] remembers the previously chosen path. On the next call its remainder
//! (from the waypoint nearest to the new start on, that waypoint replaced by the start) is
//! compared with every valid candidate after resampling both to the same number of waypoints
//! equally spaced in joint-space arc length; a mode's distance is the mean over its members. The
//! mode nearest to the remainder is the *current mode* if that distance is within
//! `hysteresis_max_distance_rad`. The current mode is kept while it has a valid member (modes are
//! made of valid members only, so: while it exists); otherwise the mode is chosen by
//! [`SelectionPolicy`]. Inside the mode the member with the lowest cost wins (ties: lowest index).

use serde::{Deserialize, Serialize};

use super::modes::Mode;
use super::observation::ModeRequest;
use crate::robot::{distance, JointPath};

/// How to pick a mode when there is no current mode to keep.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SelectionPolicy {
    /// The mode with the most valid members (ties: lower best cost, then lower id).
    #[default]
    Mass,
    /// The mode whose best member has the lowest cost (ties: lower id).
    Cost,
}

/// Why the chosen mode was chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SelectionReason {
    /// The mode nearest to the previous choice still has a valid member (hysteresis).
    KeptCurrentMode,
    /// No current mode: the most massive mode.
    BestByMass,
    /// No current mode: the mode with the cheapest member.
    BestByCost,
}

/// Settings of [`select`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SelectionConfig {
    pub policy: SelectionPolicy,
    /// Keep the current mode while it is valid.
    pub hysteresis: bool,
    /// A mode farther than this (mean arc-length-resampled waypoint distance, rad) from the
    /// previous choice is never the current mode.
    pub hysteresis_max_distance_rad: f64,
}

/// What the selector remembers between calls.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SelectorState {
    reference: Option<JointPath>,
    request: ModeRequest,
}

impl SelectorState {
    /// An empty state (no previous choice).
    pub fn new() -> Self {
        Self::default()
    }

    /// Forgets the previous choice.
    pub fn reset(&mut self) {
        self.reference = None;
    }

    /// The previously chosen path, if any.
    pub fn reference(&self) -> Option<&JointPath> {
        self.reference.as_ref()
    }

    /// Remembers the chosen path for the next call.
    pub fn remember(&mut self, chosen: JointPath) {
        self.reference = Some(chosen);
    }

    /// Forgets the previous choice when the mode request changes (a new request is a deliberate
    /// switch); returns true if it did.
    pub fn update_request(&mut self, request: &ModeRequest) -> bool {
        if &self.request == request {
            return false;
        }
        self.request = request.clone();
        self.reset();
        true
    }
}

/// The selector's decision.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Selection {
    /// The chosen mode's id.
    pub mode: usize,
    /// The chosen candidate's index.
    pub candidate: usize,
    pub reason: SelectionReason,
    /// The mode nearest to the previous choice (within the hysteresis distance), if any.
    pub current_mode: Option<usize>,
    /// Per mode: its distance to the previous choice, rad (`None` without a previous choice or
    /// with hysteresis off).
    pub mode_distances_rad: Vec<Option<f64>>,
}

/// The remainder of `reference` as seen from `start`: the waypoints from the one nearest to
/// `start` on, that one replaced by `start`.
pub fn remainder(reference: &JointPath, start: &[f64]) -> Option<JointPath> {
    let nearest = reference
        .waypoints()
        .enumerate()
        .map(|(i, q)| (i, distance(q, start)))
        .fold(None, |best: Option<(usize, f64)>, (i, d)| match best {
            Some((_, bd)) if bd <= d => best,
            _ => Some((i, d)),
        })?
        .0;
    let dof = reference.dof();
    let mut positions = Vec::with_capacity(reference.as_slice().len() - nearest * dof);
    positions.extend_from_slice(start);
    positions.extend_from_slice(&reference.as_slice()[(nearest + 1) * dof..]);
    JointPath::new(dof, positions).ok()
}

/// Chooses a mode and a member. `paths` and `costs` are per candidate (the anchored paths);
/// `start` is the start configuration of this call. `None` when there is no mode.
pub fn select(
    modes: &[Mode],
    paths: &[JointPath],
    costs: &[f64],
    start: &[f64],
    state: &SelectorState,
    config: &SelectionConfig,
) -> Option<Selection> {
    if modes.is_empty() {
        return None;
    }
    let cost = |i: usize| costs.get(i).copied().unwrap_or(f64::INFINITY);
    let best_member = |mode: &Mode| -> Option<(usize, f64)> {
        mode.members
            .iter()
            .map(|&m| (m, cost(m)))
            .fold(None, |best, (m, c)| match best {
                Some((_, bc)) if c.is_nan() || c >= bc => best,
                _ => Some((m, c)),
            })
    };

    let mut mode_distances_rad = vec![None; modes.len()];
    let mut current_mode = None;
    if config.hysteresis {
        if let Some(rest) = state.reference().and_then(|r| remainder(r, start)) {
            let count = paths.first().map_or(rest.len(), JointPath::len).max(2);
            let rest = rest.resample_by_arc_length(count);
            let mut nearest: Option<(usize, f64)> = None;
            for mode in modes {
                let sum: f64 = mode
                    .members
                    .iter()
                    .filter_map(|&m| paths.get(m))
                    .map(|p| {
                        p.resample_by_arc_length(count)
                            .mean_waypoint_distance_rad(&rest)
                            .unwrap_or(f64::INFINITY)
                    })
                    .sum();
                let d = sum / mode.members.len().max(1) as f64;
                mode_distances_rad[mode.id] = Some(d);
                if d <= config.hysteresis_max_distance_rad && nearest.is_none_or(|(_, nd)| d < nd) {
                    nearest = Some((mode.id, d));
                }
            }
            current_mode = nearest.map(|(id, _)| id);
        }
    }

    let (mode, reason) = match current_mode {
        Some(id) => (id, SelectionReason::KeptCurrentMode),
        None => {
            let ranked = modes
                .iter()
                .filter_map(|m| best_member(m).map(|b| (m, b.1)));
            let chosen = match config.policy {
                SelectionPolicy::Mass => {
                    ranked.fold(None, |best: Option<(&Mode, f64)>, x| match best {
                        Some(b)
                            if b.0.members.len() > x.0.members.len()
                                || (b.0.members.len() == x.0.members.len()
                                    && (x.1.is_nan() || x.1 >= b.1)) =>
                        {
                            best
                        }
                        _ => Some(x),
                    })
                }
                SelectionPolicy::Cost => {
                    ranked.fold(None, |best: Option<(&Mode, f64)>, x| match best {
                        Some(b) if x.1.is_nan() || x.1 >= b.1 => best,
                        _ => Some(x),
                    })
                }
            }?;
            let reason = match config.policy {
                SelectionPolicy::Mass => SelectionReason::BestByMass,
                SelectionPolicy::Cost => SelectionReason::BestByCost,
            };
            (chosen.0.id, reason)
        }
    };
    let candidate = modes.get(mode).and_then(best_member)?.0;
    Some(Selection {
        mode,
        candidate,
        reason,
        current_mode,
        mode_distances_rad,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::planning::modes::cluster;

    /// A 2-joint path from (0, 0) to (1, 0) bending by `bend` on joint 1.
    fn path(bend: f64) -> JointPath {
        let waypoints: Vec<Vec<f64>> = (0..12)
            .map(|t| {
                let s = t as f64 / 11.0;
                vec![s, bend * (std::f64::consts::PI * s).sin()]
            })
            .collect();
        JointPath::from_waypoints(&waypoints).unwrap()
    }

    fn batch(left: usize, right: usize) -> Vec<JointPath> {
        let mut paths: Vec<JointPath> = (0..left).map(|k| path(-0.8 - 0.01 * k as f64)).collect();
        paths.extend((0..right).map(|k| path(0.8 + 0.01 * k as f64)));
        paths
    }

    fn config(policy: SelectionPolicy) -> SelectionConfig {
        SelectionConfig {
            policy,
            hysteresis: true,
            hysteresis_max_distance_rad: 0.4,
        }
    }

    #[test]
    fn keeps_the_mode_while_valid_then_switches() {
        let mut state = SelectorState::new();
        let cfg = config(SelectionPolicy::Mass);
        // Call 1: left has more mass.
        let paths = batch(6, 4);
        let costs: Vec<f64> = paths.iter().map(JointPath::length_rad).collect();
        let clustering = cluster(&paths, &[true; 10], 0.3);
        let first = select(&clustering.modes, &paths, &costs, &[0.0, 0.0], &state, &cfg).unwrap();
        assert_eq!(first.reason, SelectionReason::BestByMass);
        assert!(first.candidate < 6);
        state.remember(paths[first.candidate].clone());

        // Call 2: right has more mass now, left is still valid: keep left.
        let paths = batch(3, 7);
        let costs: Vec<f64> = paths.iter().map(JointPath::length_rad).collect();
        let clustering = cluster(&paths, &[true; 10], 0.3);
        let second = select(&clustering.modes, &paths, &costs, &[0.0, 0.0], &state, &cfg).unwrap();
        assert_eq!(second.reason, SelectionReason::KeptCurrentMode);
        assert!(second.candidate < 3, "{second:?}");
        // Without hysteresis it would switch.
        let free = SelectionConfig {
            hysteresis: false,
            ..cfg
        };
        let switched = select(
            &clustering.modes,
            &paths,
            &costs,
            &[0.0, 0.0],
            &state,
            &free,
        )
        .unwrap();
        assert!(switched.candidate >= 3);
        state.remember(paths[second.candidate].clone());

        // Call 3: every left candidate invalid: switch to right.
        let mut valid = vec![true; 10];
        valid[..3].iter_mut().for_each(|v| *v = false);
        let clustering = cluster(&paths, &valid, 0.3);
        let third = select(&clustering.modes, &paths, &costs, &[0.0, 0.0], &state, &cfg).unwrap();
        assert_eq!(third.reason, SelectionReason::BestByMass);
        assert!(third.candidate >= 3);
        assert_eq!(third.current_mode, None);
    }

    #[test]
    fn cost_policy_and_best_member() {
        let paths = batch(5, 2);
        // Right members are cheaper.
        let costs = vec![5.0, 4.0, 3.0, 6.0, 7.0, 2.5, 1.5];
        let clustering = cluster(&paths, &[true; 7], 0.3);
        let state = SelectorState::new();
        let by_mass = select(
            &clustering.modes,
            &paths,
            &costs,
            &[0.0, 0.0],
            &state,
            &config(SelectionPolicy::Mass),
        )
        .unwrap();
        assert_eq!(by_mass.candidate, 2);
        let by_cost = select(
            &clustering.modes,
            &paths,
            &costs,
            &[0.0, 0.0],
            &state,
            &config(SelectionPolicy::Cost),
        )
        .unwrap();
        assert_eq!(
            (by_cost.candidate, by_cost.reason),
            (6, SelectionReason::BestByCost)
        );
        assert!(select(
            &[],
            &paths,
            &costs,
            &[0.0, 0.0],
            &state,
            &config(SelectionPolicy::Mass)
        )
        .is_none());
    }

    #[test]
    fn remainder_starts_at_the_start_and_drops_the_executed_part() {
        let reference = path(0.5);
        let start = reference.waypoint(4).unwrap().to_vec();
        let rest = remainder(&reference, &start).unwrap();
        assert_eq!(rest.len(), 8);
        assert_eq!(rest.first(), start.as_slice());
        assert_eq!(rest.last(), reference.last());
        let mut state = SelectorState::new();
        state.remember(reference);
        assert!(!state.update_request(&ModeRequest::Any));
        assert!(state.update_request(&ModeRequest::Named("left".into())));
        assert!(state.reference().is_none());
    }
}
