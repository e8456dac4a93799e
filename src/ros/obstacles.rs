//! The obstacle set, free of ROS types: an RViz-style marker stream (`visualization_msgs/Marker`
//! semantics: ADD/DELETE/DELETEALL by `(ns, id)`, `lifetime`) plus the static obstacles of the
//! parameters. Safety rules (docs/NODE.md):
//! - a message is applied whole or not at all; a marker the node cannot represent (a type other
//!   than SPHERE or CYLINDER, another frame, non-finite or non-positive size, unknown action)
//!   makes the set invalid until a valid message arrives: the node never plans around a subset
//!   of what it was told;
//! - a marker with a non-zero `lifetime` disappears that long after it was last set;
//! - with `obstacle_timeout_secs` > 0, a set older than that (no valid message since) is stale,
//!   an input error;
//! - a change is an event (a plan at once) only when a circle appeared, disappeared or moved or
//!   grew by more than `change_tolerance_m` since the set of the last event: a perception stream
//!   with sensor noise does not restart planning with every message.

use std::collections::BTreeMap;

use crate::robot::CircleObstacle;

/// `visualization_msgs/Marker` type and action constants.
pub mod marker {
    pub const ARROW: i32 = 0;
    pub const CUBE: i32 = 1;
    pub const SPHERE: i32 = 2;
    pub const CYLINDER: i32 = 3;
    pub const LINE_STRIP: i32 = 4;
    pub const ADD: i32 = 0;
    pub const DELETE: i32 = 2;
    pub const DELETEALL: i32 = 3;

    /// The name of a marker type (`type N` for one `visualization_msgs` does not define).
    pub fn type_name(kind: i32) -> String {
        let name = match kind {
            0 => "ARROW",
            1 => "CUBE",
            2 => "SPHERE",
            3 => "CYLINDER",
            4 => "LINE_STRIP",
            5 => "LINE_LIST",
            6 => "CUBE_LIST",
            7 => "SPHERE_LIST",
            8 => "POINTS",
            9 => "TEXT_VIEW_FACING",
            10 => "MESH_RESOURCE",
            11 => "TRIANGLE_LIST",
            12 => "ARROW_STRIP",
            _ => return format!("type {kind}"),
        };
        format!("{name} ({kind})")
    }
}

/// One `visualization_msgs/Marker` of an obstacles message.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct MarkerIn {
    pub ns: String,
    pub id: i32,
    pub kind: i32,
    pub action: i32,
    pub frame_id: String,
    pub position_m: [f64; 3],
    pub scale_m: [f64; 3],
    /// `lifetime`, seconds; 0 = forever.
    pub lifetime_secs: f64,
}

/// What an obstacles message or the passing of time did to the set.
#[derive(Debug, Clone, PartialEq)]
pub enum SetChange {
    /// Nothing, or changes within the tolerance.
    None,
    /// An event: the set differs from the last event's by more than the tolerance.
    Changed,
    /// The message was rejected (the text says why); the set is invalid.
    Rejected(String),
}

/// Rules of the obstacle set (from the node parameters).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ObstacleRules {
    /// Seconds without a valid obstacles message after which the set is stale; 0 = never.
    pub timeout_secs: f64,
    /// Changes of a circle's centre or radius up to this are no event, metres.
    pub change_tolerance_m: f64,
}

