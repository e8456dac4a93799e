//! `src/diffusion/` against diffusers 0.42.1 (torch 2.15, CPU).
//!
//! The fixtures `tests/fixtures/schedulers.{safetensors,json}` come from
//! `tools/gen_scheduler_fixtures.py` (its docstring lists every tensor). No Python runs here.
//!
//! Tolerance: |ours - diffusers| <= 1e-5 · max(1, |diffusers|). The relative part only matters
//! for unclipped x0 predictions near t = N - 1, where 1 / sqrt(ᾱ_t) is about 2000 and one f32
//! ulp of the result is above 1e-5.

// Test helpers outside #[test] functions unwrap too (clippy.toml allows it only inside).
#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::path::PathBuf;

use candle_core::{Device, Tensor};
use diffusion_planner::diffusion::schedule::{alphas_cumprod, betas, inference_timesteps};
use diffusion_planner::diffusion::{
    BetaSchedule, DdimScheduler, DdpmScheduler, NoiseSchedule, SchedulerConfig, StepOutput,
    TimestepSpacing,
};
use serde::Deserialize;

const TOL: f32 = 1e-5;

#[derive(Debug, Deserialize)]
struct Fixture {
    #[allow(dead_code)]
    generator: String,
    cases: Vec<Case>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Case {
    name: String,
    scheduler: String,
    /// diffusers' config restricted to our keys: parsing it checks the names.
    config: SchedulerConfig,
    num_inference_steps: Option<usize>,
    eta: f64,
}

struct Golden {
    tensors: HashMap<String, Tensor>,
    cases: Vec<Case>,
}

impl Golden {
    fn load() -> Golden {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
        let tensors =
            candle_core::safetensors::load(dir.join("schedulers.safetensors"), &Device::Cpu)
                .expect(
                    "tests/fixtures/schedulers.safetensors (run tools/gen_scheduler_fixtures.py)",
                );
        let json = std::fs::read_to_string(dir.join("schedulers.json")).unwrap();
        let fixture: Fixture = serde_json::from_str(&json).unwrap();
        Golden {
            tensors,
            cases: fixture.cases,
        }
    }

    fn get(&self, name: &str) -> &Tensor {
        self.tensors
            .get(name)
            .unwrap_or_else(|| panic!("fixture tensor `{name}` is missing"))
    }

    fn f32s(&self, name: &str) -> Vec<f32> {
        self.get(name)
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap()
    }

    fn ints(&self, name: &str) -> Vec<i64> {
        let t = self.get(name).to_dtype(candle_core::DType::I64).unwrap();
        t.to_vec1::<i64>().unwrap()
    }

