//! Toy data sets: equal-weight mixtures of isotropic Gaussians with known modes.
//!
//! - 1-D mixture with means {1, 2, 3}, σ = 0.05 (Aithal et al. 2024, `Gaussian1D`).
//! - 2-D ring of 8 on the unit circle, σ = 0.01 (VEEGAN / PacGAN).
//! - 2-D grid of 25 at {-4, -2, 0, 2, 4}², σ = 0.05 (VEEGAN / PacGAN; Aithal's `gaussian25`).
//!
//! All randomness comes from a caller's seeded `ChaCha8Rng`.

use rand::seq::SliceRandom;
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use rand_distr::StandardNormal;
use serde::Serialize;

use crate::{Error, Result};

/// A set of points of equal dimension, stored row-major: point `i` is
/// `values[i * dim .. (i + 1) * dim]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Points {
    dim: usize,
    values: Vec<f64>,
}

impl Points {
    /// Points from a flat row-major buffer; `values.len()` must be a multiple of `dim`.
    pub fn new(dim: usize, values: Vec<f64>) -> Result<Self> {
        if dim == 0 || values.len() % dim != 0 {
            return Err(Error::Shape {
                what: "points buffer".into(),
                expected: vec![values.len() / dim.max(1), dim],
                found: vec![values.len()],
            });
        }
        Ok(Self { dim, values })
    }

    /// Points from rows; every row must have the same, non-zero length.
    pub fn from_rows(rows: &[Vec<f64>]) -> Result<Self> {
        let dim = rows.first().map_or(0, Vec::len);
        let mut values = Vec::with_capacity(rows.len() * dim);
        for (i, row) in rows.iter().enumerate() {
            if row.len() != dim {
                return Err(Error::Shape {
                    what: format!("points row {i}"),
                    expected: vec![dim],
                    found: vec![row.len()],
                });
            }
            values.extend_from_slice(row);
        }
        Self::new(dim, values)
    }

    /// The dimension of every point.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// The number of points.
    pub fn len(&self) -> usize {
        self.values.len() / self.dim
    }

    /// True when there are no points.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// Point `i` (panics when out of range, like slice indexing; callers iterate `0..len()`).
    pub fn row(&self, i: usize) -> &[f64] {
        &self.values[i * self.dim..(i + 1) * self.dim]
    }

    /// Iterates over the points.
    pub fn rows(&self) -> impl Iterator<Item = &[f64]> {
        self.values.chunks_exact(self.dim)
    }

    /// The flat row-major buffer.
    pub fn values(&self) -> &[f64] {
        &self.values
    }

    /// The points with `f(point)` applied to each coordinate vector.
    pub fn map(&self, mut f: impl FnMut(&[f64], &mut [f64])) -> Points {
        let mut values = vec![0.0; self.values.len()];
        for (src, dst) in self
            .values
            .chunks_exact(self.dim)
            .zip(values.chunks_exact_mut(self.dim))
        {
            f(src, dst);
        }
        Points {
            dim: self.dim,
            values,
        }
    }
}

/// The data sets of the experiments.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DatasetKind {
    /// 1-D, means {1, 2, 3}, σ = 0.05.
    Line3,
    /// 2-D, 8 modes on the unit circle, σ = 0.01.
    Ring8,
    /// 2-D, 25 modes at {-4, -2, 0, 2, 4}², σ = 0.05.
    Grid25,
}

impl DatasetKind {
    /// Every data set, in report order.
    pub const ALL: [DatasetKind; 3] = [DatasetKind::Line3, DatasetKind::Ring8, DatasetKind::Grid25];

