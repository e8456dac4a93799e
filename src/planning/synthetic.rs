//! A synthetic [`CandidateSource`] for tests, benchmarks and demos without a trained model:
//! bundles of smooth joint-space paths from the start configuration (read from the condition)
//! through a via configuration to an end configuration, each candidate offset by seeded smooth
//! noise. Bundles around an obstacle on each side plus one straight through it imitate a
//! multimodal model with mode interpolation.

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};

use super::condition::ConditionTerm;
use super::source::{CandidateBatch, CandidateSource};
use crate::{Error, Result};

/// One bundle of similar candidate paths.
#[derive(Debug, Clone, PartialEq)]
pub struct SyntheticBundle {
    /// Configurations the path passes through between the start and `end_rad` (radians), at
    /// equal parameter spacing; empty for a straight joint-space path. The path is the uniform
    /// Catmull-Rom spline through start, vias and end.
    pub via_rad: Vec<Vec<f64>>,
    /// Configuration at the end of the path, radians.
    pub end_rad: Vec<f64>,
    /// Relative share of the K candidates.
    pub weight: usize,
    /// Standard deviation of each candidate's smooth offset, radians (0 at both ends).
    pub noise_rad: f64,
    /// The x̂0 variance reported for this bundle's candidates.
    pub x0_variance: f64,
    /// The mode name the bundle belongs to; a label request samples only matching bundles.
    pub label: Option<String>,
}

/// A [`CandidateSource`] made of [`SyntheticBundle`]s.
#[derive(Debug, Clone)]
pub struct SyntheticSource {
    horizon: usize,
    dof: usize,
    terms: Vec<ConditionTerm>,
    mode_names: Vec<String>,
    bundles: Vec<SyntheticBundle>,
}

impl SyntheticSource {
    /// A source of paths of `horizon` waypoints. `terms` must contain
    /// [`ConditionTerm::JointPositions`] (the start is read from it); every bundle needs `dof`
    /// joints and a weight > 0.
    pub fn new(
        horizon: usize,
        dof: usize,
        terms: Vec<ConditionTerm>,
        mode_names: Vec<String>,
        bundles: Vec<SyntheticBundle>,
    ) -> Result<Self> {
        if horizon < 2 {
            return Err(Error::config(
                "synthetic.horizon",
                "need at least 2 waypoints",
            ));
        }
        if !terms.contains(&ConditionTerm::JointPositions) {
            return Err(Error::config(
                "synthetic.terms",
                "need `joint_positions` to read the start configuration",
            ));
        }
        if bundles.is_empty() {
            return Err(Error::config(
                "synthetic.bundles",
                "need at least one bundle",
            ));
        }
        for (i, bundle) in bundles.iter().enumerate() {
            let bad_via = bundle.via_rad.iter().any(|v| v.len() != dof);
            if bundle.end_rad.len() != dof || bad_via {
                return Err(Error::config(
                    format!("synthetic.bundles[{i}]"),
                    format!("via and end need {dof} joints"),
                ));
            }
            if bundle.weight == 0 || !(bundle.noise_rad >= 0.0 && bundle.noise_rad.is_finite()) {
                return Err(Error::config(
                    format!("synthetic.bundles[{i}]"),
                    "need weight > 0 and a finite noise >= 0",
                ));
            }
        }
        Ok(SyntheticSource {
            horizon,
            dof,
            terms,
            mode_names,
            bundles,
        })
    }

    /// The bundles, in order.
    pub fn bundles(&self) -> &[SyntheticBundle] {
        &self.bundles
    }

    /// For `num_samples` candidates drawn from `bundles` (indices), the bundle of each candidate:
    /// contiguous blocks proportional to the weights, in bundle order.
    fn assignment(&self, bundles: &[usize], num_samples: usize) -> Vec<usize> {
        let total: usize = bundles.iter().map(|&b| self.bundles[b].weight).sum();
        (0..num_samples)
            .map(|k| {
                let position = (2 * k + 1) * total / (2 * num_samples.max(1));
                let mut cumulative = 0;
                for &b in bundles {
                    cumulative += self.bundles[b].weight;
                    if position < cumulative {
                        return b;
                    }
                }
                bundles[bundles.len() - 1]
            })
            .collect()
    }
}

impl CandidateSource for SyntheticSource {
    fn condition_terms(&self) -> &[ConditionTerm] {
        &self.terms
    }

    fn mode_names(&self) -> &[String] {
        &self.mode_names
    }

