//! Training: dataset, training loop, EMA, checkpoints.

pub mod dataset;
pub mod optim;
