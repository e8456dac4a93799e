//! Seed experiments (issue 7): modes, GMM collapse and mode interpolation, measured.

pub mod data;
pub mod gmm;
pub mod metrics;