    fn sample(
        &mut self,
        condition: &[f32],
        label: Option<usize>,
        num_samples: usize,
        seed: u64,
    ) -> Result<CandidateBatch> {
        let mut offset = 0;
        for term in &self.terms {
            if *term == ConditionTerm::JointPositions {
                break;
            }
            offset += term.dim(self.dof);
        }
        let Some(start) = condition.get(offset..offset + self.dof) else {
            return Err(Error::Shape {
                what: "synthetic source condition".to_string(),
                expected: vec![super::condition::condition_dim(&self.terms, self.dof)],
                found: vec![condition.len()],
            });
        };
        let start: Vec<f64> = start.iter().map(|&v| f64::from(v)).collect();
        let wanted = match label {
            None => None,
            Some(index) => match self.mode_names.get(index) {
                Some(name) => Some(name.clone()),
                None => {
                    return Err(Error::Invalid(format!(
                        "synthetic source: label {index} out of range ({} modes)",
                        self.mode_names.len()
                    )))
                }
            },
        };
        let eligible: Vec<usize> = (0..self.bundles.len())
            .filter(|&b| wanted.is_none() || self.bundles[b].label == wanted)
            .collect();
        if eligible.is_empty() {
            return Err(Error::Invalid(format!(
                "synthetic source: no bundle has label {wanted:?}"
            )));
        }
        let assignment = self.assignment(&eligible, num_samples);
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let (t_len, dof) = (self.horizon, self.dof);
        let mut positions = Vec::with_capacity(num_samples * t_len * dof);
        let mut variance = Vec::with_capacity(num_samples);
        let mut offset_rad = vec![0.0; dof];
        for &b in &assignment {
            let bundle = &self.bundles[b];
            for value in offset_rad.iter_mut() {
                let z: f64 = StandardNormal.sample(&mut rng);
                *value = bundle.noise_rad * z;
            }
            let mut controls: Vec<&[f64]> = Vec::with_capacity(bundle.via_rad.len() + 2);
            controls.push(&start);
            controls.extend(bundle.via_rad.iter().map(Vec::as_slice));
            controls.push(&bundle.end_rad);
            for t in 0..t_len {
                let s = t as f64 / (t_len - 1) as f64;
                let bump = (std::f64::consts::PI * s).sin();
                for (j, offset) in offset_rad.iter().enumerate() {
                    positions.push(catmull_rom(&controls, j, s) + bump * offset);
                }
            }
            variance.push(bundle.x0_variance);
        }
        CandidateBatch::new(num_samples, t_len, dof, positions, variance)
    }
}

/// Joint `j` at parameter `s` in [0, 1] of the uniform Catmull-Rom spline through `controls`
/// (end points repeated), which passes through every control point.
fn catmull_rom(controls: &[&[f64]], j: usize, s: f64) -> f64 {
    let m = controls.len() - 1;
    let x = (s * m as f64).clamp(0.0, m as f64);
    let k = (x.floor() as usize).min(m - 1);
    let u = x - k as f64;
    let p0 = controls[k.saturating_sub(1)][j];
    let p1 = controls[k][j];
    let p2 = controls[k + 1][j];
    let p3 = controls[(k + 2).min(m)][j];
    0.5 * (2.0 * p1
        + (p2 - p0) * u
        + (2.0 * p0 - 5.0 * p1 + 4.0 * p2 - p3) * u * u
        + (3.0 * p1 - p0 - 3.0 * p2 + p3) * u * u * u)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source() -> SyntheticSource {
        let bundle = |via: f64, weight, label: &str| SyntheticBundle {
            via_rad: vec![vec![via, 0.0]],
            end_rad: vec![1.0, 1.0],
            weight,
            noise_rad: 0.01,
            x0_variance: 0.0,
            label: Some(label.to_string()),
        };
        SyntheticSource::new(
            8,
            2,
            vec![ConditionTerm::GoalPosition, ConditionTerm::JointPositions],
            vec!["a".into(), "b".into()],
            vec![bundle(-1.0, 3, "a"), bundle(2.0, 1, "b")],
        )
        .unwrap()
    }

    #[test]
    fn paths_start_at_the_condition_and_follow_the_weights() {
        let mut source = source();
        let batch = source.sample(&[0.5, 0.5, 0.2, -0.3], None, 8, 7).unwrap();
        assert_eq!(
            (batch.num_candidates(), batch.horizon(), batch.dof()),
            (8, 8, 2)
        );
        let first = batch.path(0).unwrap();
        assert!((first.first()[0] - 0.2).abs() < 1e-6 && (first.first()[1] + 0.3).abs() < 1e-6);
        assert!((first.last()[0] - 1.0).abs() < 1e-12);
        // 6 of 8 from bundle a (via shoulder -1), 2 from b (via +2).
        let mids: Vec<f64> = (0..8)
            .map(|k| batch.path(k).unwrap().waypoint(4).unwrap()[0])
            .collect();
        assert_eq!(mids.iter().filter(|&&m| m < 0.0).count(), 6, "{mids:?}");
        // Seeded: same seed, same bytes; another seed differs.
        assert_eq!(
            batch,
            source.sample(&[0.5, 0.5, 0.2, -0.3], None, 8, 7).unwrap()
        );
        assert_ne!(
            batch,
            source.sample(&[0.5, 0.5, 0.2, -0.3], None, 8, 8).unwrap()
        );
    }

    #[test]
    fn labels_select_bundles() {
        let mut source = source();
        let batch = source.sample(&[0.0, 0.0, 0.0, 0.0], Some(1), 4, 0).unwrap();
        assert!((0..4).all(|k| batch.path(k).unwrap().waypoint(4).unwrap()[0] > 1.0));
        assert!(source.sample(&[0.0; 4], Some(2), 4, 0).is_err());
        assert!(source.sample(&[0.0; 3], None, 4, 0).is_err());
    }
}
