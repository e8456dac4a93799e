//! Forward kinematics of body, link and sphere frames, and geometric Jacobians, without
//! allocation: callers pass buffers sized by [`Robot::dof`], link and sphere counts.

use nalgebra::{Matrix3, Vector3};

use super::frame::Frame;
use super::model::{JointKind, Robot};

impl Robot {
    /// Body frames in the base frame: `frames[0]` is the base, `frames[j + 1]` follows joint `j`.
    /// `q.len() == dof`, `frames.len() == dof + 1`.
    #[inline]
    pub fn body_frames(&self, q: &[f64], frames: &mut [Frame]) {
        debug_assert_eq!(q.len(), self.dof());
        debug_assert_eq!(frames.len(), self.dof() + 1);
        frames[0] = Frame::IDENTITY;
        for (j, joint) in self.joints.iter().enumerate() {
            let joint_frame = frames[j].compose(&joint.offset);
            frames[j + 1] = match joint.kind {
                JointKind::Revolute | JointKind::Continuous if joint.axis == Vector3::z() => {
                    Frame {
                        rotation: rotated_about_z(&joint_frame.rotation, q[j]),
                        translation: joint_frame.translation,
                    }
                }
                JointKind::Revolute | JointKind::Continuous => Frame {
                    rotation: joint_frame.rotation * Frame::rotation_about(&joint.axis, q[j]),
                    translation: joint_frame.translation,
                },
                JointKind::Prismatic => Frame {
                    rotation: joint_frame.rotation,
                    translation: joint_frame.translation
                        + joint_frame.rotation * (joint.axis * q[j]),
                },
            };
        }
    }

    /// Every link frame (order of [`Robot::links`]) from body frames.
    pub fn link_frames(&self, body_frames: &[Frame], out: &mut [Frame]) {
        for (o, link) in out.iter_mut().zip(&self.links) {
            *o = body_frames[link.body].compose(&link.offset);
        }
    }

    /// The tip link's frame from body frames.
    #[inline]
    pub fn tip_frame(&self, body_frames: &[Frame]) -> Frame {
        let link = &self.links[self.tip];
        body_frames[link.body].compose(&link.offset)
    }

    /// Sphere centres in the base frame from body frames (`out.len() == spheres.len()`).
    #[inline]
    pub fn sphere_centers(&self, body_frames: &[Frame], out: &mut [Vector3<f64>]) {
        for (o, s) in out.iter_mut().zip(&self.spheres) {
            *o = body_frames[s.body].point(&s.center);
        }
    }

    /// Sphere centres of `n` configurations at once: `qs` is `n x dof` row-major, `out` is
    /// `n x spheres`, `frames` a scratch of `dof + 1`.
    pub fn sphere_centers_batch(&self, qs: &[f64], frames: &mut [Frame], out: &mut [Vector3<f64>]) {
        let (dof, ns) = (self.dof(), self.spheres.len());
        for (q, centers) in qs.chunks_exact(dof).zip(out.chunks_exact_mut(ns.max(1))) {
            self.body_frames(q, frames);
            self.sphere_centers(frames, &mut centers[..ns]);
        }
    }

    /// Geometric Jacobian (base frame) of the point `p` (base frame) attached to body `body`:
    /// `cols[j] = [v; w]` for joint `j` (zero for joints after the body).
    pub fn point_jacobian(
        &self,
        body_frames: &[Frame],
        body: usize,
        p: &Vector3<f64>,
        cols: &mut [[f64; 6]],
    ) {
        for (j, (col, joint)) in cols.iter_mut().zip(&self.joints).enumerate() {
            if j >= body {
                *col = [0.0; 6];
                continue;
            }
            let frame = &body_frames[j + 1];
            let axis = frame.rotation * joint.axis;
            *col = match joint.kind {
                JointKind::Revolute | JointKind::Continuous => {
                    let v = axis.cross(&(p - frame.translation));
                    [v.x, v.y, v.z, axis.x, axis.y, axis.z]
                }
                JointKind::Prismatic => [axis.x, axis.y, axis.z, 0.0, 0.0, 0.0],
            };
        }
    }

    /// Geometric Jacobian of the tip (linear rows first, then angular), one column per joint.
    pub fn tip_jacobian(&self, body_frames: &[Frame], cols: &mut [[f64; 6]]) {
        let tip = self.tip_frame(body_frames);
        let body = self.links[self.tip].body;
        self.point_jacobian(body_frames, body, &tip.translation, cols);
    }

    /// A scratch of body frames for this robot.
    pub fn frames_scratch(&self) -> Vec<Frame> {
        vec![Frame::IDENTITY; self.dof() + 1]
    }

    /// Joint-space difference `b - a`, shortest signed for continuous joints.
    #[inline]
    pub fn joint_delta(&self, a: &[f64], b: &[f64], out: &mut [f64]) {
        for (j, joint) in self.joints.iter().enumerate() {
            let d = b[j] - a[j];
            out[j] = match joint.kind {
                JointKind::Continuous => wrap_pi(d),
                _ => d,
            };
        }
    }

