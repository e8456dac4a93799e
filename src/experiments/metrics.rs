//! Mode-coverage metrics (VEEGAN protocol), the mode-interpolation fraction and the scores of the
//! x̂0-variance filter.
//!
//! Definitions, for a mixture with K mode means μ_k and common σ (data units):
//! - **high quality**: the distance to the nearest mean is at most 3σ (VEEGAN, Srivastava et al.
//!   2017);
//! - **modes captured**: the number of modes that are the nearest mode of at least one
//!   high-quality sample;
//! - **interpolation**: not high quality, and inside the ball whose diameter is the segment between
//!   the sample's two nearest means a, b, i.e. `(x - a)·(x - b) < 0` (the segment is seen from x
//!   under an obtuse angle). In 1-D this is exactly "strictly between its two nearest modes"; in
//!   2-D it also holds the arc between two neighbours on the ring;
//! - **outlier**: neither (e.g. beyond the outermost mode);
//! - **mode KL** (PacGAN, Lin et al. 2018): KL(p̂ ‖ uniform) of the distribution p̂ of the
//!   high-quality samples over the modes; 0 when every mode gets the same share, log K when one
//!   mode gets them all.
//!
//! The three fractions add up to 1.

use serde::Serialize;

use super::data::{Mixture, Points};

/// How many σ from a mean a sample may be to count as high quality (VEEGAN: 3).
pub const HIGH_QUALITY_SIGMAS: f64 = 3.0;

/// What a single sample is, relative to the true modes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SampleClass {
    /// Within 3σ of `mode`, its nearest mean.
    HighQuality {
        /// Index of the nearest mode.
        mode: usize,
    },
    /// Outside 3σ of every mode, between its two nearest modes `a` (nearest) and `b`.
    Interpolation {
        /// Index of the nearest mode.
        a: usize,
        /// Index of the second-nearest mode.
        b: usize,
    },
    /// Outside 3σ of every mode and not between two modes.
    Outlier {
        /// Index of the nearest mode.
        nearest: usize,
    },
}

impl SampleClass {
    /// True for [`SampleClass::HighQuality`] ("in support").
    pub fn is_high_quality(self) -> bool {
        matches!(self, SampleClass::HighQuality { .. })
    }

    /// The nearest mode, whatever the class.
    pub fn nearest_mode(self) -> usize {
        match self {
            SampleClass::HighQuality { mode } => mode,
            SampleClass::Interpolation { a, .. } => a,
            SampleClass::Outlier { nearest } => nearest,
        }
    }
}

fn squared_distance(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| (x - y).powi(2)).sum()
}

/// Classifies one sample `x` (D,) against `mixture` (data units).
pub fn classify(x: &[f64], mixture: &Mixture) -> SampleClass {
    let mut first = (f64::INFINITY, 0);
    let mut second = (f64::INFINITY, 0);
    for (k, mean) in mixture.means.rows().enumerate() {
        let d2 = squared_distance(x, mean);
        if d2 < first.0 {
            second = first;
            first = (d2, k);
        } else if d2 < second.0 {
            second = (d2, k);
        }
    }
    let radius = HIGH_QUALITY_SIGMAS * mixture.sigma;
    if first.0 <= radius * radius {
        return SampleClass::HighQuality { mode: first.1 };
    }
    if second.0.is_finite() {
        let a = mixture.means.row(first.1);
        let b = mixture.means.row(second.1);
        let dot: f64 = x
            .iter()
            .zip(a.iter().zip(b))
            .map(|(xi, (ai, bi))| (xi - ai) * (xi - bi))
            .sum();
        if dot < 0.0 {
            return SampleClass::Interpolation {
                a: first.1,
                b: second.1,
            };
        }
    }
    SampleClass::Outlier { nearest: first.1 }
}

/// Classifies every sample.
pub fn classify_all(samples: &Points, mixture: &Mixture) -> Vec<SampleClass> {
    samples.rows().map(|x| classify(x, mixture)).collect()
}

