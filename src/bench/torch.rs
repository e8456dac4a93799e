//! Runs `tools/bench_torch.py` (PyTorch + LeRobot's U-Net + diffusers' DDIM on the same weights)
//! and reads its JSON.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde::Serialize;

use super::{BenchArgs, BenchNetwork, Percentiles};

/// Environment variable naming the Python that has torch, lerobot and diffusers.
pub const TORCH_PYTHON_ENV: &str = "DPLAN_TORCH_PYTHON";

/// PyTorch's side of the benchmark.
#[derive(Debug, Clone, Serialize)]
pub struct TorchReport {
    /// `ok`, `skipped` or `failed`.
    pub status: String,
    /// Why it was skipped or failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub python: Option<String>,
    /// The script's JSON: `forward`, `plan`, `plan_guided` (per thread count), versions.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub results: Option<serde_json::Value>,
}

impl TorchReport {
    pub(super) fn skipped(reason: &str) -> Self {
        TorchReport {
            status: "skipped".into(),
            reason: Some(reason.into()),
            python: None,
            results: None,
        }
    }

    fn failed(python: &Path, reason: String) -> Self {
        TorchReport {
            status: "failed".into(),
            reason: Some(reason),
            python: Some(python.display().to_string()),
            results: None,
        }
    }

    /// The fastest thread count's unguided planning call.
    pub fn best_plan(&self) -> Option<Percentiles> {
        let plans = self.results.as_ref()?.get("plan")?.as_array()?;
        plans
            .iter()
            .filter_map(|p| {
                Some(Percentiles {
                    p50: p.get("ms_p50")?.as_f64()?,
                    p99: p.get("ms_p99")?.as_f64()?,
                })
            })
            .min_by(|a, b| a.p50.total_cmp(&b.p50))
    }

    /// One line for the console.
    pub fn summary(&self) -> String {
        match &self.reason {
            Some(r) => format!("{} ({r})", self.status),
            None => self.status.clone(),
        }
    }
}

/// The script: `--torch-script`, else `tools/bench_torch.py` under the working directory, else
/// in the source tree this binary was built from.
fn script(args: &BenchArgs) -> PathBuf {
    if let Some(s) = &args.torch_script {
        return s.clone();
    }
    let local = PathBuf::from("tools/bench_torch.py");
    if local.is_file() {
        return local;
    }
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tools/bench_torch.py")
}

/// Runs the script on `weights`; never fails (a missing torch is a report, not an error).
pub(super) fn run(args: &BenchArgs, net: &BenchNetwork, weights: &Path) -> TorchReport {
    let python = args
        .torch_python
        .clone()
        .or_else(|| std::env::var_os(TORCH_PYTHON_ENV).map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from("python3"));
    let script = script(args);
    if !script.is_file() {
        return TorchReport::failed(&python, format!("{} not found", script.display()));
    }
    let config = serde_json::json!({
        "down_dims": net.unet.down_dims,
        "kernel_size": net.unet.kernel_size,
        "n_groups": net.unet.n_groups,
        "diffusion_step_embed_dim": net.unet.diffusion_step_embed_dim,
        "use_film_scale_modulation": net.unet.use_film_scale_modulation,
        "action_dim": net.unet.action_dim,
        "horizon": net.horizon,
        "cond_dim": net.condition_dim(),
        "mode_embed_dim": net.mode_embed_dim,
        "candidates": net.candidates,
        "ddim_steps": net.ddim_steps,
        "guidance_scale": net.guidance_scale,
        "batches": super::BATCHES,
        "forward_iterations": args.forward_iterations,
        "plan_iterations": args.plan_iterations,
    });
    let child = Command::new(&python)
        .arg(&script)
        .arg("--weights")
        .arg(weights)
        .arg("--config")
        .arg(config.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let mut child = match child {
        Ok(c) => c,
        Err(e) => return TorchReport::failed(&python, format!("cannot run: {e}")),
    };
    // Pass the script's progress through, keeping the last lines for an error message.
    let stderr = child.stderr.take();
    let relay = std::thread::spawn(move || {
        let mut tail = VecDeque::new();
        if let Some(stderr) = stderr {
            for line in BufReader::new(stderr)
                .lines()
                .map_while(std::io::Result::ok)
            {
                eprintln!("  {line}");
                tail.push_back(line);
                if tail.len() > 3 {
                    tail.pop_front();
                }
            }
        }
        tail
    });
    let output = child.wait_with_output();
    let tail = relay.join().unwrap_or_default();
    let output = match output {
        Ok(o) => o,
        Err(e) => return TorchReport::failed(&python, format!("cannot run: {e}")),
    };
    if !output.status.success() {
        let tail: Vec<String> = tail.into_iter().collect();
        return TorchReport::failed(
            &python,
            format!(
                "{} exited with {}: {}",
                script.display(),
                output.status,
                tail.join(" | ")
            ),
        );
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    let Some(line) = stdout
        .lines()
        .rev()
        .find(|l| l.trim_start().starts_with('{'))
    else {
        return TorchReport::failed(&python, "no JSON on stdout".into());
    };
    match serde_json::from_str::<serde_json::Value>(line) {
        Ok(results) => TorchReport {
            status: "ok".into(),
            reason: None,
            python: Some(python.display().to_string()),
            results: Some(results),
        },
        Err(e) => TorchReport::failed(&python, format!("bad JSON on stdout: {e}")),
    }
}
