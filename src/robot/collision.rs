//! Collision geometry: each link is a capsule (the segment between two joint points, inflated by
//! the link radius), obstacles are circles. Self-collision is not modelled.
//!
//! The swept check between two configurations uses conservative advancement, so it cannot tunnel
//! through a thin obstacle: along the straight joint-space segment `q(s) = qa + s (qb - qa)`,
//! `s ∈ [0, 1]`, no point of link `i` moves farther than `s · M_i` with
//! `M_i = Σ_{j<=i} |qb_j - qa_j| · Σ_{k=j..=i} l_k` (each joint turns everything beyond it on an
//! arc of radius at most the summed link lengths). With `c_i` the clearance of link `i`, the step
//! `Δs = min_i c_i / M_i` is therefore collision-free, and the check advances by it until `s = 1`.
//! A clearance below [`SWEPT_TOLERANCE_M`] counts as a collision (conservative by 1 µm).

use serde::{Deserialize, Serialize};

use super::kinematics::PlanarArm;
use super::path::JointPath;
use crate::{Error, Result};

/// Clearance (metres) below which the swept check reports a collision.
pub const SWEPT_TOLERANCE_M: f64 = 1e-6;

/// Most advancement steps per segment before the swept check gives up and reports a collision
/// (conservative; never reached for clearances above [`SWEPT_TOLERANCE_M`] in practice).
const MAX_SWEPT_STEPS: usize = 100_000;

/// A circular obstacle in the planning frame.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CircleObstacle {
    /// Centre `(x, y)`, metres.
    pub center_m: [f64; 2],
    /// Radius, metres (> 0).
    pub radius_m: f64,
}

impl CircleObstacle {
    /// Checks that the centre is finite and the radius finite and > 0; `key` names the obstacle
    /// in the error.
    pub fn validate(&self, key: &str) -> Result<()> {
        if !self.center_m.iter().all(|v| v.is_finite()) {
            return Err(Error::config(
                format!("{key}.center_m"),
                format!("must be finite, found {:?}", self.center_m),
            ));
        }
        if !(self.radius_m > 0.0 && self.radius_m.is_finite()) {
            return Err(Error::config(
                format!("{key}.radius_m"),
                format!("must be finite and > 0, found {}", self.radius_m),
            ));
        }
        Ok(())
    }
}

/// Where a configuration touches an obstacle.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Contact {
    /// Link index (0 = the link from the base).
    pub link: usize,
    /// Obstacle index in the list checked.
    pub obstacle: usize,
    /// Signed clearance, metres (< 0: penetration depth).
    pub clearance_m: f64,
}

/// Where a motion between two configurations first (conservatively) touches an obstacle.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct SweptContact {
    /// Fraction along the joint-space segment, in [0, 1].
    pub fraction: f64,
    pub contact: Contact,
}

/// Where a path first touches an obstacle.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct PathContact {
    /// Segment index: the motion from waypoint `segment` to `segment + 1` (a path of one waypoint
    /// reports segment 0).
    pub segment: usize,
    /// Fraction along that segment, in [0, 1].
    pub fraction: f64,
    pub contact: Contact,
}

/// Distance from point `p` to the segment `a`–`b`, metres.
pub fn point_segment_distance(a: [f64; 2], b: [f64; 2], p: [f64; 2]) -> f64 {
    let (dx, dy) = (b[0] - a[0], b[1] - a[1]);
    let length2 = dx * dx + dy * dy;
    let s = if length2 > 0.0 {
        (((p[0] - a[0]) * dx + (p[1] - a[1]) * dy) / length2).clamp(0.0, 1.0)
    } else {
        0.0
    };
    let (cx, cy) = (a[0] + s * dx, a[1] + s * dy);
    (p[0] - cx).hypot(p[1] - cy)
}

