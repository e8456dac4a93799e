//! Slice-level CPU kernels of the inference path: im2col and a checked wrapper around the `gemm`
//! crate (the matrix product candle itself uses) here, Mish and the exponential in [`math`],
//! the fused GroupNorm + Mish (+ FiLM, + residual) passes in [`norm`]. Activations are
//! `(C, B, L)` row-major: channel-major with the batch inside, so a convolution over the whole
//! batch is one matrix product `(C_out, C_in k) x (C_in k, B L)` whose result is already in that
//! layout.
//!
//! Every kernel takes a thread budget [`Par`]: 1 runs on the calling thread, more splits the
//! work on rayon's global pool (and lets `gemm` use that many threads).

use candle_core::Result;
use rayon::prelude::*;

/// Defines `$name(args)`, which runs `$body::<Fused>(args)` compiled for AVX-512 or for AVX2 +
/// FMA when the CPU has them (checked at run time), and `$body::<Unfused>(args)` for the baseline
/// x86-64 otherwise. `$body` must be `#[inline(always)]` so that each copy is compiled (and
/// vectorised) with its target features.
macro_rules! dispatch_simd {
    ($(#[$m:meta])* $vis:vis fn $name:ident($($arg:ident: $ty:ty),* $(,)?) => $body:ident) => {
        $(#[$m])*
        $vis fn $name($($arg: $ty),*) {
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx512f,avx512vl,avx2,fma")]
                unsafe fn avx512($($arg: $ty),*) {
                    $body::<Fused>($($arg),*)
                }
                #[target_feature(enable = "avx2,fma")]
                unsafe fn avx2_fma($($arg: $ty),*) {
                    $body::<Fused>($($arg),*)
                }
                if has_avx512() {
                    // SAFETY: the CPU has AVX-512F/VL, AVX2 and FMA (checked just above), the
                    // only requirement of a `target_feature` function.
                    unsafe { avx512($($arg),*) };
                    return;
                }
                if has_avx2_fma() {
                    // SAFETY: the CPU has AVX2 and FMA (checked just above).
                    unsafe { avx2_fma($($arg),*) };
                    return;
                }
            }
            $body::<Unfused>($($arg),*)
        }
    };
}

mod math;
mod norm;

pub(crate) use math::{mish_grad_inplace, mish_inplace};
pub(crate) use norm::{add_channel_bias, norm_mish_add, norm_mish_film, Film, NormParams};

/// Thread budget of one kernel call (1 = sequential).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Par(pub(crate) usize);

impl Par {
    fn parallel(self) -> bool {
        self.0 > 1
    }
}

/// Runs `f(index, chunk)` on consecutive `chunk`-sized pieces of `data`, in parallel when
/// `par` allows it.
fn for_each_chunk<F>(data: &mut [f32], chunk: usize, par: Par, f: F)
where
    F: Fn(usize, &mut [f32]) + Sync + Send,
{
    if chunk == 0 {
        return;
    }
    if par.parallel() {
        data.par_chunks_mut(chunk)
            .enumerate()
            .for_each(|(i, c)| f(i, c));
    } else {
        data.chunks_mut(chunk)
            .enumerate()
            .for_each(|(i, c)| f(i, c));
    }
}

/// Sizes of a `(C, B, L)` activation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Dims {
    pub(crate) c: usize,
    pub(crate) b: usize,
    pub(crate) l: usize,
}

impl Dims {
    pub(crate) fn len(self) -> usize {
        self.c * self.b * self.l
    }
}

// ---------------------------------------------------------------------------------------------
// im2col

thread_local! {
    /// Reused im2col buffer of this thread (columns are rewritten in full on every use).
    static COLUMNS: std::cell::RefCell<Vec<f32>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Runs `f` with a buffer of `len` values for im2col columns: this thread's reused buffer
/// (contents arbitrary, `im2col` overwrites all of it), or a fresh one if it is in use (a
/// re-entrant call through rayon's work stealing).
pub(crate) fn with_columns<R>(len: usize, f: impl FnOnce(&mut [f32]) -> R) -> R {
    COLUMNS.with(|cell| match cell.try_borrow_mut() {
        Ok(mut buf) => {
            if buf.len() < len {
                buf.resize(len, 0.0);
            }
            f(&mut buf[..len])
        }
        Err(_) => f(&mut vec![0.0; len]),
    })
}

/// A 1-D convolution's geometry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ConvGeom {
    pub(crate) k: usize,
    pub(crate) padding: usize,
    pub(crate) stride: usize,
}

impl ConvGeom {
    /// Output length for an input of `l`, or `None` if the kernel does not fit.
    pub(crate) fn l_out(self, l: usize) -> Option<usize> {
        if self.stride == 0 || l + 2 * self.padding < self.k {
            return None;
        }
        Some((l + 2 * self.padding - self.k) / self.stride + 1)
    }
}

