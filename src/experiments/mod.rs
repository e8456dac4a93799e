//! Seed experiments (issue 7): modes, GMM collapse and mode interpolation, measured.