    /// The name used in JSON keys and file names.
    pub fn name(self) -> &'static str {
        match self {
            DatasetKind::Line3 => "line3",
            DatasetKind::Ring8 => "ring8",
            DatasetKind::Grid25 => "grid25",
        }
    }

    /// The mixture that defines this data set.
    pub fn mixture(self) -> Mixture {
        match self {
            DatasetKind::Line3 => Mixture::line(&[1.0, 2.0, 3.0], 0.05),
            DatasetKind::Ring8 => {
                let rows: Vec<Vec<f64>> = (0..8)
                    .map(|i| {
                        let angle_rad = 2.0 * std::f64::consts::PI * f64::from(i) / 8.0;
                        vec![angle_rad.cos(), angle_rad.sin()]
                    })
                    .collect();
                Mixture {
                    means: points_from_valid_rows(&rows),
                    sigma: 0.01,
                }
            }
            DatasetKind::Grid25 => {
                let axis = [-4.0, -2.0, 0.0, 2.0, 4.0];
                let rows: Vec<Vec<f64>> = axis
                    .iter()
                    .flat_map(|&x| axis.iter().map(move |&y| vec![x, y]))
                    .collect();
                Mixture {
                    means: points_from_valid_rows(&rows),
                    sigma: 0.05,
                }
            }
        }
    }
}

/// Rows built in this file all have the same length, so this cannot fail.
fn points_from_valid_rows(rows: &[Vec<f64>]) -> Points {
    let dim = rows.first().map_or(1, Vec::len);
    Points {
        dim,
        values: rows.iter().flatten().copied().collect(),
    }
}

/// An equal-weight mixture of isotropic Gaussians N(mean_k, σ² I).
#[derive(Debug, Clone, PartialEq)]
pub struct Mixture {
    /// The mode means, one row per mode: (K, D).
    pub means: Points,
    /// The common standard deviation of every component (data units).
    pub sigma: f64,
}

/// Samples drawn from a [`Mixture`] with the index of the component each came from.
#[derive(Debug, Clone, PartialEq)]
pub struct LabelledPoints {
    /// The points: (N, D).
    pub points: Points,
    /// The generating component of each point: (N,).
    pub labels: Vec<usize>,
}

impl Mixture {
    /// A 1-D mixture with the given means.
    pub fn line(means: &[f64], sigma: f64) -> Mixture {
        Mixture {
            means: Points {
                dim: 1,
                values: means.to_vec(),
            },
            sigma,
        }
    }

    /// The number of modes K.
    pub fn num_modes(&self) -> usize {
        self.means.len()
    }

    /// The dimension D.
    pub fn dim(&self) -> usize {
        self.means.dim()
    }

    /// Draws `n` points with exactly balanced components (point `i` comes from component
    /// `i mod K`, then the order is shuffled), as Aithal et al.'s generator does.
    pub fn sample(&self, n: usize, rng: &mut ChaCha8Rng) -> LabelledPoints {
        let k = self.num_modes().max(1);
        let mut labels: Vec<usize> = (0..n).map(|i| i % k).collect();
        labels.shuffle(rng);
        let dim = self.dim();
        let mut values = Vec::with_capacity(n * dim);
        for &label in &labels {
            for &mean in self.means.row(label) {
                let z: f64 = rng.sample(StandardNormal);
                values.push(mean + self.sigma * z);
            }
        }
        LabelledPoints {
            points: Points { dim, values },
            labels,
        }
    }
}

/// A per-data-set affine map into the network's space: `y = (x - centre) / scale`, the same scalar
/// scale on every coordinate so distances keep their ratios.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Normaliser {
    /// Subtracted first: (D,).
    pub centre: Vec<f64>,
    /// Then divided by this (> 0).
    pub scale: f64,
}

