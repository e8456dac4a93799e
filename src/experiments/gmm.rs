//! A Gaussian mixture with diagonal covariances, fitted by expectation-maximisation.
//!
//! Initialisation: k-means++ seeding (Arthur and Vassilvitskii 2007) on a seeded `ChaCha8Rng`,
//! responsibilities from the nearest seed, then EM as in scikit-learn's `GaussianMixture`
//! (`covariance_type="diag"`, `reg_covar` added to every variance, convergence when the mean
//! log-likelihood per point changes by less than `tol`). With `restarts > 1` the fit with the
//! highest log-likelihood is kept (scikit-learn's `n_init`).

use rand::Rng;
use rand_chacha::ChaCha8Rng;
use rand_distr::StandardNormal;
use serde::Serialize;

use super::data::Points;
use crate::{Error, Result};

/// Settings of an EM fit.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GmmConfig {
    /// Number of components K (≥ 1).
    pub components: usize,
    /// Maximum EM iterations per restart.
    pub max_iterations: usize,
    /// Convergence threshold on the change of the mean log-likelihood per point.
    pub tol: f64,
    /// Added to every variance (data units squared) to keep components from collapsing to a point.
    pub reg_covar: f64,
    /// Independent k-means++ initialisations; the best log-likelihood wins.
    pub restarts: usize,
}

impl GmmConfig {
    /// scikit-learn's defaults (`max_iter=100`, `tol=1e-3`, `reg_covar=1e-6`) with 3 restarts.
    pub fn new(components: usize) -> GmmConfig {
        GmmConfig {
            components,
            max_iterations: 100,
            tol: 1e-3,
            reg_covar: 1e-6,
            restarts: 3,
        }
    }
}

/// A fitted mixture: weights (K,), means (K, D), diagonal variances (K, D).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Gmm {
    /// Mixing weights, summing to 1: (K,).
    pub weights: Vec<f64>,
    /// Component means, row-major (K, D).
    pub means: Vec<f64>,
    /// Diagonal variances, row-major (K, D).
    pub variances: Vec<f64>,
    /// Dimension D.
    pub dim: usize,
    /// Mean log-likelihood per training point of the returned fit.
    pub mean_log_likelihood: f64,
    /// EM iterations the returned fit took.
    pub iterations: usize,
    /// Whether the returned fit met `tol` before `max_iterations`.
    pub converged: bool,
}

impl Gmm {
    /// Fits K components to `points` (N ≥ K points).
    pub fn fit(points: &Points, config: &GmmConfig, rng: &mut ChaCha8Rng) -> Result<Gmm> {
        let k = config.components;
        if k == 0 {
            return Err(Error::config("components", "must be at least 1, found 0"));
        }
        if points.len() < k {
            return Err(Error::config(
                "components",
                format!(
                    "{k} components need at least {k} points, found {}",
                    points.len()
                ),
            ));
        }
        if config.restarts == 0 {
            return Err(Error::config("restarts", "must be at least 1, found 0"));
        }
        let mut best: Option<Gmm> = None;
        for _ in 0..config.restarts {
            let fit = fit_once(points, config, rng);
            if best
                .as_ref()
                .is_none_or(|b| fit.mean_log_likelihood > b.mean_log_likelihood)
            {
                best = Some(fit);
            }
        }
        best.ok_or_else(|| Error::Invalid("EM produced no fit".into()))
    }

    /// The number of components K.
    pub fn components(&self) -> usize {
        self.weights.len()
    }

    /// Mean of component `j`: (D,).
    pub fn mean(&self, j: usize) -> &[f64] {
        &self.means[j * self.dim..(j + 1) * self.dim]
    }

    /// Draws `n` points: a component by weight, then its diagonal Gaussian.
    pub fn sample(&self, n: usize, rng: &mut ChaCha8Rng) -> Result<Points> {
        let d = self.dim;
        let mut values = Vec::with_capacity(n * d);
        for _ in 0..n {
            let u: f64 = rng.random();
            let mut acc = 0.0;
            let mut j = self.weights.len() - 1;
            for (i, w) in self.weights.iter().enumerate() {
                acc += w;
                if u < acc {
                    j = i;
                    break;
                }
            }
            for c in 0..d {
                let z: f64 = rng.sample(StandardNormal);
                values.push(self.means[j * d + c] + self.variances[j * d + c].sqrt() * z);
            }
        }
        Points::new(d, values)
    }
}

/// log N(x; mean, diag(var)) for one point.
fn log_gaussian_diag(x: &[f64], mean: &[f64], var: &[f64]) -> f64 {
    let mut acc = 0.0;
    for ((xi, mi), vi) in x.iter().zip(mean).zip(var) {
        acc += (xi - mi).powi(2) / vi + vi.ln() + (2.0 * std::f64::consts::PI).ln();
    }
    -0.5 * acc
}

