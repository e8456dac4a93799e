//! From an observation to a plan: the multimodal planning pipeline, free of ROS and candle types.
//!
//! ```text
//! ObservationInput --validate--> Observation --condition_vector--> [f32]
//!   --CandidateSource::sample--> CandidateBatch (K paths, T x D, + x0 variance)
//!   --anchor at the start, repair_path (shallow contacts pushed out to a margin)
//!   --score_candidate--> scores + RejectReasons (valid iff none)
//!   --cluster (valid only)--> modes --select (hysteresis, Mass | Cost)--> chosen path
//!   --time_parameterize (from the commanded state) + verify--> Plan
//! ```
//! [`Planner`] glues the stages and keeps the selection memory between calls. Candidates come
//! from a trained model folder through [`DiffusionSource`], or from a [`SyntheticSource`] in
//! tests; [`random_model_folder`] writes an untrained model folder for tests.

mod bench;
mod condition;
mod config;
mod diffusion_source;
mod modes;
mod observation;
mod plan;
mod planner;
mod random_model;
mod repair;
mod scoring;
mod selection;
mod smoothing;
mod source;
mod synthetic;
mod timing;

#[cfg(test)]
mod tests;

pub use bench::{bench_pipeline, blocked_scene, blocked_scene_source, BenchReport};
pub use condition::{condition_dim, condition_vector, conditioned_obstacle, ConditionTerm};
pub use config::PlannerConfig;
pub use diffusion_source::DiffusionSource;
pub use modes::{cluster, path_distance_rad, Clustering, Mode};
pub use observation::{
    CommandedState, ModeRequest, Observation, ObservationError, ObservationInput,
    ObservationStamps, StateKind,
};
pub use plan::{hermite, segment_extrema, Plan, PlanPoint};
pub use planner::{
    CandidateReport, ModeSummary, PathLabeller, PlanError, PlanOutcome, PlanTimings, Planner,
};
pub use random_model::{random_model_folder, tiny_model_spec};
pub use repair::{repair_path, Repair, RepairConfig};
pub use scoring::{
    score_candidate, smoothness_rad2, CandidateScores, CostWeights, RejectReason, ScoringConfig,
};
pub use selection::{
    remainder, select, Selection, SelectionConfig, SelectionPolicy, SelectionReason, SelectorState,
};
pub use smoothing::smooth_path;
pub use source::{CandidateBatch, CandidateSource};
pub use synthetic::{SyntheticBundle, SyntheticSource};
pub use timing::{time_parameterize, TimingConfig, TimingError, MIN_SEGMENT_SECS};
