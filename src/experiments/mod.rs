//! Seed experiments (issue 7): modes, GMM collapse and mode interpolation, measured.

pub mod data;
pub mod gmm;
pub mod jobs;
pub mod metrics;
pub mod published;
pub mod run;
pub mod sampling;
pub mod settings;
pub mod toy_model;
pub mod toy_train;