/// Mode coverage of one set of samples.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ModeMetrics {
    /// Number of samples evaluated.
    pub num_samples: usize,
    /// Number of true modes K.
    pub num_modes: usize,
    /// Modes that are the nearest mode of at least one high-quality sample.
    pub modes_captured: usize,
    /// Fraction of samples within 3σ of their nearest mode.
    pub high_quality_fraction: f64,
    /// Fraction of samples between their two nearest modes and outside 3σ of every mode.
    pub interpolation_fraction: f64,
    /// Fraction of samples that are neither high quality nor interpolation.
    pub outlier_fraction: f64,
    /// PacGAN's reverse KL of the high-quality samples' mode histogram to the uniform one
    /// (nats); `None` when no sample is high quality.
    pub mode_kl: Option<f64>,
    /// High-quality samples per mode: (K,).
    pub high_quality_per_mode: Vec<usize>,
}

/// Computes [`ModeMetrics`] for `samples` (data units) against the true `mixture`.
pub fn mode_metrics(samples: &Points, mixture: &Mixture) -> ModeMetrics {
    let classes = classify_all(samples, mixture);
    let k = mixture.num_modes();
    let mut per_mode = vec![0usize; k];
    let (mut interp, mut outlier) = (0usize, 0usize);
    for class in &classes {
        match *class {
            SampleClass::HighQuality { mode } => per_mode[mode] += 1,
            SampleClass::Interpolation { .. } => interp += 1,
            SampleClass::Outlier { .. } => outlier += 1,
        }
    }
    let n = classes.len().max(1) as f64;
    let high: usize = per_mode.iter().sum();
    let mode_kl = (high > 0).then(|| {
        per_mode
            .iter()
            .filter(|&&c| c > 0)
            .map(|&c| {
                let p = c as f64 / high as f64;
                p * (p * k as f64).ln()
            })
            .sum::<f64>()
    });
    ModeMetrics {
        num_samples: classes.len(),
        num_modes: k,
        modes_captured: per_mode.iter().filter(|&&c| c > 0).count(),
        high_quality_fraction: high as f64 / n,
        interpolation_fraction: interp as f64 / n,
        outlier_fraction: outlier as f64 / n,
        mode_kl,
        high_quality_per_mode: per_mode,
    }
}

/// The Wilson score interval at 95% for a proportion of `successes` out of `n` trials:
/// (low, high); (0, 1) when `n` is 0.
pub fn wilson_interval_95(successes: usize, n: usize) -> (f64, f64) {
    if n == 0 {
        return (0.0, 1.0);
    }
    let z = 1.959_963_984_540_054_f64;
    let n_f = n as f64;
    let p = successes as f64 / n_f;
    let z2n = z * z / n_f;
    let centre = (p + z2n / 2.0) / (1.0 + z2n);
    let half = z * (p * (1.0 - p) / n_f + z2n / (4.0 * n_f)).sqrt() / (1.0 + z2n);
    ((centre - half).max(0.0), (centre + half).min(1.0))
}

/// How well conditional samples land in the requested mode.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ConditionalAccuracy {
    /// Samples per requested mode.
    pub samples_per_mode: usize,
    /// Fraction of all samples within 3σ of the requested mode (the headline number).
    pub accuracy: f64,
    /// Fraction whose nearest mode is the requested one (at any distance).
    pub nearest_mode_accuracy: f64,
    /// The lowest per-mode accuracy.
    pub worst_mode_accuracy: f64,
    /// Per requested mode: fraction within 3σ of it: (K,).
    pub per_mode_accuracy: Vec<f64>,
}

/// Scores conditional samples: `per_mode[k]` are the samples drawn with label `k`.
pub fn conditional_accuracy(per_mode: &[Points], mixture: &Mixture) -> ConditionalAccuracy {
    let mut hits = 0usize;
    let mut nearest_hits = 0usize;
    let mut total = 0usize;
    let mut per_mode_accuracy = Vec::with_capacity(per_mode.len());
    for (k, samples) in per_mode.iter().enumerate() {
        let mut mode_hits = 0usize;
        for class in classify_all(samples, mixture) {
            if class == (SampleClass::HighQuality { mode: k }) {
                mode_hits += 1;
            }
            if class.nearest_mode() == k {
                nearest_hits += 1;
            }
        }
        hits += mode_hits;
        total += samples.len();
        per_mode_accuracy.push(mode_hits as f64 / samples.len().max(1) as f64);
    }
    let total_f = total.max(1) as f64;
    ConditionalAccuracy {
        samples_per_mode: per_mode.first().map_or(0, Points::len),
        accuracy: hits as f64 / total_f,
        nearest_mode_accuracy: nearest_hits as f64 / total_f,
        worst_mode_accuracy: per_mode_accuracy.iter().copied().fold(1.0, f64::min),
        per_mode_accuracy,
    }
}

