//! The U-Net's fast CPU inference path: fused kernels on plain `f32` slices instead of one
//! candle op (and one allocation and memory pass) per elementary operation.
//!
//! - convolutions: im2col + one `gemm` over the whole batch, activations kept `(C, B, L)`
//!   (channel-major, batch inside) so that no transpose is needed between layers;
//! - conv bias + GroupNorm + Mish + FiLM in one pass (two for the statistics, in cache);
//! - conv bias + GroupNorm + Mish + the residual branch (identity or the 1x1 conv's product)
//!   in one pass;
//! - the upsample as its polyphase form, the two phases written interleaved by `gemm`;
//! - Mish with one exponential (a branch-free polynomial that vectorises).
//!
//! It reads the weights from the model's candle tensors on every call (nothing is cached, so
//! weights updated in place stay current) and is forward-only: no gradients. The U-Net uses it
//! when [`KernelChoice::Auto`] is set (the default), the input is f32 on the CPU and neither
//! the inputs nor any weight tracks gradients (see [`ConditionalUnet1d::forward`]); training
//! (weights are `Var`s) and CUDA run the generic candle ops of `ops.rs` (on CUDA only candle's
//! tensor ops; [`KernelChoice::TensorOps`] runs exactly those on the CPU).
//!
//! [`ConditionalUnet1d::forward`]: super::ConditionalUnet1d::forward

pub(crate) mod kernels;

use candle_core::{CpuStorage, DType, Device, Result, Storage, StorageRef, Tensor};

pub(crate) use kernels::{Dims, Par};

/// Which implementation [`ConditionalUnet1d::forward`](super::ConditionalUnet1d::forward) uses
/// (`--kernels auto|generic|tensor-ops` on the command line).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum KernelChoice {
    /// The fused CPU kernels when the device is the CPU, the dtype f32 and nothing tracks
    /// gradients; the generic candle ops otherwise.
    #[default]
    Auto,
    /// Always the generic candle ops (differentiable, any device): the reference the fused
    /// kernels are tested against. On the CPU (f32) Mish, GroupNorm and the convolutions'
    /// columns are fused custom ops with their own backward (what training on the CPU runs).
    Generic,
    /// The generic candle ops with candle's tensor ops only, on every device: on the CPU the
    /// same sequence of ops that runs on CUDA (where none of the CPU's custom ops exists), so
    /// that the CUDA path is tested without a GPU. Slower on the CPU than `Generic`.
    TensorOps,
}

/// The float type of the network's weights and activations at inference (`--precision`).
/// Inputs and outputs stay f32 (the sampler's arithmetic is f32); GroupNorm's statistics are
/// computed in f32. Anything but f32 runs the generic candle ops (the fused CPU kernels are
/// f32), on the CPU and on CUDA.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Precision {
    #[default]
    F32,
    F16,
    Bf16,
}

impl Precision {
    /// candle's dtype.
    pub fn dtype(self) -> DType {
        match self {
            Precision::F32 => DType::F32,
            Precision::F16 => DType::F16,
            Precision::Bf16 => DType::BF16,
        }
    }
}

/// Threads of the fused CPU kernels. With n > 1 threads a batch of B > 1 samples is split into
/// min(n, B) parts that run in parallel, each on one thread (samples are independent: no
/// synchronisation inside the network); a single sample runs its matrix products on n threads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CpuThreads {
    /// One thread for a single sample (spreading one small sample costs more than it gains),
    /// all of rayon's threads (`RAYON_NUM_THREADS`, default: the logical CPUs) for a batch.
    #[default]
    Auto,
    /// Exactly this many threads (1: everything on the calling thread). 0 counts as 1.
    Fixed(usize),
}

impl CpuThreads {
    /// The number of threads for a forward pass of `b` samples.
    pub(crate) fn threads(self, b: usize) -> usize {
        match self {
            CpuThreads::Fixed(n) => n.max(1),
            CpuThreads::Auto if b <= 1 => 1,
            CpuThreads::Auto => rayon::current_num_threads().max(1),
        }
    }
}

/// How the U-Net's forward pass runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ForwardOptions {
    /// Fused CPU kernels or the generic candle ops.
    pub kernels: KernelChoice,
    /// Threads of the fused CPU kernels (the generic ops follow candle's own setting,
    /// `RAYON_NUM_THREADS`).
    pub cpu_threads: CpuThreads,
}

/// `c = a a` for a square `n x n` row-major `a`, with the matrix product the CPU kernels use
/// (the `gemm` crate) on `threads` threads: for measuring this machine's sgemm peak.
pub fn sgemm_square(n: usize, a: &[f32], c: &mut [f32], threads: usize) -> Result<()> {
    let m = kernels::Mat {
        data: a,
        rs: n,
        cs: 1,
    };
    kernels::matmul((n, n, n), c, (n, 1), false, m, m, Par(threads.max(1)))
}

/// True if `t` can be read by the CPU kernels: f32 on the CPU, not tracking gradients.
pub(crate) fn readable(t: &Tensor) -> bool {
    matches!(t.device(), Device::Cpu) && t.dtype() == DType::F32 && !t.track_op()
}

