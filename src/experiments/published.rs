//! Published GAN results on the same ring and grid tasks (VEEGAN protocol: 2,500 samples, 3σ),
//! quoted for reference only: different papers report very different numbers for the same
//! baseline (GAN on the ring: 1 vs 6.3 modes), so our own runs are the comparison that counts.

use serde::Serialize;

/// One published row.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PublishedRow {
    /// Where it comes from.
    pub source: &'static str,
    /// The method.
    pub method: &'static str,
    /// Ring of 8: modes captured (mean over runs).
    pub ring_modes: f64,
    /// Ring of 8: high-quality samples, percent.
    pub ring_high_quality_pct: f64,
    /// Grid of 25: modes captured.
    pub grid_modes: f64,
    /// Grid of 25: high-quality samples, percent.
    pub grid_high_quality_pct: f64,
}

const VEEGAN: &str = "VEEGAN (Srivastava et al. 2017), Table 1, 5 runs";
const PACGAN: &str = "PacGAN (Lin et al. 2018), Table 1, 10 trials (means; ± s.e. omitted)";

/// VEEGAN Table 1 and PacGAN Table 1, as read from the authors' table images.
pub fn published_gan_rows() -> Vec<PublishedRow> {
    let row = |source, method, ring_modes, ring_hq, grid_modes, grid_hq| PublishedRow {
        source,
        method,
        ring_modes,
        ring_high_quality_pct: ring_hq,
        grid_modes,
        grid_high_quality_pct: grid_hq,
    };
    vec![
        row(VEEGAN, "GAN", 1.0, 99.3, 3.3, 0.5),
        row(VEEGAN, "ALI", 2.8, 0.13, 15.8, 1.6),
        row(VEEGAN, "Unrolled GAN", 7.6, 35.6, 23.6, 16.0),
        row(VEEGAN, "VEEGAN", 8.0, 52.9, 24.6, 40.0),
        row(PACGAN, "GAN", 6.3, 98.2, 17.3, 94.8),
        row(PACGAN, "ALI", 6.6, 97.6, 24.1, 95.7),
        row(PACGAN, "PacGAN2", 7.9, 95.6, 23.8, 91.3),
        row(PACGAN, "PacGAN3", 7.8, 97.7, 24.6, 94.2),
        row(PACGAN, "PacGAN4", 7.8, 95.9, 24.8, 93.6),
    ]
}
