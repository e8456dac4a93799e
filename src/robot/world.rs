//! 3-D obstacles in the base frame: spheres, oriented boxes and cylinders, sized as ROS
//! `visualization_msgs/Marker` SPHERE / CUBE / CYLINDER scales are (full extents, diameters),
//! with closed-form signed distances and their gradients.

use nalgebra::{Isometry3, Matrix3, Vector3};

use super::frame::Frame;
use crate::{Error, Result};

/// An obstacle's shape in its own frame (centred at the origin; cylinder axis z).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Shape {
    /// A ball.
    Sphere { radius: f64 },
    /// A box with these half extents.
    Box { half_extents: Vector3<f64> },
    /// A cylinder about z.
    Cylinder { radius: f64, half_length: f64 },
}

/// An obstacle: a shape at a pose.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Obstacle {
    /// Shape.
    pub shape: Shape,
    /// Pose of the shape's frame in the base frame.
    pub pose: Frame,
    /// `pose` inverted (cached).
    inverse: Frame,
    /// Radius of a ball about `pose.translation` that contains the shape.
    pub bounding_radius: f64,
}

/// A ROS Marker type the world accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MarkerKind {
    /// `Marker.SPHERE` (2).
    Sphere,
    /// `Marker.CUBE` (1).
    Cube,
    /// `Marker.CYLINDER` (3).
    Cylinder,
}

impl Obstacle {
    /// A shape at `pose`.
    pub fn new(shape: Shape, pose: Frame) -> Self {
        let bounding_radius = match shape {
            Shape::Sphere { radius } => radius,
            Shape::Box { half_extents } => half_extents.norm(),
            Shape::Cylinder {
                radius,
                half_length,
            } => radius.hypot(half_length),
        };
        Obstacle {
            shape,
            pose,
            inverse: pose.inverse(),
            bounding_radius,
        }
    }

    /// A sphere at `center`.
    pub fn sphere(center: [f64; 3], radius: f64) -> Self {
        Self::new(
            Shape::Sphere { radius },
            Frame {
                rotation: Matrix3::identity(),
                translation: Vector3::from(center),
            },
        )
    }

    /// From a Marker's type, pose and scale (SPHERE: diameters, equal; CUBE: full extents;
    /// CYLINDER: x = y = diameter, z = height). Errors name what is wrong.
    pub fn from_marker(kind: MarkerKind, pose: &Isometry3<f64>, scale: [f64; 3]) -> Result<Self> {
        if !scale.iter().all(|s| s.is_finite() && *s > 0.0) {
            return Err(Error::Invalid(format!(
                "obstacle {kind:?}: scale must be finite and > 0, found {scale:?}"
            )));
        }
        let finite = pose.translation.vector.iter().all(|v| v.is_finite())
            && pose.rotation.coords.iter().all(|v| v.is_finite());
        if !finite {
            return Err(Error::Invalid(format!(
                "obstacle {kind:?}: pose must be finite"
            )));
        }
        let same = |a: f64, b: f64| (a - b).abs() <= 1e-9 * a.abs().max(b.abs());
        let shape = match kind {
            MarkerKind::Sphere => {
                if !(same(scale[0], scale[1]) && same(scale[1], scale[2])) {
                    return Err(Error::Invalid(format!(
                        "obstacle SPHERE: scale must be equal diameters (no ellipsoids), found {scale:?}"
                    )));
                }
                Shape::Sphere {
                    radius: scale[0] / 2.0,
                }
            }
            MarkerKind::Cube => Shape::Box {
                half_extents: Vector3::from(scale) / 2.0,
            },
            MarkerKind::Cylinder => {
                if !same(scale[0], scale[1]) {
                    return Err(Error::Invalid(format!(
                        "obstacle CYLINDER: scale.x and scale.y must be one diameter (no elliptic cylinders), found {scale:?}"
                    )));
                }
                Shape::Cylinder {
                    radius: scale[0] / 2.0,
                    half_length: scale[2] / 2.0,
                }
            }
        };
        Ok(Self::new(shape, Frame::from_isometry(pose)))
    }

    /// Signed distance from the point `p` to the surface (negative inside) and the unit
    /// direction in which it grows fastest (base frame).
    #[inline]
    pub fn signed_distance(&self, p: &Vector3<f64>) -> (f64, Vector3<f64>) {
        let local = self.inverse.point(p);
        let (d, n_local) = shape_sdf(&self.shape, &local);
        (d, self.pose.rotation * n_local)
    }

    /// Signed distance only (no gradient); a lower bound check first when `cutoff` is given:
    /// returns a value `>= cutoff` without the exact computation when the point is far.
    #[inline]
    pub fn distance_lower_bound(&self, p: &Vector3<f64>) -> f64 {
        (p - self.pose.translation).norm() - self.bounding_radius
    }
}