    fn case(&self, name: &str) -> &Case {
        self.cases
            .iter()
            .find(|c| c.name == name)
            .unwrap_or_else(|| panic!("fixture case `{name}` is missing"))
    }
}

/// Max of |a - b| / max(1, |b|); asserts it is within TOL. Returns (max abs, max scaled).
fn assert_close(what: &str, ours: &[f32], want: &[f32]) -> (f32, f32) {
    assert_eq!(ours.len(), want.len(), "{what}: length");
    let mut max_abs = 0.0f32;
    let mut max_scaled = 0.0f32;
    for (i, (&o, &w)) in ours.iter().zip(want).enumerate() {
        let abs = (o - w).abs();
        let scaled = abs / w.abs().max(1.0);
        assert!(
            scaled <= TOL,
            "{what}[{i}]: ours {o}, diffusers {w}, |diff| {abs}"
        );
        max_abs = max_abs.max(abs);
        max_scaled = max_scaled.max(scaled);
    }
    (max_abs, max_scaled)
}

/// The largest distance in units in the last place (both positive, as betas and ᾱ are).
fn max_ulps(ours: &[f32], want: &[f32]) -> u32 {
    ours.iter()
        .zip(want)
        .map(|(o, w)| o.to_bits().abs_diff(w.to_bits()))
        .max()
        .unwrap_or(0)
}

fn values(t: &Tensor) -> Vec<f32> {
    t.flatten_all().unwrap().to_vec1::<f32>().unwrap()
}

#[test]
fn betas_and_alphas_cumprod_match_diffusers() {
    let g = Golden::load();
    let mut bit_mismatches = 0usize;
    for schedule in BetaSchedule::ALL {
        for n in [100usize, 1000] {
            let prefix = format!("schedule/{schedule}/N{n}");
            let b = betas(*schedule, n, 1e-4, 0.02);
            let a = alphas_cumprod(&b);
            let want_b = g.f32s(&format!("{prefix}/betas"));
            let want_a = g.f32s(&format!("{prefix}/alphas_cumprod"));
            assert_close(&format!("{prefix}/betas"), &b, &want_b);
            assert_close(&format!("{prefix}/alphas_cumprod"), &a, &want_a);
            // Stricter than TOL: the schedules are computed in the same order as torch, so they
            // agree to the bit here; allow 2 ulp for another platform's libm `cos`. (An f32
            // cumprod accumulator, for example, is off by many ulp and still passes TOL.)
            let ulps = max_ulps(&b, &want_b).max(max_ulps(&a, &want_a));
            assert!(ulps <= 2, "{prefix}: {ulps} ulp from diffusers");
            bit_mismatches += b
                .iter()
                .zip(&want_b)
                .filter(|(x, y)| x.to_bits() != y.to_bits())
                .count();
            bit_mismatches += a
                .iter()
                .zip(&want_a)
                .filter(|(x, y)| x.to_bits() != y.to_bits())
                .count();
            // The same through the public schedule type.
            let config = SchedulerConfig {
                num_train_timesteps: n,
                beta_schedule: *schedule,
                ..Default::default()
            };
            assert_eq!(
                NoiseSchedule::new(&config).unwrap().alphas_cumprod(),
                a.as_slice()
            );
        }
    }
    println!("schedules: {bit_mismatches} values differ from diffusers in any bit");
}

#[test]
fn timesteps_match_diffusers_for_every_n() {
    let g = Golden::load();
    for spacing in TimestepSpacing::ALL {
        let all = g.ints(&format!("timesteps_all/{spacing}/N100/values"));
        let lengths = g.ints(&format!("timesteps_all/{spacing}/N100/lengths"));
        let mut offset = 0usize;
        let mut extra = 0usize;
        for (n, &len) in (1..=100usize).zip(&lengths) {
            let len = len as usize;
            let want = &all[offset..offset + len];
            offset += len;
            let ours: Vec<i64> = inference_timesteps(100, n, *spacing, 0)
                .unwrap()
                .into_iter()
                .map(|t| t as i64)
                .collect();
            if len == n + 1 {
                // numpy's float arange overshoots; diffusers ends with timestep -1.
                assert_eq!(*spacing, TimestepSpacing::Trailing);
                assert_eq!(want[n], -1, "{spacing} n={n}");
                extra += 1;
            } else {
                assert_eq!(len, n, "{spacing} n={n}");
            }
            assert_eq!(ours, want[..n], "{spacing} n={n}");
        }
        println!("{spacing}: diffusers returned one timestep too many for {extra} of 100 n");
    }
}

#[test]
fn selected_timesteps_match_diffusers() {
    let g = Golden::load();
    let mut checked = 0;
    for name in g.tensors.keys().filter(|k| k.starts_with("timesteps/")) {
        // timesteps/{spacing}/N{N}/n{n}/offset{o}
        let parts: Vec<&str> = name.split('/').collect();
        let spacing: TimestepSpacing = parts[1].parse().unwrap();
        let big_n: usize = parts[2].trim_start_matches('N').parse().unwrap();
        let n: usize = parts[3].trim_start_matches('n').parse().unwrap();
        let offset: usize = parts[4].trim_start_matches("offset").parse().unwrap();
        let want = g.ints(name);
        let ours: Vec<i64> = inference_timesteps(big_n, n, spacing, offset)
            .unwrap()
            .into_iter()
            .map(|t| t as i64)
            .collect();
        if want.len() == n + 1 {
            assert_eq!(want[n], -1, "{name}");
        }
        assert_eq!(ours, want[..n], "{name}");
        checked += 1;
    }
    assert!(checked > 90, "only {checked} timestep tensors");
}

enum Sched {
    Ddpm(DdpmScheduler),
    Ddim(DdimScheduler, f64),
}

impl Sched {
    fn from_case(case: &Case) -> Sched {
        let mut s = match case.scheduler.as_str() {
            "ddpm" => Sched::Ddpm(DdpmScheduler::new(&case.config).unwrap()),
            "ddim" => Sched::Ddim(DdimScheduler::new(&case.config).unwrap(), case.eta),
            other => panic!("unknown scheduler {other}"),
        };
        if let Some(n) = case.num_inference_steps {
            match &mut s {
                Sched::Ddpm(d) => d.set_timesteps(n).unwrap(),
                Sched::Ddim(d, _) => d.set_timesteps(n).unwrap(),
            }
        }
        s
    }

