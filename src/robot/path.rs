//! Joint-space paths: a sequence of waypoints, each one joint position per joint (radians).

use serde::Serialize;

use crate::{Error, Result};

/// A joint-space path of `len()` waypoints × `dof()` joints, stored row-major (waypoint after
/// waypoint), radians. Always holds at least one waypoint.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct JointPath {
    dof: usize,
    positions_rad: Vec<f64>,
}

impl JointPath {
    /// A path from row-major positions, shape `(len, dof)` flattened.
    pub fn new(dof: usize, positions_rad: Vec<f64>) -> Result<Self> {
        if dof == 0 || positions_rad.is_empty() || positions_rad.len() % dof != 0 {
            return Err(Error::Shape {
                what: "joint path (waypoints x joints, flattened)".to_string(),
                expected: vec![positions_rad.len() / dof.max(1), dof],
                found: vec![positions_rad.len()],
            });
        }
        Ok(JointPath { dof, positions_rad })
    }

    /// A path from a list of waypoints, each with the same number of joints.
    pub fn from_waypoints(waypoints: &[Vec<f64>]) -> Result<Self> {
        let dof = waypoints.first().map_or(0, Vec::len);
        if let Some((i, bad)) = waypoints.iter().enumerate().find(|(_, w)| w.len() != dof) {
            return Err(Error::Shape {
                what: format!("joint path waypoint {i}"),
                expected: vec![dof],
                found: vec![bad.len()],
            });
        }
        Self::new(dof, waypoints.concat())
    }

    /// Number of joints per waypoint.
    pub fn dof(&self) -> usize {
        self.dof
    }

    /// Number of waypoints (>= 1).
    pub fn len(&self) -> usize {
        self.positions_rad.len() / self.dof
    }

    /// Always false: a path holds at least one waypoint.
    pub fn is_empty(&self) -> bool {
        self.positions_rad.is_empty()
    }

    /// Waypoint `i`, or `None` past the end.
    pub fn waypoint(&self, i: usize) -> Option<&[f64]> {
        self.positions_rad.get(i * self.dof..(i + 1) * self.dof)
    }

    /// The first waypoint.
    pub fn first(&self) -> &[f64] {
        &self.positions_rad[..self.dof]
    }

    /// The last waypoint.
    pub fn last(&self) -> &[f64] {
        &self.positions_rad[self.positions_rad.len() - self.dof..]
    }

    /// Iterates over the waypoints in order.
    pub fn waypoints(&self) -> std::slice::ChunksExact<'_, f64> {
        self.positions_rad.chunks_exact(self.dof)
    }

    /// The flattened positions, shape `(len, dof)`.
    pub fn as_slice(&self) -> &[f64] {
        &self.positions_rad
    }

    /// Moves the end points onto `start_rad` and (when given) `end_rad` by adding a linear
    /// ramp of the offsets: waypoint `i` of `n` moves by `(1 - s) * (start - first) + s *
    /// (end - last)` with `s = i / (n - 1)`. The shape of the path in between is kept (a
    /// straight segment stays straight), unlike snapping only the first or last waypoint,
    /// which would put a jump into the path. A one-waypoint path becomes `start_rad`.
    pub fn anchor(&mut self, start_rad: &[f64], end_rad: Option<&[f64]>) -> Result<()> {
        for (what, values) in [("start", Some(start_rad)), ("end", end_rad)] {
            if let Some(values) = values {
                if values.len() != self.dof {
                    return Err(Error::Shape {
                        what: format!("joint path anchor ({what})"),
                        expected: vec![self.dof],
                        found: vec![values.len()],
                    });
                }
            }
        }
        let n = self.len();
        let first = self.first().to_vec();
        let last = self.last().to_vec();
        let dof = self.dof;
        for (i, waypoint) in self.positions_rad.chunks_exact_mut(dof).enumerate() {
            let s = if n > 1 {
                i as f64 / (n - 1) as f64
            } else {
                0.0
            };
            for j in 0..dof {
                let mut offset = (1.0 - s) * (start_rad[j] - first[j]);
                if let Some(end) = end_rad {
                    offset += s * (end[j] - last[j]);
                }
                waypoint[j] += offset;
            }
        }
        // Exactly, not up to rounding.
        self.positions_rad[..dof].copy_from_slice(start_rad);
        if let (Some(end), true) = (end_rad, n > 1) {
            let from = self.positions_rad.len() - dof;
            self.positions_rad[from..].copy_from_slice(end);
        }
        Ok(())
    }

    /// True when every value is finite.
    pub fn is_finite(&self) -> bool {
        self.positions_rad.iter().all(|v| v.is_finite())
    }

    /// Joint-space length: the sum of the Euclidean distances between consecutive waypoints, rad.
    pub fn length_rad(&self) -> f64 {
        self.waypoints()
            .zip(self.waypoints().skip(1))
            .map(|(a, b)| distance(a, b))
            .sum()
    }

    /// The path resampled to `count` waypoints equally spaced in joint-space arc length (the
    /// first and last waypoints are kept). A path of zero length repeats its first waypoint.
    pub fn resample_by_arc_length(&self, count: usize) -> JointPath {
        let count = count.max(1);
        let total = self.length_rad();
        let mut out = Vec::with_capacity(count * self.dof);
        if total.is_nan() || total <= 0.0 || self.len() < 2 || count == 1 {
            for i in 0..count {
                let source = if count > 1 && i + 1 == count {
                    self.last()
                } else {
                    self.first()
                };
                out.extend_from_slice(source);
            }
            return JointPath {
                dof: self.dof,
                positions_rad: out,
            };
        }
        let mut segment = 0usize;
        let mut segment_start = 0.0;
        let mut segment_length = self.segment_length(0);
        for i in 0..count {
            let target = total * i as f64 / (count - 1) as f64;
            while segment + 2 < self.len() && segment_start + segment_length < target {
                segment_start += segment_length;
                segment += 1;
                segment_length = self.segment_length(segment);
            }
            let a = &self.positions_rad[segment * self.dof..(segment + 1) * self.dof];
            let b = &self.positions_rad[(segment + 1) * self.dof..(segment + 2) * self.dof];
            let s = if segment_length > 0.0 {
                ((target - segment_start) / segment_length).clamp(0.0, 1.0)
            } else {
                0.0
            };
            out.extend(a.iter().zip(b).map(|(x, y)| x + s * (y - x)));
        }
        JointPath {
            dof: self.dof,
            positions_rad: out,
        }
    }

    /// Mean Euclidean distance between corresponding waypoints, rad; `None` when the shapes
    /// differ.
    pub fn mean_waypoint_distance_rad(&self, other: &JointPath) -> Option<f64> {
        if self.dof != other.dof || self.len() != other.len() {
            return None;
        }
        let sum: f64 = self
            .waypoints()
            .zip(other.waypoints())
            .map(|(a, b)| distance(a, b))
            .sum();
        Some(sum / self.len() as f64)
    }

    fn segment_length(&self, segment: usize) -> f64 {
        match (self.waypoint(segment), self.waypoint(segment + 1)) {
            (Some(a), Some(b)) => distance(a, b),
            _ => 0.0,
        }
    }
}

