//! Where candidate paths come from: the [`CandidateSource`] trait (the diffusion model through an
//! adapter, or a synthetic source in tests) and the [`CandidateBatch`] it returns.

use super::condition::ConditionTerm;
use crate::robot::JointPath;
use crate::{Error, Result};

/// A batch of K candidate joint-space paths of T waypoints × D joints (radians), with the
/// per-candidate hallucination score.
#[derive(Debug, Clone, PartialEq)]
pub struct CandidateBatch {
    horizon: usize,
    dof: usize,
    /// `(K, T, D)` row-major, radians.
    positions_rad: Vec<f64>,
    /// `(K,)`: variance of the predicted x̂0 over the last reverse steps (Aithal et al. 2024),
    /// in the model's normalised units; 0 for sources without one.
    x0_variance: Vec<f64>,
}

impl CandidateBatch {
    /// A batch from `(K, T, D)` row-major positions and `(K,)` x̂0 variances; the shapes are
    /// checked (K, T, D >= 1).
    pub fn new(
        num_candidates: usize,
        horizon: usize,
        dof: usize,
        positions_rad: Vec<f64>,
        x0_variance: Vec<f64>,
    ) -> Result<Self> {
        let expected = num_candidates * horizon * dof;
        if num_candidates == 0 || horizon == 0 || dof == 0 || positions_rad.len() != expected {
            return Err(Error::Shape {
                what: "candidate batch positions (K, T, D)".to_string(),
                expected: vec![num_candidates, horizon, dof],
                found: vec![positions_rad.len()],
            });
        }
        if x0_variance.len() != num_candidates {
            return Err(Error::Shape {
                what: "candidate batch x0 variance (K,)".to_string(),
                expected: vec![num_candidates],
                found: vec![x0_variance.len()],
            });
        }
        Ok(CandidateBatch {
            horizon,
            dof,
            positions_rad,
            x0_variance,
        })
    }

    /// A batch from individual paths (all of the same shape) and their x̂0 variances.
    pub fn from_paths(paths: &[JointPath], x0_variance: Vec<f64>) -> Result<Self> {
        let (horizon, dof) = paths.first().map_or((0, 0), |p| (p.len(), p.dof()));
        if let Some((i, bad)) = paths
            .iter()
            .enumerate()
            .find(|(_, p)| p.len() != horizon || p.dof() != dof)
        {
            return Err(Error::Shape {
                what: format!("candidate path {i} (T, D)"),
                expected: vec![horizon, dof],
                found: vec![bad.len(), bad.dof()],
            });
        }
        let positions = paths
            .iter()
            .flat_map(|p| p.as_slice().iter().copied())
            .collect();
        Self::new(paths.len(), horizon, dof, positions, x0_variance)
    }

    /// K.
    pub fn num_candidates(&self) -> usize {
        self.x0_variance.len()
    }

    /// T, waypoints per path.
    pub fn horizon(&self) -> usize {
        self.horizon
    }

    /// D, joints per waypoint.
    pub fn dof(&self) -> usize {
        self.dof
    }

    /// Candidate `k` as `(T, D)` row-major radians, or `None` past the end.
    pub fn path_slice(&self, k: usize) -> Option<&[f64]> {
        let size = self.horizon * self.dof;
        self.positions_rad.get(k * size..(k + 1) * size)
    }

    /// Candidate `k` as a [`JointPath`], or `None` past the end.
    pub fn path(&self, k: usize) -> Option<JointPath> {
        self.path_slice(k)
            .and_then(|p| JointPath::new(self.dof, p.to_vec()).ok())
    }

    /// All positions, `(K, T, D)` row-major radians.
    pub fn positions_rad(&self) -> &[f64] {
        &self.positions_rad
    }

    /// `(K,)` x̂0 variances.
    pub fn x0_variance(&self) -> &[f64] {
        &self.x0_variance
    }
}

/// Anything that proposes candidate paths for a condition: the diffusion model (through an
/// adapter) or a synthetic source.
pub trait CandidateSource: Send {
    /// The ordered condition terms the source expects (the model's list).
    fn condition_terms(&self) -> &[ConditionTerm];

    /// The mode names, in label order (label `i` is `mode_names()[i]`); empty when the source
    /// takes no labels.
    fn mode_names(&self) -> &[String];

    /// Samples `num_samples` candidates for the raw condition vector (terms in
    /// [`Self::condition_terms`] order, not normalised). `label`: the requested mode's index,
    /// `None` for any mode. The same inputs and `seed` give the same batch.
    fn sample(
        &mut self,
        condition: &[f32],
        label: Option<usize>,
        num_samples: usize,
        seed: u64,
    ) -> Result<CandidateBatch>;
}