impl Normaliser {
    /// The normalisation the experiments use (documented in the report):
    /// - centre: the mean of the mode means;
    /// - 1-D sets: scale 1 (only shifted), as Aithal et al. leave 1-D data unscaled, so a mode
    ///   spacing keeps its meaning relative to the noise schedule (this matters for the distance
    ///   sweep, where every distance uses the same scale);
    /// - 2-D sets: the per-coordinate standard deviation of the mode means (grid: √8 ≈ 2.83 as
    ///   Aithal's `gaussian25`; ring: 1/√2), so the data have about unit variance.
    pub fn for_mixture(mixture: &Mixture) -> Normaliser {
        let dim = mixture.dim();
        let k = mixture.num_modes().max(1) as f64;
        let mut centre = vec![0.0; dim];
        for row in mixture.means.rows() {
            for (c, v) in centre.iter_mut().zip(row) {
                *c += v / k;
            }
        }
        let scale = if dim == 1 {
            1.0
        } else {
            let mut var = 0.0;
            for row in mixture.means.rows() {
                for (c, v) in centre.iter().zip(row) {
                    var += (v - c).powi(2);
                }
            }
            let std = (var / (k * dim as f64)).sqrt();
            if std > 0.0 {
                std
            } else {
                1.0
            }
        };
        Normaliser { centre, scale }
    }

    /// Data units to network units.
    pub fn forward(&self, points: &Points) -> Points {
        points.map(|src, dst| {
            for ((d, s), c) in dst.iter_mut().zip(src).zip(&self.centre) {
                *d = (s - c) / self.scale;
            }
        })
    }

    /// Network units to data units.
    pub fn inverse(&self, points: &Points) -> Points {
        points.map(|src, dst| {
            for ((d, s), c) in dst.iter_mut().zip(src).zip(&self.centre) {
                *d = s * self.scale + c;
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;

    use super::*;

    #[test]
    fn datasets_have_the_published_geometry() {
        let line = DatasetKind::Line3.mixture();
        assert_eq!(line.means.values(), &[1.0, 2.0, 3.0]);
        let ring = DatasetKind::Ring8.mixture();
        assert_eq!(ring.num_modes(), 8);
        for row in ring.means.rows() {
            assert!((row[0].hypot(row[1]) - 1.0).abs() < 1e-12);
        }
        let grid = DatasetKind::Grid25.mixture();
        assert_eq!(grid.num_modes(), 25);
        assert_eq!(grid.means.row(24), &[4.0, 4.0]);
        assert_eq!(grid.sigma, 0.05);
    }

    #[test]
    fn samples_are_balanced_seeded_and_near_their_mode() {
        let mixture = DatasetKind::Ring8.mixture();
        let a = mixture.sample(800, &mut ChaCha8Rng::seed_from_u64(3));
        let b = mixture.sample(800, &mut ChaCha8Rng::seed_from_u64(3));
        assert_eq!(a, b);
        for k in 0..8 {
            assert_eq!(a.labels.iter().filter(|&&l| l == k).count(), 100);
        }
        for (i, row) in a.points.rows().enumerate() {
            let mean = mixture.means.row(a.labels[i]);
            let dist = (row[0] - mean[0]).hypot(row[1] - mean[1]);
            assert!(dist < 6.0 * mixture.sigma, "point {i} at {dist}");
        }
    }

    #[test]
    fn normaliser_round_trips_and_matches_aithal_grid_scale() {
        let grid = DatasetKind::Grid25.mixture();
        let norm = Normaliser::for_mixture(&grid);
        assert!((norm.scale - 8f64.sqrt()).abs() < 1e-12);
        let line = Normaliser::for_mixture(&DatasetKind::Line3.mixture());
        assert_eq!((line.centre.clone(), line.scale), (vec![2.0], 1.0));
        let pts = Points::from_rows(&[vec![1.0, -3.0], vec![0.5, 2.0]]).unwrap();
        let back = norm.inverse(&norm.forward(&pts));
        for (a, b) in back.values().iter().zip(pts.values()) {
            assert!((a - b).abs() < 1e-12);
        }
    }

    #[test]
    fn ragged_rows_are_rejected() {
        let err = Points::from_rows(&[vec![1.0], vec![1.0, 2.0]]).unwrap_err();
        assert!(err.to_string().contains("row 1"), "{err}");
    }
}