/// Result of flagging samples whose score is above a threshold as out of support.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FilterMetrics {
    /// Samples with a score above this are flagged (chosen on a calibration draw).
    pub threshold: f64,
    /// Number of samples evaluated.
    pub num_samples: usize,
    /// Number of out-of-support (not high-quality) samples among them.
    pub num_out_of_support: usize,
    /// Fraction of samples flagged; a random filter flagging as many has recall equal to this.
    pub flagged_fraction: f64,
    /// Flagged samples that are out of support / flagged samples (None if nothing was flagged).
    pub precision: Option<f64>,
    /// Out-of-support samples that were flagged / out-of-support samples (None if there are none).
    pub recall: Option<f64>,
    /// Precision of a random filter: the out-of-support fraction.
    pub random_precision: f64,
    /// In-support samples not flagged / in-support samples.
    pub in_support_kept: f64,
}

/// The threshold that keeps the fraction `keep` of the in-support samples of a calibration draw:
/// the `keep`-quantile of their scores (None when the draw has no in-support sample).
pub fn calibrate_threshold(scores: &[f64], in_support: &[bool], keep: f64) -> Option<f64> {
    let mut inside: Vec<f64> = scores
        .iter()
        .zip(in_support)
        .filter(|(_, &s)| s)
        .map(|(&v, _)| v)
        .collect();
    if inside.is_empty() {
        return None;
    }
    inside.sort_by(f64::total_cmp);
    let rank = ((keep.clamp(0.0, 1.0) * inside.len() as f64).ceil() as usize).max(1);
    inside.get(rank - 1).copied()
}