    /// Whether `q` is within the position limits (continuous joints always are).
    pub fn within_limits(&self, q: &[f64]) -> bool {
        self.joints
            .iter()
            .zip(q)
            .all(|(j, v)| v.is_finite() && *v >= j.limits.lower && *v <= j.limits.upper)
    }
}

/// `r * Frame::rotation_about(z, angle)` with the same roundings, without the products by the
/// rotation's zeros: columns 0 and 1 turn by `angle`, column 2 is scaled by the Rodrigues
/// matrix's `(1 - cos) + cos` (1 up to a rounding).
#[inline]
fn rotated_about_z(r: &Matrix3<f64>, angle: f64) -> Matrix3<f64> {
    let (s, c) = angle.sin_cos();
    let k = (1.0 - c) + c;
    let (c0, c1, c2) = (r.column(0), r.column(1), r.column(2));
    let mut out = Matrix3::zeros();
    out.set_column(0, &(c0 * c + c1 * s));
    out.set_column(1, &(c0 * -s + c1 * c));
    out.set_column(2, &(c2 * k));
    out
}

/// `angle` wrapped into `[-pi, pi)`.
#[inline]
pub fn wrap_pi(angle: f64) -> f64 {
    let two_pi = std::f64::consts::TAU;
    (angle + std::f64::consts::PI).rem_euclid(two_pi) - std::f64::consts::PI
}

#[cfg(test)]
mod tests {
    use super::super::model::RobotFiles;
    use super::super::urdf::Urdf;
    use super::*;

    /// The rotation about z without the zeros' products equals `r * rotation_about(z, angle)`
    /// entry for entry (the checker's results depend on it).
    #[test]
    fn rotation_about_z_is_the_general_product() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
        for _ in 0..10_000 {
            let r = nalgebra::Rotation3::from_euler_angles(
                rng.random_range(-3.2..3.2),
                rng.random_range(-1.6..1.6),
                rng.random_range(-3.2..3.2),
            )
            .into_inner();
            let angle = rng.random_range(-7.0..7.0);
            let general = r * Frame::rotation_about(&Vector3::z(), angle);
            let fast = rotated_about_z(&r, angle);
            for (a, b) in fast.iter().zip(general.iter()) {
                assert!(a == b, "{fast} vs {general}");
            }
        }
    }

    /// Jacobian columns against central differences of the tip position.
    #[test]
    fn jacobian_matches_finite_differences() {
        let xml = r#"<robot name="r">
          <link name="base"/><link name="l1"/><link name="l2"/><link name="l3"/><link name="tip"/>
          <joint name="j1" type="revolute"><parent link="base"/><child link="l1"/>
            <origin xyz="0 0 0.3"/><axis xyz="0 0 1"/><limit lower="-3" upper="3" velocity="1"/></joint>
          <joint name="j2" type="prismatic"><parent link="l1"/><child link="l2"/>
            <origin xyz="0.1 0 0" rpy="0.3 0.2 0.1"/><axis xyz="1 0 0"/><limit lower="0" upper="0.5" velocity="1"/></joint>
          <joint name="j3" type="continuous"><parent link="l2"/><child link="l3"/>
            <origin xyz="0 0.2 0" rpy="1.5707963 0 0"/><axis xyz="0 1 1"/><limit velocity="1"/></joint>
          <joint name="t" type="fixed"><parent link="l3"/><child link="tip"/><origin xyz="0.25 0 0.1"/></joint>
        </robot>"#;
        let urdf = Urdf::from_xml(xml, "t").unwrap();
        let robot = Robot::from_urdf(&urdf, None, None, None).unwrap();
        let _ = RobotFiles::urdf("unused");
        assert_eq!(robot.dof(), 3);
        let q = [0.4, 0.2, -0.7];
        let mut frames = robot.frames_scratch();
        robot.body_frames(&q, &mut frames);
        let mut cols = [[0.0; 6]; 3];
        robot.tip_jacobian(&frames, &mut cols);
        for j in 0..3 {
            let h = 1e-6;
            let mut qp = q;
            qp[j] += h;
            let mut qm = q;
            qm[j] -= h;
            robot.body_frames(&qp, &mut frames);
            let pp = robot.tip_frame(&frames).translation;
            robot.body_frames(&qm, &mut frames);
            let pm = robot.tip_frame(&frames).translation;
            let fd = (pp - pm) / (2.0 * h);
            for r in 0..3 {
                assert!((fd[r] - cols[j][r]).abs() < 1e-7, "joint {j} row {r}");
            }
        }
        assert!((wrap_pi(3.5) - (3.5 - std::f64::consts::TAU)).abs() < 1e-12);
    }
}
