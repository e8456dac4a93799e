//! Model folders: save, load, and every way a broken folder fails (with an error naming the
//! file, key or tensor, never a panic). Also `model.yaml` validation and normalisation.
#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions

mod common;

use std::collections::HashMap;
use std::path::Path;

use candle_core::{DType, Device, Tensor};
use candle_nn::{VarBuilder, VarMap};
use diffusion_planner::model::{
    expected_tensors, mode_embedding_config, save_model_folder, save_model_folder_varmap,
    sha256_file, CpuThreads, Denoiser, ForwardOptions, KernelChoice, LoadedModel, ModeSpec,
    ModelSpec, MODEL_WEIGHTS, MODEL_YAML,
};
use diffusion_planner::Error;

fn small_spec() -> ModelSpec {
    let mut spec = common::spec(&[8, 16], 3, 4, 8);
    spec.modes = Some(ModeSpec {
        names: vec!["left".into(), "right".into()],
        embed_dim: 4,
    });
    spec
}

/// A trained-looking model: random weights in a VarMap, saved to `dir`.
fn saved_model(dir: &Path) -> (ModelSpec, VarMap, Denoiser) {
    let spec = small_spec();
    let varmap = VarMap::new();
    let vb = VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
    let denoiser = Denoiser::new(&spec.unet_config(), mode_embedding_config(&spec), vb).unwrap();
    let written = save_model_folder_varmap(dir, &spec, &varmap).unwrap();
    (written, varmap, denoiser)
}

fn weights_tensors(dir: &Path) -> HashMap<String, Tensor> {
    candle_core::safetensors::load(dir.join(MODEL_WEIGHTS), &Device::Cpu).unwrap()
}

/// Rewrites the weights file from `tensors` and records its sha256 in model.yaml, so that the
/// load gets past the checksum to the tensor checks.
fn rewrite_weights(dir: &Path, tensors: &HashMap<String, Tensor>) {
    let path = dir.join(MODEL_WEIGHTS);
    candle_core::safetensors::save(tensors, &path).unwrap();
    set_sha(dir);
}

fn set_sha(dir: &Path) {
    let mut spec = ModelSpec::load(&dir.join(MODEL_YAML)).unwrap();
    spec.weights.sha256 = sha256_file(&dir.join(MODEL_WEIGHTS)).unwrap();
    std::fs::write(dir.join(MODEL_YAML), spec.to_yaml_string().unwrap()).unwrap();
}

#[test]
fn saved_folder_loads_and_computes_the_same() {
    let dir = tempfile::tempdir().unwrap();
    let (spec, _varmap, denoiser) = saved_model(dir.path());
    assert_eq!(
        spec.weights.sha256,
        sha256_file(&dir.path().join(MODEL_WEIGHTS)).unwrap()
    );
    let model = LoadedModel::load(dir.path(), &Device::Cpu).unwrap();
    assert_eq!(model.spec(), &spec);
    assert_eq!(model.denoiser().null_label(), Some(2));
    assert_eq!(model.denoiser().condition_dim(), 8);

    let dev = Device::Cpu;
    let x = Tensor::randn(0f32, 1.0, (3, 16, 2), &dev).unwrap();
    let t = Tensor::new(&[0u32, 40, 99], &dev).unwrap();
    let c = Tensor::randn(0f32, 1.0, (3, 8), &dev).unwrap();
    let l = Tensor::new(&[0u32, 1, 2], &dev).unwrap();
    let want = denoiser.denoise(&x, &t, Some(&c), Some(&l)).unwrap();
    // The saved model (Var weights) runs the differentiable ops; the loaded one the fused CPU
    // kernels by default, or candle's stock ops: the same up to summation order.
    let got = model
        .denoiser()
        .denoise(&x, &t, Some(&c), Some(&l))
        .unwrap();
    // Trainable variables take the differentiable conv path, loaded tensors the inference path:
    // the same arithmetic in another order, so equal to rounding.
    assert!(common::max_abs_diff(&want, &got) < 1e-5);
    let mut generic = model.denoiser().clone();
    generic.set_forward_options(ForwardOptions {
        kernels: KernelChoice::Generic,
        cpu_threads: CpuThreads::Auto,
    });
    let got = generic.denoise(&x, &t, Some(&c), Some(&l)).unwrap();
    assert!(common::max_abs_diff(&want, &got) < 1e-5);
    let names = expected_tensors(&spec.unet_config(), mode_embedding_config(&spec)).unwrap();
    assert_eq!(names["mode_embedding.weight"], vec![3, 4]);
    assert_eq!(names.len(), weights_tensors(dir.path()).len());
}

#[test]
fn checksum_mismatch_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let (spec, _, _) = saved_model(dir.path());
    let path = dir.path().join(MODEL_WEIGHTS);
    let mut bytes = std::fs::read(&path).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    std::fs::write(&path, bytes).unwrap();
    match LoadedModel::load(dir.path(), &Device::Cpu).unwrap_err() {
        Error::Checksum {
            path: p,
            expected,
            found,
        } => {
            assert_eq!(p, path);
            assert_eq!(expected, spec.weights.sha256);
            assert_ne!(found, expected);
        }
        other => panic!("expected a checksum error, got {other}"),
    }
}