impl Default for ObstacleRules {
    fn default() -> Self {
        ObstacleRules {
            timeout_secs: 0.0,
            change_tolerance_m: 0.0,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
struct Entry {
    circle: CircleObstacle,
    /// When the marker expires (node clock), for a non-zero lifetime.
    expires_secs: Option<f64>,
}

/// See the module docs.
#[derive(Debug, Clone)]
pub struct ObstacleSet {
    base_frame: String,
    rules: ObstacleRules,
    markers: BTreeMap<(String, i32), Entry>,
    /// The markers' circles at the last event (changes are measured from here).
    reference: BTreeMap<(String, i32), CircleObstacle>,
    static_obstacles: Vec<CircleObstacle>,
    /// Arrival of the last valid message.
    secs: Option<f64>,
    /// When the set started (stale before a first message, with a timeout).
    started_secs: Option<f64>,
    valid: bool,
}

fn strip_slash(frame: &str) -> &str {
    frame.strip_prefix('/').unwrap_or(frame)
}

/// The circle an ADD marker (SPHERE or CYLINDER) stands for in the arm's plane.
fn circle_of(m: &MarkerIn) -> CircleObstacle {
    CircleObstacle {
        center_m: [m.position_m[0], m.position_m[1]],
        radius_m: 0.5 * m.scale_m[0].max(m.scale_m[1]),
    }
}

impl ObstacleSet {
    pub fn new(base_frame: &str, static_obstacles: Vec<CircleObstacle>) -> Self {
        ObstacleSet {
            base_frame: strip_slash(base_frame).to_string(),
            rules: ObstacleRules::default(),
            markers: BTreeMap::new(),
            reference: BTreeMap::new(),
            static_obstacles,
            secs: None,
            started_secs: None,
            valid: true,
        }
    }

    pub fn with_rules(mut self, rules: ObstacleRules) -> Self {
        self.rules = rules;
        self
    }

    pub fn rules(&self) -> ObstacleRules {
        self.rules
    }

    /// Applies a message (see the module docs). Every marker is checked before anything
    /// changes, without allocating, so that a huge message with one bad marker is refused
    /// cheaply (5,000 markers and a CUBE: 18 ms on the control thread when each marker's
    /// name was formatted and the set built first).
    pub fn apply(&mut self, msg: &[MarkerIn], now: f64) -> SetChange {
        self.started_secs.get_or_insert(now);
        if let Some(text) = msg.iter().find_map(|m| self.check(m).err()) {
            self.valid = false;
            return SetChange::Rejected(text);
        }
        let mut next = self.markers.clone();
        for m in msg {
            match m.action {
                marker::DELETEALL if m.ns.is_empty() => next.clear(),
                marker::DELETEALL => next.retain(|(ns, _), _| *ns != m.ns),
                marker::DELETE => {
                    next.remove(&(m.ns.clone(), m.id));
                }
                _ => {
                    let expires_secs = (m.lifetime_secs > 0.0).then_some(now + m.lifetime_secs);
                    next.insert(
                        (m.ns.clone(), m.id),
                        Entry {
                            circle: circle_of(m),
                            expires_secs,
                        },
                    );
                }
            }
        }
        let was_valid = self.valid;
        self.markers = next;
        self.valid = true;
        self.secs = Some(now);
        self.event_if_changed(!was_valid)
    }

    /// Whether `m` can be applied; the error names the marker and what is wrong.
    fn check(&self, m: &MarkerIn) -> Result<(), String> {
        let name = || format!("marker `{}`/{}", m.ns, m.id);
        match m.action {
            marker::DELETEALL | marker::DELETE => return Ok(()),
            marker::ADD => {}
            other => return Err(format!("{}: unknown action {other}", name())),
        }
        if m.kind != marker::SPHERE && m.kind != marker::CYLINDER {
            return Err(format!(
                "{} is a {}: only SPHERE and CYLINDER obstacles are supported (the node \
                 does not plan around a subset of the obstacles)",
                name(),
                marker::type_name(m.kind)
            ));
        }
        let frame = strip_slash(&m.frame_id);
        if frame != self.base_frame {
            return Err(format!(
                "{} is in frame `{}`, expected base_frame `{}`",
                name(),
                m.frame_id,
                self.base_frame
            ));
        }
        if !(m.scale_m[0].is_finite() && m.scale_m[1].is_finite()) {
            return Err(format!("{}: scale {:?} is not finite", name(), m.scale_m));
        }
        if !(m.lifetime_secs.is_finite() && m.lifetime_secs >= 0.0) {
            return Err(format!(
                "{}: lifetime {} s is not finite and >= 0",
                name(),
                m.lifetime_secs
            ));
        }
        let circle = circle_of(m);
        if circle.validate("").is_err() {
            return circle.validate(&name()).map_err(|e| e.to_string());
        }
        Ok(())
    }

    /// Removes the markers whose lifetime ran out by `now`; an event when that changed the set
    /// beyond the tolerance.
    pub fn expire(&mut self, now: f64) -> SetChange {
        let before = self.markers.len();
        self.markers
            .retain(|_, e| e.expires_secs.is_none_or(|t| now < t));
        if self.markers.len() == before {
            return SetChange::None;
        }
        self.event_if_changed(false)
    }

    fn event_if_changed(&mut self, force: bool) -> SetChange {
        let tolerance = self.rules.change_tolerance_m;
        let current: BTreeMap<(String, i32), CircleObstacle> = self
            .markers
            .iter()
            .map(|(k, e)| (k.clone(), e.circle))
            .collect();
        let moved = |a: &CircleObstacle, b: &CircleObstacle| {
            let shift = (a.center_m[0] - b.center_m[0]).hypot(a.center_m[1] - b.center_m[1]);
            !(shift <= tolerance && (a.radius_m - b.radius_m).abs() <= tolerance)
        };
        let changed = force
            || current.len() != self.reference.len()
            || current
                .iter()
                .zip(&self.reference)
                .any(|((ka, a), (kb, b))| ka != kb || moved(a, b));
        if changed {
            self.reference = current;
            SetChange::Changed
        } else {
            SetChange::None
        }
    }

    /// Whether the last message was valid (or none came).
    pub fn is_valid(&self) -> bool {
        self.valid
    }

    /// With a timeout: how old the set is when it is stale at `now` (no valid message for
    /// longer than `obstacle_timeout_secs`; before the first message, counted from the first
    /// call), else `None`.
    pub fn stale_age_secs(&mut self, now: f64) -> Option<f64> {
        if !(self.rules.timeout_secs > 0.0) {
            return None;
        }
        let since = self.secs.or(self.started_secs).unwrap_or(now);
        self.started_secs.get_or_insert(now);
        let age = now - since;
        (age > self.rules.timeout_secs).then_some(age)
    }

    /// Whether a valid message ever arrived.
    pub fn received(&self) -> bool {
        self.secs.is_some()
    }

    /// The static obstacles, then the markers' circles in (ns, id) order.
    pub fn circles(&self) -> Vec<CircleObstacle> {
        let mut all = self.static_obstacles.clone();
        all.extend(self.markers.values().map(|e| e.circle));
        all
    }

    /// Arrival of the last valid message.
    pub fn secs(&self) -> Option<f64> {
        self.secs
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(kind: i32, x: f64, lifetime_secs: f64) -> MarkerIn {
        MarkerIn {
            ns: "o".into(),
            id: 0,
            kind,
            action: marker::ADD,
            frame_id: "base_link".into(),
            position_m: [x, 0.2, 0.0],
            scale_m: [0.1, 0.1, 1.0],
            lifetime_secs,
        }
    }

    #[test]
    fn unsupported_types_invalidate_the_set_and_name_the_marker() {
        let mut set = ObstacleSet::new("base_link", vec![]);
        assert_eq!(
            set.apply(&[m(marker::SPHERE, 0.5, 0.0)], 0.0),
            SetChange::Changed
        );
        for kind in [marker::CUBE, marker::ARROW, 10, 11, 42] {
            let mut cube = m(kind, 0.6, 0.0);
            cube.id = 7;
            let change = set.apply(&[m(marker::SPHERE, 0.7, 0.0), cube], 1.0);
            let SetChange::Rejected(text) = change else {
                panic!("type {kind} accepted: {change:?}");
            };
            assert!(text.contains("`o`/7"), "{text}");
            assert!(!set.is_valid());
            assert_eq!(set.circles()[0].center_m, [0.5, 0.2], "nothing applied");
        }
        assert!(matches!(
            set.apply(&[m(10, 0.6, 0.0)], 1.0),
            SetChange::Rejected(t) if t.contains("MESH_RESOURCE (10)")
        ));
        assert_eq!(
            set.apply(&[m(marker::SPHERE, 0.5, 0.0)], 2.0),
            SetChange::Changed
        );
        assert!(set.is_valid());
    }

    #[test]
    fn lifetimes_expire_markers() {
        let mut set = ObstacleSet::new("base_link", vec![]);
        set.apply(&[m(marker::SPHERE, 0.5, 0.5)], 1.0);
        assert_eq!(set.expire(1.4), SetChange::None);
        assert_eq!(set.circles().len(), 1);
        assert_eq!(set.expire(1.5), SetChange::Changed);
        assert!(set.circles().is_empty());
        // Re-setting the marker renews its lifetime.
        set.apply(&[m(marker::SPHERE, 0.5, 0.5)], 2.0);
        set.apply(&[m(marker::SPHERE, 0.5, 0.5)], 2.4);
        assert_eq!(set.expire(2.6), SetChange::None);
        assert_eq!(set.circles().len(), 1);
        let mut bad = m(marker::SPHERE, 0.5, f64::NAN);
        bad.id = 1;
        assert!(matches!(set.apply(&[bad], 3.0), SetChange::Rejected(_)));
    }

    #[test]
    fn a_set_without_messages_for_the_timeout_is_stale() {
        let rules = ObstacleRules {
            timeout_secs: 1.0,
            change_tolerance_m: 0.0,
        };
        let mut set = ObstacleSet::new("base_link", vec![]).with_rules(rules);
        assert_eq!(set.stale_age_secs(10.0), None, "the clock starts now");
        assert!(set.stale_age_secs(11.5).is_some(), "no first message");
        set.apply(&[m(marker::SPHERE, 0.5, 0.0)], 12.0);
        assert_eq!(set.stale_age_secs(12.9), None);
        assert!(set.stale_age_secs(13.1).is_some());
        let mut never = ObstacleSet::new("base_link", vec![]);
        assert_eq!(never.stale_age_secs(1e6), None, "0 = never");
    }

    #[test]
    fn changes_within_the_tolerance_are_no_event() {
        let rules = ObstacleRules {
            timeout_secs: 0.0,
            change_tolerance_m: 0.002,
        };
        let mut set = ObstacleSet::new("base_link", vec![]).with_rules(rules);
        assert_eq!(
            set.apply(&[m(marker::SPHERE, 0.5, 0.0)], 0.0),
            SetChange::Changed
        );
        // Drifting 1.5 mm per message: no event until 2 mm from the last event's set.
        assert_eq!(
            set.apply(&[m(marker::SPHERE, 0.5015, 0.0)], 0.1),
            SetChange::None
        );
        assert_eq!(
            set.circles()[0].center_m[0],
            0.5015,
            "the newest set is used"
        );
        assert_eq!(
            set.apply(&[m(marker::SPHERE, 0.503, 0.0)], 0.2),
            SetChange::Changed
        );
        assert_eq!(
            set.apply(&[m(marker::SPHERE, 0.503, 0.0)], 0.3),
            SetChange::None
        );
        let mut other = m(marker::SPHERE, 0.503, 0.0);
        other.id = 1;
        assert_eq!(set.apply(&[other], 0.4), SetChange::Changed, "a new marker");
    }
}
