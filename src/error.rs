//! The crate's error type. Library code returns [`Result`]; binaries wrap it with `anyhow`.

use std::path::PathBuf;

/// Everything that can go wrong in the core library. Each variant names what was wrong and,
/// where it applies, the expected and the found value.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A tensor operation failed inside candle.
    #[error("tensor operation failed: {0}")]
    Candle(#[from] candle_core::Error),

    /// A configuration value is missing, out of range or inconsistent.
    #[error("invalid configuration `{key}`: {reason}")]
    Config { key: String, reason: String },

    /// A YAML file could not be parsed (syntax, unknown key, wrong type).
    #[error("cannot parse {path}: {source}")]
    Yaml {
        path: PathBuf,
        #[source]
        source: serde_yaml::Error,
    },

    /// A tensor in a weights file is missing.
    #[error("weights {path}: tensor `{name}` is missing")]
    MissingTensor { path: PathBuf, name: String },

    /// A tensor in a weights file has the wrong shape.
    #[error("weights {path}: tensor `{name}` has shape {found:?}, expected {expected:?}")]
    TensorShape {
        path: PathBuf,
        name: String,
        expected: Vec<usize>,
        found: Vec<usize>,
    },

    /// A weights file holds tensors the model does not use.
    #[error("weights {path}: unexpected tensors {names:?}")]
    UnexpectedTensors { path: PathBuf, names: Vec<String> },

    /// The weights' checksum does not match the one recorded in model.yaml.
    #[error("weights {path}: sha256 is {found}, model.yaml expects {expected}")]
    Checksum {
        path: PathBuf,
        expected: String,
        found: String,
    },

    /// A shape mismatch in data handed to the library (not a weights file).
    #[error("{what}: expected shape {expected:?}, found {found:?}")]
    Shape {
        what: String,
        expected: Vec<usize>,
        found: Vec<usize>,
    },

    /// An unknown or unavailable compute device.
    #[error("device `{spec}`: {reason}")]
    Device { spec: String, reason: String },

    /// File system errors, with the path that failed.
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// A robot file (URDF, SRDF, spheres, joint limits) is broken: the file, the element and
    /// what was expected.
    #[error("{file}: {element}: {reason}")]
    RobotFile {
        file: String,
        element: String,
        reason: String,
    },

    /// Any other invalid input, with a message that names the problem.
    #[error("{0}")]
    Invalid(String),
}

/// The crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// A configuration error for `key`.
    pub fn config(key: impl Into<String>, reason: impl Into<String>) -> Self {
        Error::Config {
            key: key.into(),
            reason: reason.into(),
        }
    }

    /// A robot-file error: `file` (a path or `robot_description`), the `element` (e.g.
    /// `<joint name="j1">` at line 12) and what was expected.
    pub fn robot_file(
        file: impl Into<String>,
        element: impl Into<String>,
        reason: impl Into<String>,
    ) -> Self {
        Error::RobotFile {
            file: file.into(),
            element: element.into(),
            reason: reason.into(),
        }
    }

    /// An I/O error for `path`.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }
}

/// Writes `contents` to `path`, creating its missing parent folders first (output files named
/// on the command line, e.g. `--json out/eval/eval.json`). Errors name the path.
pub fn write_file(path: &std::path::Path, contents: impl AsRef<[u8]>) -> Result<()> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
    }
    std::fs::write(path, contents).map_err(|e| Error::io(path, e))
}