/// Euclidean distance between two joint vectors of equal length, rad.
pub fn distance(a: &[f64], b: &[f64]) -> f64 {
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y) * (x - y))
        .sum::<f64>()
        .sqrt()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn anchor_ramps_both_ends_and_keeps_straight_segments_straight() {
        let mut path = JointPath::new(2, vec![0.0, 0.0, 1.0, 1.0, 2.0, 2.0]).unwrap();
        path.anchor(&[0.2, -0.2], Some(&[2.0, 1.6])).unwrap();
        let expect = [0.2, -0.2, 1.1, 0.7, 2.0, 1.6];
        for (a, b) in path.as_slice().iter().zip(expect) {
            assert!((a - b).abs() < 1e-12, "{:?}", path.as_slice());
        }
        // Only the start: the end stays where it was.
        let mut path = JointPath::new(1, vec![0.0, 1.0, 2.0]).unwrap();
        path.anchor(&[1.0], None).unwrap();
        assert_eq!(path.as_slice(), &[1.0, 1.5, 2.0]);
        assert!(path.anchor(&[1.0, 2.0], None).is_err());
        assert!(path.anchor(&[1.0], Some(&[])).is_err());
    }

    #[test]
    fn shapes_are_checked() {
        assert!(JointPath::new(2, vec![0.0; 3]).is_err());
        assert!(JointPath::new(0, vec![]).is_err());
        assert!(JointPath::from_waypoints(&[vec![0.0, 1.0], vec![0.0]]).is_err());
        let path = JointPath::from_waypoints(&[vec![0.0, 1.0], vec![2.0, 3.0]]).unwrap();
        assert_eq!((path.len(), path.dof()), (2, 2));
        assert_eq!(path.last(), &[2.0, 3.0]);
        assert_eq!(path.waypoint(2), None);
    }

    #[test]
    fn arc_length_resampling_is_uniform() {
        let path = JointPath::from_waypoints(&[vec![0.0], vec![1.0], vec![3.0]]).unwrap();
        assert!((path.length_rad() - 3.0).abs() < 1e-12);
        let resampled = path.resample_by_arc_length(4);
        assert_eq!(resampled.as_slice(), &[0.0, 1.0, 2.0, 3.0]);
        let point = JointPath::from_waypoints(&[vec![1.0], vec![1.0]]).unwrap();
        assert_eq!(point.resample_by_arc_length(3).as_slice(), &[1.0, 1.0, 1.0]);
    }
}