/// The obstacle nearest to the segment `a`–`b` (smallest distance from the segment to the circle,
/// negative when they overlap); ties go to the lower index. `None` for no obstacles.
pub fn nearest_obstacle_to_segment(
    obstacles: &[CircleObstacle],
    a: [f64; 2],
    b: [f64; 2],
) -> Option<usize> {
    let mut best: Option<(usize, f64)> = None;
    for (i, obstacle) in obstacles.iter().enumerate() {
        let gap = point_segment_distance(a, b, obstacle.center_m) - obstacle.radius_m;
        if best.is_none_or(|(_, g)| gap < g) {
            best = Some((i, gap));
        }
    }
    best.map(|(i, _)| i)
}

impl PlanarArm {
    /// The smallest signed clearance between any link capsule and any obstacle, with where it
    /// occurs; `None` when there are no obstacles. `points` are the joint points of the
    /// configuration ([`PlanarArm::joint_points`]).
    fn min_clearance(&self, points: &[[f64; 2]], obstacles: &[CircleObstacle]) -> Option<Contact> {
        let mut best: Option<Contact> = None;
        for (link, pair) in points.windows(2).enumerate() {
            for (index, obstacle) in obstacles.iter().enumerate() {
                let clearance_m = point_segment_distance(pair[0], pair[1], obstacle.center_m)
                    - obstacle.radius_m
                    - self.link_radius_m();
                if best.is_none_or(|b| clearance_m < b.clearance_m) {
                    best = Some(Contact {
                        link,
                        obstacle: index,
                        clearance_m,
                    });
                }
            }
        }
        best
    }

    /// Signed clearance of configuration `q` to the nearest obstacle (metres, < 0 in collision),
    /// with the link and obstacle; `None` when there are no obstacles.
    pub fn clearance(&self, q_rad: &[f64], obstacles: &[CircleObstacle]) -> Option<Contact> {
        self.min_clearance(&self.joint_points(q_rad), obstacles)
    }

    /// The deepest contact of configuration `q` with an obstacle, if it collides (clearance < 0).
    pub fn collision(&self, q_rad: &[f64], obstacles: &[CircleObstacle]) -> Option<Contact> {
        self.clearance(q_rad, obstacles)
            .filter(|c| c.clearance_m.is_nan() || c.clearance_m < 0.0)
    }

    /// Swept check of the straight joint-space motion from `qa` to `qb` (conservative
    /// advancement, see the module docs): the first place where the clearance drops below
    /// [`SWEPT_TOLERANCE_M`], or `None` when the whole motion is free.
    pub fn swept_collision(
        &self,
        qa_rad: &[f64],
        qb_rad: &[f64],
        obstacles: &[CircleObstacle],
    ) -> Option<SweptContact> {
        let mut scratch = SweptScratch::default();
        self.swept_collision_with(qa_rad, qb_rad, obstacles, &mut scratch)
    }

    fn swept_collision_with(
        &self,
        qa_rad: &[f64],
        qb_rad: &[f64],
        obstacles: &[CircleObstacle],
        scratch: &mut SweptScratch,
    ) -> Option<SweptContact> {
        if obstacles.is_empty() {
            return None;
        }
        let dof = self.dof();
        let lengths = self.link_lengths_m();
        // motion_m[i]: bound on how far any point of link i moves over the whole segment.
        scratch.motion_m.clear();
        for i in 0..dof {
            let mut bound = 0.0;
            for j in 0..=i {
                let turn = (qb_rad[j] - qa_rad[j]).abs();
                let lever: f64 = lengths[j..=i].iter().sum();
                bound += turn * lever;
            }
            scratch.motion_m.push(bound);
        }
        let mut s = 0.0f64;
        for _ in 0..MAX_SWEPT_STEPS {
            scratch.q.clear();
            scratch
                .q
                .extend(qa_rad.iter().zip(qb_rad).map(|(a, b)| a + s * (b - a)));
            self.joint_points_into(&scratch.q, &mut scratch.points);
            let mut step = f64::INFINITY;
            for (link, pair) in scratch.points.windows(2).enumerate() {
                let mut link_clearance = f64::INFINITY;
                for (index, obstacle) in obstacles.iter().enumerate() {
                    let clearance_m = point_segment_distance(pair[0], pair[1], obstacle.center_m)
                        - obstacle.radius_m
                        - self.link_radius_m();
                    if clearance_m.is_nan() || clearance_m < SWEPT_TOLERANCE_M {
                        return Some(SweptContact {
                            fraction: s,
                            contact: Contact {
                                link,
                                obstacle: index,
                                clearance_m,
                            },
                        });
                    }
                    link_clearance = link_clearance.min(clearance_m);
                }
                let motion = scratch.motion_m[link];
                if motion > 0.0 {
                    step = step.min(link_clearance / motion);
                }
            }
            if s >= 1.0 || !step.is_finite() {
                return None;
            }
            s = (s + step).min(1.0);
        }
        // Did not finish: report conservatively at the last checked point.
        self.min_clearance(&scratch.points, obstacles)
            .map(|contact| SweptContact {
                fraction: s,
                contact,
            })
    }