/// Flags `score > threshold` and compares with the in-support labels.
pub fn filter_metrics(scores: &[f64], in_support: &[bool], threshold: f64) -> FilterMetrics {
    let (mut tp, mut fp, mut kept_inside, mut inside) = (0usize, 0usize, 0usize, 0usize);
    for (&score, &is_in) in scores.iter().zip(in_support) {
        let flagged = score > threshold;
        match (flagged, is_in) {
            (true, false) => tp += 1,
            (true, true) => fp += 1,
            (false, true) => kept_inside += 1,
            (false, false) => {}
        }
        if is_in {
            inside += 1;
        }
    }
    let n = scores.len().min(in_support.len());
    let outside = n - inside;
    let flagged = tp + fp;
    FilterMetrics {
        threshold,
        num_samples: n,
        num_out_of_support: outside,
        flagged_fraction: flagged as f64 / n.max(1) as f64,
        precision: (flagged > 0).then(|| tp as f64 / flagged as f64),
        recall: (outside > 0).then(|| tp as f64 / outside as f64),
        random_precision: outside as f64 / n.max(1) as f64,
        in_support_kept: kept_inside as f64 / inside.max(1) as f64,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::experiments::data::DatasetKind;

    fn line() -> Mixture {
        Mixture::line(&[1.0, 2.0, 3.0], 0.05)
    }

    #[test]
    fn classifies_hand_made_1d_samples() {
        let m = line();
        assert_eq!(classify(&[1.1], &m), SampleClass::HighQuality { mode: 0 });
        assert_eq!(classify(&[2.149], &m), SampleClass::HighQuality { mode: 1 });
        assert_eq!(
            classify(&[2.4], &m),
            SampleClass::Interpolation { a: 1, b: 2 }
        );
        assert_eq!(
            classify(&[1.6], &m),
            SampleClass::Interpolation { a: 1, b: 0 }
        );
        assert_eq!(classify(&[0.5], &m), SampleClass::Outlier { nearest: 0 });
        assert_eq!(classify(&[3.2], &m), SampleClass::Outlier { nearest: 2 });
    }

    #[test]
    fn metrics_count_modes_and_fractions() {
        let m = line();
        let samples = Points::new(1, vec![1.0, 1.02, 2.0, 1.5, 2.5, 4.0, 0.9, 1.97]).unwrap();
        let r = mode_metrics(&samples, &m);
        assert_eq!(r.modes_captured, 2);
        assert_eq!(r.high_quality_per_mode, vec![3, 2, 0]);
        assert!((r.high_quality_fraction - 5.0 / 8.0).abs() < 1e-12);
        assert!((r.interpolation_fraction - 2.0 / 8.0).abs() < 1e-12);
        assert!((r.outlier_fraction - 1.0 / 8.0).abs() < 1e-12);
        // p = (3/5, 2/5, 0) against 1/3 each.
        let kl = 0.6 * (0.6f64 * 3.0).ln() + 0.4 * (0.4f64 * 3.0).ln();
        assert!((r.mode_kl.unwrap() - kl).abs() < 1e-12);
        let even = Points::new(1, vec![1.0, 2.0, 3.0]).unwrap();
        assert!(mode_metrics(&even, &m).mode_kl.unwrap().abs() < 1e-12);
        let far = Points::new(1, vec![9.0]).unwrap();
        assert_eq!(mode_metrics(&far, &m).mode_kl, None);
    }

    #[test]
    fn ring_arc_between_neighbours_is_interpolation_and_centre_is_not() {
        let ring = DatasetKind::Ring8.mixture();
        let angle = std::f64::consts::PI / 8.0;
        let on_arc = [angle.cos(), angle.sin()];
        assert!(matches!(
            classify(&on_arc, &ring),
            SampleClass::Interpolation { .. }
        ));
        // The centre sees neighbouring modes under 45 degrees: not between them.
        assert!(matches!(
            classify(&[0.0, 0.0], &ring),
            SampleClass::Outlier { .. }
        ));
        assert!(classify(&[1.0, 0.02], &ring).is_high_quality());
    }

    #[test]
    fn wilson_interval_matches_reference_values() {
        // statsmodels proportion_confint(10, 100, method="wilson"): (0.0552, 0.1744).
        let (lo, hi) = wilson_interval_95(10, 100);
        assert!(
            (lo - 0.0552).abs() < 1e-4 && (hi - 0.1744).abs() < 1e-4,
            "{lo} {hi}"
        );
        let (lo, hi) = wilson_interval_95(0, 2500);
        assert_eq!(lo, 0.0);
        assert!(hi > 0.0 && hi < 0.002, "{hi}");
        assert_eq!(wilson_interval_95(0, 0), (0.0, 1.0));
    }

    #[test]
    fn conditional_accuracy_counts_the_requested_mode_only() {
        let m = line();
        let per_mode = vec![
            Points::new(1, vec![1.0, 1.01, 2.0, 1.4]).unwrap(),
            Points::new(1, vec![2.0, 2.0, 2.0, 2.0]).unwrap(),
            Points::new(1, vec![3.0, 3.0, 3.0, 2.7]).unwrap(),
        ];
        let acc = conditional_accuracy(&per_mode, &m);
        assert!((acc.accuracy - 9.0 / 12.0).abs() < 1e-12);
        // 2.0 requested as mode 0 is the only sample nearest another mode.
        assert!((acc.nearest_mode_accuracy - 11.0 / 12.0).abs() < 1e-12);
        assert!((acc.worst_mode_accuracy - 0.5).abs() < 1e-12);
    }

    #[test]
    fn filter_threshold_from_calibration_and_scores() {
        let calib = [0.1, 0.2, 0.3, 0.4, 5.0];
        let inside = [true, true, true, true, false];
        assert_eq!(calibrate_threshold(&calib, &inside, 0.75), Some(0.3));
        assert_eq!(calibrate_threshold(&calib, &inside, 1.0), Some(0.4));
        assert_eq!(calibrate_threshold(&calib, &[false; 5], 0.9), None);

        let scores = [0.1, 0.5, 0.2, 0.9, 0.8, 0.05];
        let in_support = [true, true, true, false, false, false];
        let f = filter_metrics(&scores, &in_support, 0.3);
        assert_eq!(f.num_out_of_support, 3);
        assert_eq!(f.precision, Some(2.0 / 3.0));
        assert_eq!(f.recall, Some(2.0 / 3.0));
        assert!((f.in_support_kept - 2.0 / 3.0).abs() < 1e-12);
        assert!((f.flagged_fraction - 0.5).abs() < 1e-12);
        let none = filter_metrics(&scores, &[true; 6], 10.0);
        assert_eq!((none.precision, none.recall), (None, None));
    }
}