/// Columns `(C k, B L_out)` of `x (C, B, L)`: row `ci k + j`, column `b L_out + o` holds
/// `x[ci, b, o stride + j - padding]` (0 outside the input), the weight `(C_out, C, k)`'s own
/// column order. Every element of `cols` is written.
pub(crate) fn im2col(x: &[f32], d: Dims, g: ConvGeom, cols: &mut [f32], par: Par) -> Result<()> {
    let Some(l_out) = g.l_out(d.l) else {
        candle_core::bail!("im2col: kernel {:?} does not fit length {}", g, d.l);
    };
    let (b, l, k) = (d.b, d.l, g.k);
    if x.len() != d.len() || cols.len() != d.c * k * b * l_out {
        candle_core::bail!(
            "im2col: buffer sizes {} / {} for {:?}, {:?}",
            x.len(),
            cols.len(),
            d,
            g
        );
    }
    let same_length = g.stride == 1 && l_out == l;
    for_each_chunk(cols, k * b * l_out, par, |ci, out| {
        let block = &x[ci * b * l..(ci + 1) * b * l];
        for j in 0..k {
            let row = &mut out[j * b * l_out..(j + 1) * b * l_out];
            if same_length {
                // The whole row is the channel's (B, L) block shifted by s = j - padding, with
                // the |s| positions at each sample's edge that fall outside it set to 0: one
                // copy and B short fills instead of B short copies.
                let shift = j as isize - g.padding as isize;
                let n = b * l;
                let m = shift.unsigned_abs().min(n);
                if shift >= 0 {
                    row[..n - m].copy_from_slice(&block[m..]);
                    row[n - m..].fill(0.0);
                } else {
                    row[m..].copy_from_slice(&block[..n - m]);
                    row[..m].fill(0.0);
                }
                let edge = m.min(l);
                for sample in row.chunks_mut(l) {
                    if shift >= 0 {
                        sample[l - edge..].fill(0.0);
                    } else {
                        sample[..edge].fill(0.0);
                    }
                }
                continue;
            }
            for bi in 0..b {
                let src = &block[bi * l..(bi + 1) * l];
                let dst = &mut row[bi * l_out..(bi + 1) * l_out];
                if g.stride == 1 {
                    // dst[o] = src[o + j - padding]: valid for o in [lo, hi).
                    let lo = g.padding.saturating_sub(j).min(l_out);
                    let hi = (l + g.padding).saturating_sub(j).clamp(lo, l_out);
                    dst[..lo].fill(0.0);
                    dst[lo..hi].copy_from_slice(&src[lo + j - g.padding..hi + j - g.padding]);
                    dst[hi..].fill(0.0);
                } else {
                    for (o, v) in dst.iter_mut().enumerate() {
                        let pos = o * g.stride + j;
                        *v = if pos >= g.padding && pos - g.padding < l {
                            src[pos - g.padding]
                        } else {
                            0.0
                        };
                    }
                }
            }
        }
    });
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Matrix product

/// A read-only strided matrix view: element (i, j) at `data[i rs + j cs]`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Mat<'a> {
    pub(crate) data: &'a [f32],
    pub(crate) rs: usize,
    pub(crate) cs: usize,
}

/// True if every element (i, j), i < rows, j < cols, lies inside a buffer of `len`.
fn fits(len: usize, rows: usize, cols: usize, rs: usize, cs: usize) -> bool {
    rows == 0 || cols == 0 || (rows - 1) * rs + (cols - 1) * cs < len
}

/// `dst (m, n) = [dst +] lhs (m, k) rhs (k, n)`, dst element (i, j) at `dst[i dst_rs + j
/// dst_cs]`. With `accumulate` the product is added to dst's contents. Runs `gemm::gemm`
/// (single-threaded for `Par(1)`) after checking every view against its buffer.
#[allow(clippy::too_many_arguments)]
pub(crate) fn matmul(
    (m, n, k): (usize, usize, usize),
    dst: &mut [f32],
    (dst_rs, dst_cs): (usize, usize),
    accumulate: bool,
    lhs: Mat,
    rhs: Mat,
    par: Par,
) -> Result<()> {
    if !fits(dst.len(), m, n, dst_rs, dst_cs)
        || !fits(lhs.data.len(), m, k, lhs.rs, lhs.cs)
        || !fits(rhs.data.len(), k, n, rhs.rs, rhs.cs)
    {
        candle_core::bail!(
            "matmul ({m}, {n}, {k}): a view exceeds its buffer (dst {}, lhs {}, rhs {})",
            dst.len(),
            lhs.data.len(),
            rhs.data.len()
        );
    }
    if m == 0 || n == 0 {
        return Ok(());
    }
    if k == 0 {
        if !accumulate {
            for i in 0..m {
                for j in 0..n {
                    dst[i * dst_rs + j * dst_cs] = 0.0;
                }
            }
        }
        return Ok(());
    }
    let parallelism = if par.parallel() {
        gemm::Parallelism::Rayon(par.0)
    } else {
        gemm::Parallelism::None
    };
    // Strides of at most the buffer lengths fit in isize (a Vec is at most isize::MAX bytes).
    let s = |v: usize| v as isize;
    // SAFETY: `fits` checked above that every element the three views address lies inside
    // its slice; dst is borrowed mutably and cannot alias lhs or rhs (shared borrows); gemm
    // reads dst only with `read_dst = accumulate`, and f32 has no invalid bit patterns.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.as_mut_ptr(),
            s(dst_cs),
            s(dst_rs),
            accumulate,
            lhs.data.as_ptr(),
            s(lhs.cs),
            s(lhs.rs),
            rhs.data.as_ptr(),
            s(rhs.cs),
            s(rhs.rs),
            1.0,
            1.0,
            false,
            false,
            false,
            parallelism,
        );
    }
    Ok(())
}

