//! Training: dataset, training loop, EMA, checkpoints.

mod checkpoint;
pub mod dataset;
pub mod optim;
pub mod trainer;

pub use dataset::{Dataset, DatasetInfo, TermInfo, DATASET_FORMAT_VERSION};
pub use optim::{AdamW, AdamWConfig, Ema};
pub use trainer::{train, EmaConfig, TrainConfig, TrainSummary, CHECKPOINT_FILE, LOSS_FILE};