#[test]
fn truncated_weights_are_an_error() {
    let dir = tempfile::tempdir().unwrap();
    saved_model(dir.path());
    let path = dir.path().join(MODEL_WEIGHTS);
    let bytes = std::fs::read(&path).unwrap();
    for keep in [bytes.len() / 2, 100, 7, 0] {
        std::fs::write(&path, &bytes[..keep]).unwrap();
        set_sha(dir.path());
        let err = LoadedModel::load(dir.path(), &Device::Cpu)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("not a valid safetensors file") && err.contains(MODEL_WEIGHTS),
            "{err}"
        );
    }
}

#[test]
fn wrong_shape_names_tensor_and_shapes() {
    let dir = tempfile::tempdir().unwrap();
    saved_model(dir.path());
    let mut tensors = weights_tensors(dir.path());
    let name = "diffusion.unet.mid_modules.1.conv2.block.0.weight";
    tensors.insert(
        name.into(),
        Tensor::zeros((16, 16, 5), DType::F32, &Device::Cpu).unwrap(),
    );
    rewrite_weights(dir.path(), &tensors);
    match LoadedModel::load(dir.path(), &Device::Cpu).unwrap_err() {
        Error::TensorShape {
            name: n,
            expected,
            found,
            ..
        } => {
            assert_eq!(n, name);
            assert_eq!(expected, vec![16, 16, 3]);
            assert_eq!(found, vec![16, 16, 5]);
        }
        other => panic!("expected a shape error, got {other}"),
    }
}

#[test]
fn missing_tensor_is_named() {
    let dir = tempfile::tempdir().unwrap();
    saved_model(dir.path());
    let mut tensors = weights_tensors(dir.path());
    tensors.remove("mode_embedding.weight").unwrap();
    rewrite_weights(dir.path(), &tensors);
    let err = LoadedModel::load(dir.path(), &Device::Cpu).unwrap_err();
    assert!(
        matches!(&err, Error::MissingTensor { name, .. } if name == "mode_embedding.weight"),
        "{err}"
    );
}

#[test]
fn unexpected_tensors_are_listed() {
    let dir = tempfile::tempdir().unwrap();
    saved_model(dir.path());
    let mut tensors = weights_tensors(dir.path());
    let extra = Tensor::zeros(3, DType::F32, &Device::Cpu).unwrap();
    tensors.insert(
        "diffusion.unet.down_modules.1.2.weight".into(),
        extra.clone(),
    );
    tensors.insert(
        "normalize_inputs.buffer_observation_state.min".into(),
        extra,
    );
    rewrite_weights(dir.path(), &tensors);
    match LoadedModel::load(dir.path(), &Device::Cpu).unwrap_err() {
        Error::UnexpectedTensors { names, .. } => assert_eq!(
            names,
            vec![
                "diffusion.unet.down_modules.1.2.weight".to_string(),
                "normalize_inputs.buffer_observation_state.min".to_string()
            ]
        ),
        other => panic!("expected unexpected tensors, got {other}"),
    }
}

#[test]
fn integer_tensor_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    saved_model(dir.path());
    let mut tensors = weights_tensors(dir.path());
    let name = "mode_embedding.weight";
    tensors.insert(
        name.into(),
        Tensor::zeros((3, 4), DType::U32, &Device::Cpu).unwrap(),
    );
    rewrite_weights(dir.path(), &tensors);
    let err = LoadedModel::load(dir.path(), &Device::Cpu)
        .unwrap_err()
        .to_string();
    assert!(err.contains(name) && err.contains("float"), "{err}");
}

#[test]
fn yaml_errors_name_file_and_key() {
    let dir = tempfile::tempdir().unwrap();
    saved_model(dir.path());
    let yaml_path = dir.path().join(MODEL_YAML);
    let text = std::fs::read_to_string(&yaml_path).unwrap();

    std::fs::write(&yaml_path, format!("{text}learning_rate: 0.1\n")).unwrap();
    let err = LoadedModel::load(dir.path(), &Device::Cpu).unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, Error::Yaml { .. }), "{msg}");
    assert!(
        msg.contains("learning_rate") && msg.contains(MODEL_YAML),
        "{msg}"
    );

    let bad = text.replace("kernel_size: 3", "kernel_size: 4");
    assert_ne!(bad, text);
    std::fs::write(&yaml_path, bad).unwrap();
    let msg = LoadedModel::load(dir.path(), &Device::Cpu)
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("network.kernel_size") && msg.contains(MODEL_YAML),
        "{msg}"
    );

    std::fs::remove_file(&yaml_path).unwrap();
    let msg = LoadedModel::load(dir.path(), &Device::Cpu)
        .unwrap_err()
        .to_string();
    assert!(msg.contains(MODEL_YAML), "{msg}");
}