/// Read access to a contiguous f32 CPU tensor's values (holds the storage's read lock).
pub(crate) struct CpuSlice<'a> {
    guard: StorageRef<'a>,
    start: usize,
    len: usize,
}

impl<'a> CpuSlice<'a> {
    /// Fails if `t` is not a contiguous f32 tensor on the CPU; `what` names it in the error.
    pub(crate) fn new(t: &'a Tensor, what: &str) -> Result<Self> {
        let (guard, layout) = t.storage_and_layout();
        if !layout.is_contiguous() {
            candle_core::bail!("{what}: the CPU kernels need a contiguous tensor");
        }
        if !matches!(&*guard, Storage::Cpu(CpuStorage::F32(_))) {
            candle_core::bail!(
                "{what}: the CPU kernels need f32 on the CPU, found {:?} on {:?}",
                t.dtype(),
                t.device().location()
            );
        }
        let start = layout.start_offset();
        let len = layout.shape().elem_count();
        Ok(Self { guard, start, len })
    }

    /// The values, row-major.
    pub(crate) fn get(&self) -> &[f32] {
        match &*self.guard {
            Storage::Cpu(CpuStorage::F32(v)) => &v[self.start..self.start + self.len],
            // `new` accepted only f32 CPU storage, and the guard keeps it.
            _ => &[],
        }
    }
}

/// An activation `(C, B, L)`, row-major.
#[derive(Debug, Clone)]
pub(crate) struct Act {
    pub(crate) data: Vec<f32>,
    pub(crate) d: Dims,
}

impl Act {
    /// Zeros of the given size.
    pub(crate) fn zeros(d: Dims) -> Self {
        Self {
            data: vec![0.0; d.len()],
            d,
        }
    }

    /// From `x (B, T, D)` row-major to `(D, B, T)`.
    pub(crate) fn from_btd(x: &[f32], b: usize, t: usize, d: usize) -> Self {
        let mut out = Self::zeros(Dims { c: d, b, l: t });
        for bi in 0..b {
            for ti in 0..t {
                for di in 0..d {
                    out.data[(di * b + bi) * t + ti] = x[(bi * t + ti) * d + di];
                }
            }
        }
        out
    }

    /// To `(B, T, D)` row-major, T = L and D = C.
    pub(crate) fn to_btd(&self) -> Vec<f32> {
        let Dims { c, b, l } = self.d;
        let mut out = vec![0.0; self.data.len()];
        for ci in 0..c {
            for bi in 0..b {
                for li in 0..l {
                    out[(bi * l + li) * c + ci] = self.data[(ci * b + bi) * l + li];
                }
            }
        }
        out
    }

    /// `[a; b]` along the channels (both `(C_i, B, L)`).
    pub(crate) fn cat_channels(a: &Act, b: &Act) -> Result<Act> {
        if a.d.b != b.d.b || a.d.l != b.d.l {
            candle_core::bail!("channel concat: {:?} and {:?}", a.d, b.d);
        }
        let mut data = Vec::with_capacity(a.data.len() + b.data.len());
        data.extend_from_slice(&a.data);
        data.extend_from_slice(&b.data);
        Ok(Act {
            data,
            d: Dims {
                c: a.d.c + b.d.c,
                ..a.d
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_round_trip_and_concat() {
        let x: Vec<f32> = (0..2 * 3 * 4).map(|v| v as f32).collect();
        let a = Act::from_btd(&x, 2, 3, 4);
        assert_eq!(a.d, Dims { c: 4, b: 2, l: 3 });
        // x[b=1, t=2, d=3] = (1*3 + 2)*4 + 3 = 23 sits at (3*2 + 1)*3 + 2.
        assert_eq!(a.data[(3 * 2 + 1) * 3 + 2], 23.0);
        assert_eq!(a.to_btd(), x);
        let ab = Act::cat_channels(&a, &a).unwrap();
        assert_eq!(ab.d.c, 8);
        assert_eq!(&ab.data[a.data.len()..], &a.data[..]);
        assert!(Act::cat_channels(&a, &Act::zeros(Dims { c: 1, b: 2, l: 4 })).is_err());
    }

    #[test]
    fn threads_by_batch() {
        assert_eq!(CpuThreads::Fixed(0).threads(64), 1);
        assert_eq!(CpuThreads::Fixed(2).threads(1), 2);
        assert_eq!(CpuThreads::Auto.threads(1), 1);
        assert_eq!(
            CpuThreads::Auto.threads(64),
            rayon::current_num_threads().max(1)
        );
    }

    #[test]
    fn cpu_slice_reads_views_and_rejects_other_dtypes() {
        let t = Tensor::arange(0f32, 12.0, &Device::Cpu)
            .unwrap()
            .reshape((3, 4))
            .unwrap();
        let row = t.narrow(0, 1, 1).unwrap();
        let s = CpuSlice::new(&row, "row").unwrap();
        assert_eq!(s.get(), &[4.0, 5.0, 6.0, 7.0]);
        assert!(CpuSlice::new(&t.t().unwrap(), "transposed").is_err());
        let u = Tensor::new(&[1u32, 2], &Device::Cpu).unwrap();
        let err = CpuSlice::new(&u, "labels").err().unwrap().to_string();
        assert!(err.contains("labels") && err.contains("U32"), "{err}");
    }
}
