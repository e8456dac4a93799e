//! Training: dataset, training loop, EMA, checkpoints.

pub mod optim;