    /// Swept check of a whole path, segment by segment; the first contact. A single-waypoint
    /// path is checked as a configuration.
    pub fn path_collision(
        &self,
        path: &JointPath,
        obstacles: &[CircleObstacle],
    ) -> Option<PathContact> {
        let mut scratch = SweptScratch::default();
        if path.len() == 1 {
            return self
                .swept_collision_with(path.first(), path.first(), obstacles, &mut scratch)
                .map(|c| PathContact {
                    segment: 0,
                    fraction: c.fraction,
                    contact: c.contact,
                });
        }
        path.waypoints()
            .zip(path.waypoints().skip(1))
            .enumerate()
            .find_map(|(segment, (a, b))| {
                self.swept_collision_with(a, b, obstacles, &mut scratch)
                    .map(|c| PathContact {
                        segment,
                        fraction: c.fraction,
                        contact: c.contact,
                    })
            })
    }
}

/// Reused buffers of the swept check.
#[derive(Default)]
struct SweptScratch {
    q: Vec<f64>,
    points: Vec<[f64; 2]>,
    motion_m: Vec<f64>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::robot::RobotDescription;

    fn arm() -> PlanarArm {
        PlanarArm::new(RobotDescription::planar_2link()).unwrap()
    }

    fn circle(x: f64, y: f64, r: f64) -> CircleObstacle {
        CircleObstacle {
            center_m: [x, y],
            radius_m: r,
        }
    }

    #[test]
    fn distance_to_segment() {
        assert!((point_segment_distance([0.0, 0.0], [1.0, 0.0], [0.5, 0.3]) - 0.3).abs() < 1e-12);
        assert!((point_segment_distance([0.0, 0.0], [1.0, 0.0], [2.0, 0.0]) - 1.0).abs() < 1e-12);
        assert!((point_segment_distance([1.0, 1.0], [1.0, 1.0], [1.0, 2.0]) - 1.0).abs() < 1e-12);
    }

    #[test]
    fn known_static_collisions() {
        let arm = arm();
        // Arm stretched along +x; an obstacle on link 1 and one on link 0.
        let on_link1 = [circle(0.7, 0.05, 0.04)];
        let contact = arm.collision(&[0.0, 0.0], &on_link1).unwrap();
        assert_eq!((contact.link, contact.obstacle), (1, 0));
        assert!((contact.clearance_m - (0.05 - 0.04 - 0.03)).abs() < 1e-12);
        let on_link0 = [circle(5.0, 5.0, 0.1), circle(0.2, -0.06, 0.05)];
        let contact = arm.collision(&[0.0, 0.0], &on_link0).unwrap();
        assert_eq!((contact.link, contact.obstacle), (0, 1));
        // Clear by 2 cm.
        assert!(arm
            .collision(&[0.0, 0.0], &[circle(0.5, 0.15, 0.1)])
            .is_none());
        assert!(arm.collision(&[0.0, 0.0], &[]).is_none());
        // Beyond the end effector's tip but within the capsule's round cap.
        assert!(arm
            .collision(&[0.0, 0.0], &[circle(0.95, 0.0, 0.03)])
            .is_some());
    }

