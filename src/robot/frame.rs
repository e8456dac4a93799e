//! A rigid transform as a rotation matrix and a translation (the hot path's representation:
//! transforming a point is 9 multiplications and 9 additions).

use nalgebra::{Isometry3, Matrix3, Vector3};

/// A rigid transform: `p_parent = rotation * p_child + translation`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Frame {
    /// Rotation (orthonormal).
    pub rotation: Matrix3<f64>,
    /// Translation, metres.
    pub translation: Vector3<f64>,
}

impl Default for Frame {
    fn default() -> Self {
        Self::IDENTITY
    }
}

impl Frame {
    /// The identity.
    pub const IDENTITY: Frame = Frame {
        rotation: Matrix3::new(1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0),
        translation: Vector3::new(0.0, 0.0, 0.0),
    };

    /// From an nalgebra isometry.
    pub fn from_isometry(iso: &Isometry3<f64>) -> Self {
        Frame {
            rotation: *iso.rotation.to_rotation_matrix().matrix(),
            translation: iso.translation.vector,
        }
    }

    /// `self * other`.
    #[inline]
    pub fn compose(&self, other: &Frame) -> Frame {
        Frame {
            rotation: self.rotation * other.rotation,
            translation: self.rotation * other.translation + self.translation,
        }
    }

    /// Transforms a point.
    #[inline]
    pub fn point(&self, p: &Vector3<f64>) -> Vector3<f64> {
        self.rotation * p + self.translation
    }

    /// The inverse transform.
    pub fn inverse(&self) -> Frame {
        let rt = self.rotation.transpose();
        Frame {
            rotation: rt,
            translation: -(rt * self.translation),
        }
    }

    /// A rotation of `angle` about the unit `axis` (Rodrigues).
    #[inline]
    pub fn rotation_about(axis: &Vector3<f64>, angle: f64) -> Matrix3<f64> {
        let (s, c) = angle.sin_cos();
        let t = 1.0 - c;
        let (x, y, z) = (axis.x, axis.y, axis.z);
        Matrix3::new(
            t * x * x + c,
            t * x * y - s * z,
            t * x * z + s * y,
            t * x * y + s * z,
            t * y * y + c,
            t * y * z - s * x,
            t * x * z - s * y,
            t * y * z + s * x,
            t * z * z + c,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nalgebra::{Translation3, UnitQuaternion};

    #[test]
    fn matches_nalgebra() {
        let a = Isometry3::from_parts(
            Translation3::new(0.1, -0.2, 0.3),
            UnitQuaternion::from_euler_angles(0.3, -1.1, 2.0),
        );
        let b = Isometry3::from_parts(
            Translation3::new(-0.5, 0.25, 1.0),
            UnitQuaternion::from_euler_angles(-0.7, 0.4, 0.1),
        );
        let fa = Frame::from_isometry(&a);
        let fb = Frame::from_isometry(&b);
        let p = Vector3::new(0.3, 0.7, -0.9);
        let expected = (a * b) * nalgebra::Point3::from(p);
        assert!((fa.compose(&fb).point(&p) - expected.coords).norm() < 1e-14);
        let back = fa.inverse().point(&fa.point(&p));
        assert!((back - p).norm() < 1e-14);
        let axis = Vector3::new(1.0, 2.0, -0.5).normalize();
        let r = UnitQuaternion::from_axis_angle(&nalgebra::Unit::new_normalize(axis), 0.8);
        let diff = Frame::rotation_about(&axis, 0.8) - *r.to_rotation_matrix().matrix();
        assert!(diff.norm() < 1e-14);
    }
}