#[test]
fn save_refuses_wrong_tensors() {
    let dir = tempfile::tempdir().unwrap();
    let spec = small_spec();
    let err = save_model_folder(dir.path(), &spec, &HashMap::new()).unwrap_err();
    assert!(matches!(err, Error::MissingTensor { .. }), "{err}");
    assert!(!dir.path().join(MODEL_YAML).exists());
}

#[test]
fn spec_validation_names_the_key() {
    let mut ok = small_spec();
    ok.weights.sha256 = "ab".repeat(32);
    ok.validate().unwrap();
    type Mutation = fn(&mut ModelSpec);
    let cases: Vec<(&str, Mutation)> = vec![
        ("format_version", |s| s.format_version = 2),
        ("horizon", |s| s.horizon = 9),
        ("action.joints", |s| s.action.joints.reverse()),
        ("action.max", |s| s.action.max.truncate(1)),
        ("action.min[1]", |s| s.action.min[1] = f64::NAN),
        ("condition.min", |s| s.condition.min.push(0.0)),
        ("condition.terms[1].dim", |s| s.condition.terms[1].dim = 0),
        ("condition.terms[1]", |s| {
            s.condition.terms[1].name = "q_start".into()
        }),
        ("modes.names[1]", |s| {
            s.modes.as_mut().unwrap().names[1] = "any".into()
        }),
        ("modes.embed_dim", |s| {
            s.modes.as_mut().unwrap().embed_dim = 0
        }),
        ("scheduler.beta_end", |s| s.scheduler.beta_end = 1e-5),
        ("scheduler.clip_sample_range", |s| {
            s.scheduler.clip_sample_range = 0.0
        }),
        ("robot.link_radius_m", |s| s.robot.link_radius_m = -1.0),
        ("training.final_loss", |s| {
            s.training.final_loss = Some(f64::INFINITY)
        }),
        ("weights.file", |s| {
            s.weights.file = "../x.safetensors".into()
        }),
        ("weights.sha256", |s| s.weights.sha256 = "XYZ".into()),
        ("network.down_dims[1]", |s| s.network.down_dims[1] = 18),
    ];
    for (key, mutate) in cases {
        let mut spec = ok.clone();
        mutate(&mut spec);
        let err = match spec.validate() {
            Ok(()) => panic!("{key}: accepted"),
            Err(e) => e.to_string(),
        };
        assert!(err.contains(key), "{key}: {err}");
    }
}

#[test]
fn horizon_rule_is_the_networks_not_lerobots() {
    // 3 levels: the network needs a multiple of 4 (LeRobot's config would ask for 8).
    let mut spec = common::spec(&[16, 32, 64], 5, 8, 32);
    spec.weights.sha256 = "0".repeat(64);
    spec.horizon = 12;
    spec.validate().unwrap();
    spec.horizon = 6;
    assert!(spec.validate().unwrap_err().to_string().contains("horizon"));
}

#[test]
fn normalisation_round_trips_and_guards_constant_entries() {
    let spec = small_spec();
    // Two waypoints of two joints: min -> -1, max -> +1, midpoint -> 0.
    let mut q = vec![-3.0f32, 2.5, 0.0, 0.0];
    spec.action.normalize(&mut q).unwrap();
    assert_eq!(q, vec![-1.0, 1.0, 0.0, 0.0]);
    spec.action.denormalize(&mut q).unwrap();
    assert_eq!(q, vec![-3.0, 2.5, 0.0, 0.0]);
    let mut odd = vec![0.0f32; 3];
    assert!(matches!(
        spec.action.normalize(&mut odd),
        Err(Error::Shape { .. })
    ));

    // Entry 7 has min == max == 0.2: maps to -1 (LeRobot's eps guard), finite, and back.
    let raw = vec![0.5f32, -0.5, 0.1, 0.2, -0.3, 0.4, 0.25, 0.2];
    let mut c = raw.clone();
    spec.condition.normalize(&mut c).unwrap();
    assert!(c.iter().all(|v| v.is_finite()));
    assert_eq!(c[7], -1.0);
    assert!((c[6] - 0.0).abs() < 1e-6);
    spec.condition.denormalize(&mut c).unwrap();
    for (a, b) in c.iter().zip(&raw) {
        assert!((a - b).abs() < 1e-6, "{a} vs {b}");
    }
    assert_eq!(spec.condition.term_range("scene"), Some(2..8));
    assert_eq!(spec.modes.as_ref().unwrap().label_of("right"), Some(1));
    assert_eq!(spec.modes.as_ref().unwrap().null_label(), 2);
}

#[test]
fn documented_example_is_a_valid_model_yaml() {
    let doc_path = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/MODEL_FORMAT.md");
    let doc = std::fs::read_to_string(&doc_path).unwrap();
    let start = doc.find("```yaml\n").unwrap() + "```yaml\n".len();
    let end = start + doc[start..].find("```").unwrap();
    let spec = ModelSpec::from_yaml_str(&doc[start..end], &doc_path).unwrap();
    assert_eq!(spec.unet_config().global_cond_dim, 7 + 16);
    assert_eq!(spec.condition.term_range("obstacle_xyr_m"), Some(4..7));
}
