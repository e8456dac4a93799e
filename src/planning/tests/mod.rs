//! Cross-module tests of the planning pipeline.