fn squared_distance(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| (x - y).powi(2)).sum()
}

/// k-means++ seeding: the first centre uniformly, each next one with probability proportional to
/// the squared distance to the nearest chosen centre.
fn kmeans_plus_plus(points: &Points, k: usize, rng: &mut ChaCha8Rng) -> Vec<usize> {
    let n = points.len();
    let mut chosen = vec![rng.random_range(0..n)];
    let mut nearest: Vec<f64> = points
        .rows()
        .map(|p| squared_distance(p, points.row(chosen[0])))
        .collect();
    while chosen.len() < k {
        let total: f64 = nearest.iter().sum();
        let next = if total > 0.0 {
            let target = rng.random::<f64>() * total;
            let mut acc = 0.0;
            let mut pick = n - 1;
            for (i, d) in nearest.iter().enumerate() {
                acc += d;
                if acc > target {
                    pick = i;
                    break;
                }
            }
            pick
        } else {
            rng.random_range(0..n)
        };
        chosen.push(next);
        for (i, p) in points.rows().enumerate() {
            nearest[i] = nearest[i].min(squared_distance(p, points.row(next)));
        }
    }
    chosen
}

/// M step: weights, means and variances from responsibilities `resp` (N, K).
fn m_step(
    points: &Points,
    resp: &[f64],
    k: usize,
    reg_covar: f64,
) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
    let d = points.dim();
    let n = points.len();
    let mut nk = vec![0.0; k];
    let mut means = vec![0.0; k * d];
    for (i, x) in points.rows().enumerate() {
        for j in 0..k {
            let r = resp[i * k + j];
            nk[j] += r;
            for c in 0..d {
                means[j * d + c] += r * x[c];
            }
        }
    }
    // A component with no responsibility keeps a tiny weight and stays where the seed put it.
    let eps = 10.0 * f64::EPSILON;
    for j in 0..k {
        nk[j] += eps;
        for c in 0..d {
            means[j * d + c] /= nk[j];
        }
    }
    let mut variances = vec![0.0; k * d];
    for (i, x) in points.rows().enumerate() {
        for j in 0..k {
            let r = resp[i * k + j];
            for c in 0..d {
                variances[j * d + c] += r * (x[c] - means[j * d + c]).powi(2);
            }
        }
    }
    for j in 0..k {
        for c in 0..d {
            variances[j * d + c] = variances[j * d + c] / nk[j] + reg_covar;
        }
    }
    let weights = nk.iter().map(|v| v / n as f64).collect();
    (weights, means, variances)
}

/// E step: fills `resp` (N, K) and returns the mean log-likelihood per point.
fn e_step(points: &Points, gmm: &Gmm, resp: &mut [f64]) -> f64 {
    let k = gmm.components();
    let d = gmm.dim;
    let log_w: Vec<f64> = gmm.weights.iter().map(|w| w.ln()).collect();
    let mut total = 0.0;
    for (i, x) in points.rows().enumerate() {
        let row = &mut resp[i * k..(i + 1) * k];
        let mut max = f64::NEG_INFINITY;
        for j in 0..k {
            let lp = log_w[j]
                + log_gaussian_diag(
                    x,
                    &gmm.means[j * d..(j + 1) * d],
                    &gmm.variances[j * d..(j + 1) * d],
                );
            row[j] = lp;
            max = max.max(lp);
        }
        let sum: f64 = row.iter().map(|lp| (lp - max).exp()).sum();
        let log_norm = max + sum.ln();
        for r in row.iter_mut() {
            *r = (*r - log_norm).exp();
        }
        total += log_norm;
    }
    total / points.len() as f64
}