/// Signed distance and gradient of a shape at the local point `q`.
#[inline]
fn shape_sdf(shape: &Shape, q: &Vector3<f64>) -> (f64, Vector3<f64>) {
    match *shape {
        Shape::Sphere { radius } => {
            let n = q.norm();
            let dir = if n > 1e-12 { q / n } else { Vector3::z() };
            (n - radius, dir)
        }
        Shape::Box { half_extents } => {
            let d = q.abs() - half_extents;
            let outside = d.map(|v| v.max(0.0));
            let out_norm = outside.norm();
            if out_norm > 0.0 {
                let dir = Vector3::new(
                    outside.x * q.x.signum(),
                    outside.y * q.y.signum(),
                    outside.z * q.z.signum(),
                ) / out_norm;
                (out_norm, dir)
            } else {
                // Inside: the nearest face.
                let (axis, depth) = d.argmax();
                let mut dir = Vector3::zeros();
                dir[axis] = if q[axis] >= 0.0 { 1.0 } else { -1.0 };
                (depth, dir)
            }
        }
        Shape::Cylinder {
            radius,
            half_length,
        } => {
            let r = q.x.hypot(q.y);
            let radial = if r > 1e-12 {
                Vector3::new(q.x / r, q.y / r, 0.0)
            } else {
                Vector3::x()
            };
            let axial = Vector3::new(0.0, 0.0, if q.z >= 0.0 { 1.0 } else { -1.0 });
            let dr = r - radius;
            let dz = q.z.abs() - half_length;
            if dr > 0.0 || dz > 0.0 {
                let (a, b) = (dr.max(0.0), dz.max(0.0));
                let n = a.hypot(b);
                (n, (radial * a + axial * b) / n)
            } else if dr > dz {
                (dr, radial)
            } else {
                (dz, axial)
            }
        }
    }
}

/// The obstacles of a scene.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct World {
    /// Obstacles in the base frame.
    pub obstacles: Vec<Obstacle>,
}

impl World {
    /// A world of these obstacles.
    pub fn new(obstacles: Vec<Obstacle>) -> Self {
        World { obstacles }
    }

    /// Signed distance from a sphere (centre, radius) to the nearest obstacle: `(distance,
    /// obstacle index, unit gradient of the distance w.r.t. the centre)`; `None` when empty.
    pub fn sphere_clearance(
        &self,
        center: &Vector3<f64>,
        radius: f64,
    ) -> Option<(f64, usize, Vector3<f64>)> {
        let mut best: Option<(f64, usize, Vector3<f64>)> = None;
        for (i, obstacle) in self.obstacles.iter().enumerate() {
            if let Some((b, _, _)) = best {
                if obstacle.distance_lower_bound(center) - radius >= b {
                    continue;
                }
            }
            let (d, n) = obstacle.signed_distance(center);
            let d = d - radius;
            if best.is_none_or(|(b, _, _)| d < b) {
                best = Some((d, i, n));
            }
        }
        best
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nalgebra::{Translation3, UnitQuaternion};

    #[test]
    fn closed_forms_on_simple_cases() {
        let b = Obstacle::from_marker(
            MarkerKind::Cube,
            &Isometry3::from_parts(
                Translation3::new(1.0, 0.0, 0.0),
                UnitQuaternion::from_euler_angles(0.0, 0.0, std::f64::consts::FRAC_PI_2),
            ),
            [0.2, 0.4, 0.6],
        )
        .unwrap();
        // Rotated 90 degrees about z: the 0.4 extent lies along x.
        let (d, n) = b.signed_distance(&Vector3::new(1.5, 0.0, 0.0));
        assert!((d - 0.3).abs() < 1e-12 && (n - Vector3::x()).norm() < 1e-12);
        let (d, _) = b.signed_distance(&Vector3::new(1.0, 0.0, 0.0));
        assert!((d + 0.1).abs() < 1e-12, "{d}");
        let c = Obstacle::from_marker(
            MarkerKind::Cylinder,
            &Isometry3::identity(),
            [0.2, 0.2, 1.0],
        )
        .unwrap();
        let (d, _) = c.signed_distance(&Vector3::new(0.4, 0.0, 0.6));
        assert!((d - (0.3f64).hypot(0.1)).abs() < 1e-12);
        let (d, n) = c.signed_distance(&Vector3::new(0.05, 0.0, 0.0));
        assert!((d + 0.05).abs() < 1e-12 && (n - Vector3::x()).norm() < 1e-12);
        let world = World::new(vec![b, c, Obstacle::sphere([0.0, 2.0, 0.0], 0.5)]);
        let (d, i, _) = world
            .sphere_clearance(&Vector3::new(0.0, 1.0, 0.0), 0.1)
            .unwrap();
        assert_eq!(i, 2);
        assert!((d - 0.4).abs() < 1e-12);
    }

    #[test]
    fn bad_markers_are_errors() {
        let id = Isometry3::identity();
        assert!(Obstacle::from_marker(MarkerKind::Sphere, &id, [0.1, 0.2, 0.1]).is_err());
        assert!(Obstacle::from_marker(MarkerKind::Cylinder, &id, [0.1, 0.2, 0.1]).is_err());
        assert!(Obstacle::from_marker(MarkerKind::Cube, &id, [0.1, f64::NAN, 0.1]).is_err());
        assert!(Obstacle::from_marker(MarkerKind::Cube, &id, [0.1, 0.0, 0.1]).is_err());
    }
}