    #[test]
    fn thin_obstacle_between_waypoints_is_found_by_the_swept_check() {
        let arm = arm();
        // A 5 mm obstacle on the end effector's arc at 45°; the two waypoints (0° and 90°
        // shoulder) are both far from it, so a waypoint-only check passes.
        let angle = std::f64::consts::FRAC_PI_4;
        let thin = [circle(0.9 * angle.cos(), 0.9 * angle.sin(), 0.005)];
        let (qa, qb) = ([0.0, 0.0], [std::f64::consts::FRAC_PI_2, 0.0]);
        assert!(arm.collision(&qa, &thin).is_none());
        assert!(arm.collision(&qb, &thin).is_none());
        let hit = arm.swept_collision(&qa, &qb, &thin).unwrap();
        assert!(hit.fraction > 0.3 && hit.fraction < 0.5, "{hit:?}");
        assert_eq!(hit.contact.link, 1);
        // A path through the same two waypoints also reports it, on segment 0.
        let path = JointPath::from_waypoints(&[qa.to_vec(), qb.to_vec()]).unwrap();
        assert_eq!(arm.path_collision(&path, &thin).unwrap().segment, 0);
        // Moving away from it is free.
        assert!(arm
            .swept_collision(&qa, &[-std::f64::consts::FRAC_PI_2, 0.0], &thin)
            .is_none());
    }

    #[test]
    fn swept_check_matches_dense_sampling() {
        let arm = arm();
        let obstacles = [circle(0.3, 0.45, 0.08), circle(-0.4, 0.2, 0.1)];
        let mut rng_state = 12345u64;
        let mut next = || {
            rng_state = rng_state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((rng_state >> 11) as f64 / (1u64 << 53) as f64) * 2.0 - 1.0
        };
        for _ in 0..200 {
            let qa = [3.0 * next(), 2.5 * next()];
            let qb = [qa[0] + 0.8 * next(), qa[1] + 0.8 * next()];
            let dense_hit = (0..=2000).any(|k| {
                let s = k as f64 / 2000.0;
                let q = [qa[0] + s * (qb[0] - qa[0]), qa[1] + s * (qb[1] - qa[1])];
                arm.clearance(&q, &obstacles).unwrap().clearance_m < 0.0
            });
            let swept = arm.swept_collision(&qa, &qb, &obstacles);
            // The swept check is never less safe than dense sampling.
            if dense_hit {
                assert!(swept.is_some(), "{qa:?} -> {qb:?}");
            }
            // And it is not wildly conservative: a reported hit is within 1 µm of contact
            // somewhere on the segment.
            if let Some(hit) = swept {
                let s = hit.fraction;
                let q = [qa[0] + s * (qb[0] - qa[0]), qa[1] + s * (qb[1] - qa[1])];
                assert!(arm.clearance(&q, &obstacles).unwrap().clearance_m < SWEPT_TOLERANCE_M);
            }
        }
    }

    #[test]
    fn nearest_obstacle_prefers_the_one_on_the_segment() {
        let obstacles = [
            circle(0.5, 0.5, 0.1),
            circle(0.5, 0.05, 0.05),
            circle(9.0, 0.0, 5.0),
        ];
        assert_eq!(
            nearest_obstacle_to_segment(&obstacles, [0.0, 0.0], [1.0, 0.0]),
            Some(1)
        );
        assert_eq!(
            nearest_obstacle_to_segment(&[], [0.0, 0.0], [1.0, 0.0]),
            None
        );
    }

    #[test]
    fn obstacle_validation_names_the_field() {
        let err = circle(0.0, f64::NAN, 0.1)
            .validate("obstacles[2]")
            .unwrap_err();
        assert!(err.to_string().contains("obstacles[2].center_m"), "{err}");
        let err = circle(0.0, 0.0, 0.0).validate("obstacles[0]").unwrap_err();
        assert!(err.to_string().contains("radius_m"), "{err}");
    }
}