fn fit_once(points: &Points, config: &GmmConfig, rng: &mut ChaCha8Rng) -> Gmm {
    let k = config.components;
    let n = points.len();
    let d = points.dim();
    let seeds = kmeans_plus_plus(points, k, rng);
    // Hard responsibilities from the nearest seed start EM (scikit-learn's k-means init uses full
    // k-means; one assignment keeps this cheap and EM does the rest).
    let mut resp = vec![0.0; n * k];
    for (i, x) in points.rows().enumerate() {
        let mut best = 0;
        let mut best_d = f64::INFINITY;
        for (j, &s) in seeds.iter().enumerate() {
            let dist = squared_distance(x, points.row(s));
            if dist < best_d {
                best_d = dist;
                best = j;
            }
        }
        resp[i * k + best] = 1.0;
    }
    let (weights, means, variances) = m_step(points, &resp, k, config.reg_covar);
    let mut gmm = Gmm {
        weights,
        means,
        variances,
        dim: d,
        mean_log_likelihood: f64::NEG_INFINITY,
        iterations: 0,
        converged: false,
    };
    let mut previous = f64::NEG_INFINITY;
    for iteration in 1..=config.max_iterations {
        let ll = e_step(points, &gmm, &mut resp);
        let (weights, means, variances) = m_step(points, &resp, k, config.reg_covar);
        gmm.weights = weights;
        gmm.means = means;
        gmm.variances = variances;
        gmm.iterations = iteration;
        gmm.mean_log_likelihood = ll;
        if (ll - previous).abs() < config.tol {
            gmm.converged = true;
            break;
        }
        previous = ll;
    }
    // The log-likelihood of the final parameters.
    gmm.mean_log_likelihood = e_step(points, &gmm, &mut resp);
    gmm
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;

    use super::*;
    use crate::experiments::data::{DatasetKind, Mixture};

    fn sorted_means_1d(gmm: &Gmm) -> Vec<f64> {
        let mut m = gmm.means.clone();
        m.sort_by(f64::total_cmp);
        m
    }

    #[test]
    fn recovers_well_separated_means_weights_and_sigma() {
        let mixture = Mixture::line(&[-3.0, 0.0, 5.0], 0.3);
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let data = mixture.sample(3000, &mut rng);
        let gmm = Gmm::fit(&data.points, &GmmConfig::new(3), &mut rng).unwrap();
        let means = sorted_means_1d(&gmm);
        for (m, truth) in means.iter().zip([-3.0, 0.0, 5.0]) {
            assert!((m - truth).abs() < 0.05, "mean {m} vs {truth}");
        }
        for (w, v) in gmm.weights.iter().zip(&gmm.variances) {
            assert!((w - 1.0 / 3.0).abs() < 0.02, "weight {w}");
            assert!((v.sqrt() - 0.3).abs() < 0.03, "sigma {}", v.sqrt());
        }
        assert!(gmm.converged);
    }

    #[test]
    fn recovers_the_ring_in_two_dimensions() {
        let mixture = DatasetKind::Ring8.mixture();
        let mut rng = ChaCha8Rng::seed_from_u64(2);
        let data = mixture.sample(4000, &mut rng);
        let gmm = Gmm::fit(&data.points, &GmmConfig::new(8), &mut rng).unwrap();
        for truth in mixture.means.rows() {
            let nearest = (0..8)
                .map(|j| squared_distance(gmm.mean(j), truth).sqrt())
                .fold(f64::INFINITY, f64::min);
            assert!(nearest < 0.01, "mode {truth:?} missed by {nearest}");
        }
    }

    #[test]
    fn fewer_components_merge_modes() {
        let mixture = Mixture::line(&[1.0, 2.0, 3.0], 0.05);
        let mut rng = ChaCha8Rng::seed_from_u64(4);
        let data = mixture.sample(1500, &mut rng);
        let gmm = Gmm::fit(&data.points, &GmmConfig::new(2), &mut rng).unwrap();
        // Two components for three modes: one covers two modes, so its sigma is far above 0.05.
        let widest = gmm.variances.iter().copied().fold(0.0, f64::max).sqrt();
        assert!(widest > 0.3, "widest component sigma {widest}");
    }

    #[test]
    fn seeded_fit_is_reproducible_and_sampling_follows_the_fit() {
        let mixture = Mixture::line(&[0.0, 10.0], 1.0);
        let data = mixture.sample(1000, &mut ChaCha8Rng::seed_from_u64(5));
        let a = Gmm::fit(
            &data.points,
            &GmmConfig::new(2),
            &mut ChaCha8Rng::seed_from_u64(6),
        );
        let b = Gmm::fit(
            &data.points,
            &GmmConfig::new(2),
            &mut ChaCha8Rng::seed_from_u64(6),
        );
        let a = a.unwrap();
        assert_eq!(a, b.unwrap());
        let samples = a.sample(4000, &mut ChaCha8Rng::seed_from_u64(7)).unwrap();
        let above = samples.values().iter().filter(|&&x| x > 5.0).count() as f64 / 4000.0;
        assert!((above - 0.5).abs() < 0.05, "fraction above 5: {above}");
    }

    #[test]
    fn bad_configs_are_errors() {
        let data = Mixture::line(&[0.0], 1.0).sample(3, &mut ChaCha8Rng::seed_from_u64(0));
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        let err = Gmm::fit(&data.points, &GmmConfig::new(4), &mut rng).unwrap_err();
        assert!(err.to_string().contains("components"), "{err}");
        assert!(Gmm::fit(&data.points, &GmmConfig::new(0), &mut rng).is_err());
    }
}