/// `y (B, out) = x (B, in) W^T + bias`, W `(out, in)` row-major (a `nn.Linear`).
pub(crate) fn linear(
    x: &[f32],
    rows: usize,
    w: &[f32],
    bias: &[f32],
    par: Par,
) -> Result<Vec<f32>> {
    let out = bias.len();
    if out == 0 || w.len() % out != 0 {
        candle_core::bail!("linear: weight of {} values for {out} outputs", w.len());
    }
    let inp = w.len() / out;
    if x.len() != rows * inp {
        candle_core::bail!(
            "linear: input of {} values, expected ({rows}, {inp})",
            x.len()
        );
    }
    let mut y = Vec::with_capacity(rows * out);
    for _ in 0..rows {
        y.extend_from_slice(bias);
    }
    matmul(
        (rows, out, inp),
        &mut y,
        (out, 1),
        true,
        Mat {
            data: x,
            rs: inp,
            cs: 1,
        },
        Mat {
            data: w,
            rs: 1,
            cs: inp,
        },
        par,
    )?;
    Ok(y)
}

#[cfg(test)]
pub(crate) mod test_data {
    /// `n` deterministic values in [-2, 2).
    pub(crate) fn lcg(n: usize, seed: u64) -> Vec<f32> {
        let mut s = seed;
        (0..n)
            .map(|_| {
                s = s
                    .wrapping_mul(6_364_136_223_846_793_005)
                    .wrapping_add(1_442_695_040_888_963_407);
                ((s >> 40) as f32 / (1u64 << 24) as f32) * 4.0 - 2.0
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::test_data::lcg;
    use super::*;

    #[test]
    fn im2col_matmul_is_a_convolution() {
        for (c_in, c_out, b, l, k, padding, stride) in [
            (3, 4, 2, 7, 5, 2, 1),
            (4, 2, 3, 8, 3, 1, 2),
            (2, 3, 1, 4, 5, 2, 1),
            (3, 3, 2, 9, 3, 1, 2),
            // Shifts as long as the sample: whole rows of zeros.
            (2, 3, 3, 2, 5, 2, 1),
            (2, 2, 2, 1, 5, 2, 1),
        ] {
            let d = Dims { c: c_in, b, l };
            let g = ConvGeom { k, padding, stride };
            let l_out = g.l_out(l).unwrap();
            let x = lcg(d.len(), 11);
            let w = lcg(c_out * c_in * k, 12);
            for par in [Par(1), Par(2)] {
                let mut cols = vec![f32::NAN; c_in * k * b * l_out];
                im2col(&x, d, g, &mut cols, par).unwrap();
                let mut y = vec![0f32; c_out * b * l_out];
                matmul(
                    (c_out, b * l_out, c_in * k),
                    &mut y,
                    (b * l_out, 1),
                    false,
                    Mat {
                        data: &w,
                        rs: c_in * k,
                        cs: 1,
                    },
                    Mat {
                        data: &cols,
                        rs: b * l_out,
                        cs: 1,
                    },
                    par,
                )
                .unwrap();
                for co in 0..c_out {
                    for bi in 0..b {
                        for o in 0..l_out {
                            let mut want = 0f64;
                            for ci in 0..c_in {
                                for j in 0..k {
                                    let pos = (o * stride + j) as isize - padding as isize;
                                    if pos >= 0 && (pos as usize) < l {
                                        want += f64::from(w[(co * c_in + ci) * k + j])
                                            * f64::from(x[(ci * b + bi) * l + pos as usize]);
                                    }
                                }
                            }
                            let got = f64::from(y[(co * b + bi) * l_out + o]);
                            assert!((got - want).abs() < 1e-5, "{got} vs {want}");
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn linear_and_bad_views() {
        let x = lcg(2 * 3, 21);
        let w = lcg(4 * 3, 22);
        let bias = lcg(4, 23);
        let y = linear(&x, 2, &w, &bias, Par(1)).unwrap();
        for r in 0..2 {
            for o in 0..4 {
                let want: f32 = bias[o] + (0..3).map(|i| x[r * 3 + i] * w[o * 3 + i]).sum::<f32>();
                assert!((y[r * 4 + o] - want).abs() < 1e-6);
            }
        }
        assert!(linear(&x, 3, &w, &bias, Par(1)).is_err());
        let mut dst = vec![0f32; 3];
        let err = matmul(
            (2, 2, 1),
            &mut dst,
            (2, 1),
            false,
            Mat {
                data: &x,
                rs: 1,
                cs: 1,
            },
            Mat {
                data: &x,
                rs: 2,
                cs: 1,
            },
            Par(1),
        );
        assert!(err.is_err());
    }
}
