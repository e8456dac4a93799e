//! The candidate sources behind the evaluation's rows: a wrapper that keeps the raw batch the
//! planner received (the raw-network column), the expert as a source (the ceiling row), and a
//! random-weights copy of a model folder (the floor row).

use std::path::Path;
use std::sync::{Arc, Mutex};

use crate::model::ModelSpec;
use crate::planning::{random_model_folder, CandidateBatch, CandidateSource, ConditionTerm};
use crate::robot::JointPath;
use crate::{Error, Result};

/// The last batch a [`Recording`] source returned, shared with the evaluator.
pub type LastBatch = Arc<Mutex<Option<CandidateBatch>>>;

/// Passes every call to `inner` and keeps a copy of the batch (the candidates as sampled,
/// before the planner anchors, snaps or repairs them).
pub struct Recording {
    inner: Box<dyn CandidateSource>,
    last: LastBatch,
}

impl Recording {
    pub fn new(inner: Box<dyn CandidateSource>) -> (Recording, LastBatch) {
        let last = LastBatch::default();
        (
            Recording {
                inner,
                last: Arc::clone(&last),
            },
            last,
        )
    }
}

/// Takes the batch out of `last`.
pub fn take_batch(last: &LastBatch) -> Option<CandidateBatch> {
    last.lock().ok().and_then(|mut b| b.take())
}

impl CandidateSource for Recording {
    fn condition_terms(&self) -> &[ConditionTerm] {
        self.inner.condition_terms()
    }

    fn mode_names(&self) -> &[String] {
        self.inner.mode_names()
    }

    fn sample(
        &mut self,
        condition: &[f32],
        label: Option<usize>,
        num_samples: usize,
        seed: u64,
    ) -> Result<CandidateBatch> {
        let batch = self.inner.sample(condition, label, num_samples, seed)?;
        if let Ok(mut last) = self.last.lock() {
            *last = Some(batch.clone());
        }
        Ok(batch)
    }
}

/// The current scene's expert paths with their label indices, set by the evaluator before each
/// call of an [`ExpertSource`].
pub type ExpertPaths = Arc<Mutex<Vec<(usize, JointPath)>>>;

/// The expert as a candidate source: the scene's expert paths (those of the requested label
/// when a label is given), repeated in order to fill the K candidates, x̂0 variance 0.
pub struct ExpertSource {
    terms: Vec<ConditionTerm>,
    names: Vec<String>,
    paths: ExpertPaths,
}

impl ExpertSource {
    pub fn new(terms: Vec<ConditionTerm>, names: Vec<String>) -> (ExpertSource, ExpertPaths) {
        let paths = ExpertPaths::default();
        let source = ExpertSource {
            terms,
            names,
            paths: Arc::clone(&paths),
        };
        (source, paths)
    }
}

impl CandidateSource for ExpertSource {
    fn condition_terms(&self) -> &[ConditionTerm] {
        &self.terms
    }

    fn mode_names(&self) -> &[String] {
        &self.names
    }

    fn sample(
        &mut self,
        _condition: &[f32],
        label: Option<usize>,
        num_samples: usize,
        _seed: u64,
    ) -> Result<CandidateBatch> {
        let paths = self
            .paths
            .lock()
            .map_err(|_| Error::Invalid("expert source: poisoned lock".into()))?;
        let chosen: Vec<&JointPath> = paths
            .iter()
            .filter(|(l, _)| label.is_none_or(|want| *l == want))
            .map(|(_, p)| p)
            .collect();
        // A request for a mode the expert does not have: all its paths (then the planner
        // rejects them as the wrong mode, as it would a model's).
        let chosen: Vec<&JointPath> = if chosen.is_empty() {
            paths.iter().map(|(_, p)| p).collect()
        } else {
            chosen
        };
        if chosen.is_empty() {
            return Err(Error::Invalid("expert source: no expert path set".into()));
        }
        let repeated: Vec<JointPath> = (0..num_samples)
            .map(|i| chosen[i % chosen.len()].clone())
            .collect();
        CandidateBatch::from_paths(&repeated, vec![0.0; num_samples])
    }
}

/// Writes a random-weights copy of the model folder `model_dir` (same `model.yaml`: network,
/// normalisation, modes; weights drawn as PyTorch initialises them, seeded) into `out_dir`.
pub fn random_weights_copy(model_dir: &Path, out_dir: &Path, seed: u64) -> Result<ModelSpec> {
    let mut spec = ModelSpec::load(&model_dir.join(crate::model::MODEL_YAML))?;
    spec.name = format!("{}_random_weights", spec.name);
    spec.description = format!(
        "random weights (seed {seed}) in the network of {}",
        model_dir.display()
    );
    spec.training.steps = 0;
    spec.training.final_loss = None;
    random_model_folder(out_dir, &spec, seed)
}