    fn timesteps(&self) -> Vec<usize> {
        match self {
            Sched::Ddpm(d) => d.timesteps().to_vec(),
            Sched::Ddim(d, _) => d.timesteps().to_vec(),
        }
    }

    fn step(&self, out: &Tensor, t: usize, x: &Tensor, noise: &Tensor) -> StepOutput {
        match self {
            Sched::Ddpm(d) => d.step(out, t, x, Some(noise)).unwrap(),
            Sched::Ddim(d, eta) => d.step(out, t, x, *eta, Some(noise)).unwrap(),
        }
    }
}

#[test]
fn single_steps_match_diffusers() {
    let g = Golden::load();
    let mut cases = 0;
    let mut worst = (0.0f32, 0.0f32);
    for case in g.cases.iter().filter(|c| {
        g.tensors
            .contains_key(&format!("step/{}/timesteps", c.name))
    }) {
        let sched = Sched::from_case(case);
        let p = format!("step/{}", case.name);
        let ts = g.ints(&format!("{p}/timesteps"));
        for (i, &t) in ts.iter().enumerate() {
            let row = |key: &str| g.get(&format!("{p}/{key}")).get(i).unwrap();
            let out = sched.step(
                &row("model_output"),
                t as usize,
                &row("sample"),
                &row("noise"),
            );
            let what = format!("{} t={t}", case.name);
            let a = assert_close(
                &format!("{what} pred_original_sample"),
                &values(&out.pred_original_sample),
                &values(&row("pred_original_sample")),
            );
            let b = assert_close(
                &format!("{what} prev_sample"),
                &values(&out.prev_sample),
                &values(&row("prev_sample")),
            );
            worst = (worst.0.max(a.0).max(b.0), worst.1.max(a.1).max(b.1));
        }
        cases += 1;
    }
    assert_eq!(cases, 22);
    println!(
        "single steps: max |diff| {:e}, max scaled diff {:e}",
        worst.0, worst.1
    );
}

#[test]
fn denoising_loops_match_diffusers() {
    let g = Golden::load();
    for name in ["chain_ddpm", "chain_ddim"] {
        let case = g.case(name);
        let sched = Sched::from_case(case);
        let p = format!("chain/{name}");
        let mut x = g.get(&format!("{p}/x_t")).clone();
        let noises = g.get(&format!("{p}/noise"));
        let prevs = g.get(&format!("{p}/prev_samples"));
        let ts = sched.timesteps();
        assert_eq!(ts.len(), 10);
        for (i, &t) in ts.iter().enumerate() {
            let eps = x.affine(0.5, 0.0).unwrap();
            x = sched.step(&eps, t, &x, &noises.get(i).unwrap()).prev_sample;
            assert_close(
                &format!("{name} step {i}"),
                &values(&x),
                &values(&prevs.get(i).unwrap()),
            );
        }
    }
}

#[test]
fn add_noise_matches_diffusers() {
    let g = Golden::load();
    for name in ["add_noise_dp", "add_noise_linear_1000"] {
        let case = g.case(name);
        let schedule = NoiseSchedule::new(&case.config).unwrap();
        let p = format!("add_noise/{name}");
        let ts: Vec<u32> = g
            .ints(&format!("{p}/timesteps"))
            .into_iter()
            .map(|t| t as u32)
            .collect();
        let ts = Tensor::new(ts.as_slice(), &Device::Cpu).unwrap();
        let noisy = schedule
            .add_noise(g.get(&format!("{p}/x0")), g.get(&format!("{p}/noise")), &ts)
            .unwrap();
        assert_close(name, &values(&noisy), &g.f32s(&format!("{p}/noisy")));
    }
}
