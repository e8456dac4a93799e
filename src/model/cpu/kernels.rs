//! Slice-level CPU kernels of the inference path: Mish, the fused GroupNorm (+ FiLM) + Mish
//! passes, im2col and a checked wrapper around the `gemm` crate (the matrix product candle
//! itself uses). Activations are `(C, B, L)` row-major: channel-major with the batch inside, so a
//! convolution over the whole batch is one matrix product `(C_out, C_in k) x (C_in k, B L)`
//! whose result is already in that layout.
//!
//! Every kernel takes a thread budget [`Par`]: 1 runs on the calling thread, more splits the
//! work on rayon's global pool (and lets `gemm` use that many threads).

use candle_core::Result;
use rayon::prelude::*;

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

// ---------------------------------------------------------------------------------------------
// exp and Mish, compiled twice: with AVX2 + FMA (chosen at run time) and for the baseline CPU

/// Multiply-add: fused where the CPU has FMA, `a * b + c` otherwise (`f32::mul_add` without
/// hardware FMA is a slow library call).
pub(crate) trait MulAdd {
    fn mul_add(a: f32, b: f32, c: f32) -> f32;
}

/// Hardware FMA (only inside functions compiled with the `fma` target feature).
pub(crate) struct Fused;
/// Separate multiply and add.
pub(crate) struct Unfused;

impl MulAdd for Fused {
    #[inline(always)]
    fn mul_add(a: f32, b: f32, c: f32) -> f32 {
        a.mul_add(b, c)
    }
}

impl MulAdd for Unfused {
    #[inline(always)]
    fn mul_add(a: f32, b: f32, c: f32) -> f32 {
        a * b + c
    }
}

/// True if this CPU runs the AVX2 + FMA versions of the kernels.
pub(crate) fn has_avx2_fma() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// Defines `$name(args)`, which runs `$body::<Fused>(args)` compiled for AVX2 + FMA when the CPU
/// has them and `$body::<Unfused>(args)` otherwise. `$body` must be `#[inline(always)]`.
macro_rules! dispatch_avx2_fma {
    ($(#[$m:meta])* $vis:vis fn $name:ident($($arg:ident: $ty:ty),* $(,)?) => $body:ident) => {
        $(#[$m])*
        $vis fn $name($($arg: $ty),*) {
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx2,fma")]
                unsafe fn avx2_fma($($arg: $ty),*) {
                    $body::<Fused>($($arg),*)
                }
                if has_avx2_fma() {
                    // SAFETY: the CPU has AVX2 and FMA (checked just above), the only
                    // requirement of a `target_feature` function.
                    unsafe { avx2_fma($($arg),*) };
                    return;
                }
            }
            $body::<Unfused>($($arg),*)
        }
    };
}

/// `e^x` for `x` in [-87, 88] to about 2 ulp (Cephes' `expf` polynomial), branch-free so that
/// loops over it vectorise. Inputs outside the range are clamped.
#[inline(always)]
fn exp_f32<M: MulAdd>(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    // ln 2 split in a part exact in f32 and the rest (Cody-Waite).
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    // Adding and subtracting 1.5 * 2^23 rounds to the nearest integer.
    const ROUND: f32 = 12_582_912.0;
    let x = if x < -87.0 { -87.0 } else { x };
    let x = if x > 88.0 { 88.0 } else { x };
    let n = M::mul_add(x, LOG2E, ROUND) - ROUND;
    let r = M::mul_add(n, -LN2_LO, M::mul_add(n, -LN2_HI, x));
    let p = M::mul_add(1.987_569_1e-4, r, 1.398_199_9e-3);
    let p = M::mul_add(p, r, 8.333_452e-3);
    let p = M::mul_add(p, r, 4.166_579_6e-2);
    let p = M::mul_add(p, r, 1.666_666_5e-1);
    let p = M::mul_add(p, r, 0.5);
    let e_r = M::mul_add(p, r * r, r) + 1.0;
    // 2^n by building the exponent bits; n is in [-126, 127].
    let scale = f32::from_bits(((n as i32 + 127) as u32) << 23);
    e_r * scale
}

/// Mish `x tanh(softplus(x))` with one exponential: with `n = e^x`,
/// `tanh(ln(1 + n)) = n (n + 2) / (n (n + 2) + 2)`. For x >= 20 the ratio is 1 in f32 (as
/// PyTorch's softplus threshold of 20 gives); very negative x give `x e^x`, about 0.
#[inline(always)]
fn mish_f32<M: MulAdd>(x: f32) -> f32 {
    let n = exp_f32::<M>(if x < 20.0 { x } else { 20.0 });
    let q = n * (n + 2.0);
    x * (q / (q + 2.0))
}

#[inline(always)]
fn mish_slice<M: MulAdd>(xs: &mut [f32]) {
    for x in xs {
        *x = mish_f32::<M>(*x);
    }
}

dispatch_avx2_fma! {
    /// Mish in place, elementwise.
    pub(crate) fn mish_inplace(xs: &mut [f32]) => mish_slice
}

/// The derivative of Mish: with `n = e^x`, `r = tanh(softplus(x)) = q / (q + 2)`,
/// `q = n (n + 2)`: `mish'(x) = r + x (1 - r^2) sigmoid(x)`, where `1 - r = 2 / (q + 2)` is
/// computed directly (no cancellation) and `sigmoid(x) = n / (n + 1)`; 1 for x >= 20.
#[inline(always)]
fn mish_grad_f32<M: MulAdd>(x: f32) -> f32 {
    let n = exp_f32::<M>(if x < 20.0 { x } else { 20.0 });
    let q = n * (n + 2.0);
    let inv = 1.0 / (q + 2.0);
    let r = q * inv;
    let one_minus_r = 2.0 * inv;
    // Above 20 the x sech^2 term is below 1e-15 (and x sech^2 of the clamped n would not be).
    let sech2 = if x < 20.0 {
        one_minus_r * (1.0 + r)
    } else {
        0.0
    };
    M::mul_add(x * sech2, n / (n + 1.0), r)
}

#[inline(always)]
fn mish_grad_slice<M: MulAdd>(xs: &mut [f32]) {
    for x in xs {
        *x = mish_grad_f32::<M>(*x);
    }
}

dispatch_avx2_fma! {
    /// The derivative of Mish in place, elementwise.
    pub(crate) fn mish_grad_inplace(xs: &mut [f32]) => mish_grad_slice
}

/// Sum with 8 independent accumulators, so that the loop vectorises.
#[inline(always)]
fn sum_f32(xs: &[f32], shift: f32, square: bool) -> f32 {
    let mut acc = [0f32; 8];
    let chunks = xs.chunks_exact(8);
    let rest = chunks.remainder();
    for c in chunks {
        for (a, v) in acc.iter_mut().zip(c) {
            let d = v - shift;
            *a += if square { d * d } else { d };
        }
    }
    let mut total = acc.iter().sum::<f32>();
    for v in rest {
        let d = v - shift;
        total += if square { d * d } else { d };
    }
    total
}

// ---------------------------------------------------------------------------------------------
// GroupNorm + Mish + FiLM

/// GroupNorm parameters and the bias of the convolution before it (added here, not by the
/// convolution).
#[derive(Debug, Clone, Copy)]
pub(crate) struct NormParams<'a> {
    pub(crate) groups: usize,
    /// (C,) the preceding convolution's bias.
    pub(crate) conv_bias: &'a [f32],
    /// (C,) GroupNorm weight.
    pub(crate) gamma: &'a [f32],
    /// (C,) GroupNorm bias.
    pub(crate) beta: &'a [f32],
    pub(crate) eps: f32,
}

/// FiLM applied after the GroupNorm and Mish (as LeRobot's residual block does after its
/// first `Conv1dBlock`), per (sample, channel).
#[derive(Debug, Clone, Copy)]
pub(crate) enum Film<'a> {
    /// None (the final block).
    None,
    /// (B, C): `h + bias`.
    Bias(&'a [f32]),
    /// (B, 2C): `[scale (C), bias (C)]` per row, `scale h + bias`.
    ScaleBias(&'a [f32]),
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

/// Statistics of one group of one sample: `rows` yields each channel's row of L values with
/// its conv bias. Returns the mean of `v + bias` and `1 / sqrt(var + eps)` (two passes: the
/// mean, then the squared deviations from it).
#[inline(always)]
fn group_stats<'a>(
    rows: impl Iterator<Item = (&'a [f32], f32)> + Clone,
    count: usize,
    eps: f32,
) -> (f32, f32) {
    let mut sum = 0f64;
    for (row, bias) in rows.clone() {
        sum += f64::from(sum_f32(row, 0.0, false)) + f64::from(bias) * row.len() as f64;
    }
    let mean = (sum / count as f64) as f32;
    let mut sq = 0f64;
    for (row, bias) in rows {
        sq += f64::from(sum_f32(row, mean - bias, true));
    }
    let var = (sq / count as f64) as f32;
    (mean, 1.0 / (var + eps).sqrt())
}

/// Checks the parameter lengths against the activation.
fn check_norm(d: Dims, p: &NormParams, film: Film) -> Result<()> {
    let c = d.c;
    if p.groups == 0 || c % p.groups != 0 {
        candle_core::bail!("group norm: {} groups do not divide {c} channels", p.groups);
    }
    if p.conv_bias.len() != c || p.gamma.len() != c || p.beta.len() != c {
        candle_core::bail!(
            "group norm: parameters of {} / {} / {} values for {c} channels",
            p.conv_bias.len(),
            p.gamma.len(),
            p.beta.len()
        );
    }
    let (film_len, want) = match film {
        Film::None => (0, 0),
        Film::Bias(f) => (f.len(), d.b * c),
        Film::ScaleBias(f) => (f.len(), 2 * d.b * c),
    };
    if film_len != want {
        candle_core::bail!("FiLM: {film_len} values, expected {want} for {:?}", d);
    }
    Ok(())
}

/// One group `g` (channels `g cpg ..`, all samples) of [`norm_mish_film`].
#[inline(always)]
fn norm_mish_film_group<M: MulAdd>(hg: &mut [f32], g: usize, d: Dims, p: &NormParams, film: Film) {
    let (b, l, c) = (d.b, d.l, d.c);
    let cpg = c / p.groups;
    for bi in 0..b {
        let row = |i: usize| bi * l + i * b * l;
        let rows = (0..cpg).map(|i| {
            let r = row(i);
            (&hg[r..r + l], p.conv_bias[g * cpg + i])
        });
        let (mean, rstd) = group_stats(rows, cpg * l, p.eps);
        for i in 0..cpg {
            let ch = g * cpg + i;
            let (scale, shift) = match film {
                Film::None => (1.0, 0.0),
                Film::Bias(f) => (1.0, f[bi * c + ch]),
                Film::ScaleBias(f) => (f[bi * 2 * c + ch], f[bi * 2 * c + c + ch]),
            };
            // mish((v + bias - mean) rstd gamma + beta) scale + shift
            let centre = mean - p.conv_bias[ch];
            let a = p.gamma[ch] * rstd;
            let o = p.beta[ch];
            let r = row(i);
            for v in &mut hg[r..r + l] {
                *v = M::mul_add(mish_f32::<M>(M::mul_add(*v - centre, a, o)), scale, shift);
            }
        }
    }
}

dispatch_avx2_fma! {
    fn norm_mish_film_dispatch(hg: &mut [f32], g: usize, d: Dims, p: &NormParams, film: Film)
        => norm_mish_film_group
}

/// In place on `h` (C, B, L), the convolution output without its bias:
/// `h <- film(mish(GroupNorm(h + conv_bias)))`.
pub(crate) fn norm_mish_film(
    h: &mut [f32],
    d: Dims,
    p: &NormParams,
    film: Film,
    par: Par,
) -> Result<()> {
    check_norm(d, p, film)?;
    if h.len() != d.len() {
        candle_core::bail!("group norm: {} values for {:?}", h.len(), d);
    }
    let chunk = d.c / p.groups * d.b * d.l;
    for_each_chunk(h, chunk, par, |g, hg| {
        norm_mish_film_dispatch(hg, g, d, p, film)
    });
    Ok(())
}

/// One group `g` of [`norm_mish_add`].
#[inline(always)]
fn norm_mish_add_group<M: MulAdd>(
    hg: &[f32],
    og: &mut [f32],
    g: usize,
    d: Dims,
    p: &NormParams,
    extra_bias: Option<&[f32]>,
) {
    let (b, l) = (d.b, d.l);
    let cpg = d.c / p.groups;
    for bi in 0..b {
        let row = |i: usize| bi * l + i * b * l;
        let rows = (0..cpg).map(|i| {
            let r = row(i);
            (&hg[r..r + l], p.conv_bias[g * cpg + i])
        });
        let (mean, rstd) = group_stats(rows, cpg * l, p.eps);
        for i in 0..cpg {
            let ch = g * cpg + i;
            let centre = mean - p.conv_bias[ch];
            let a = p.gamma[ch] * rstd;
            let o = p.beta[ch];
            let e = extra_bias.map_or(0.0, |e| e[ch]);
            let r = row(i);
            for (y, v) in og[r..r + l].iter_mut().zip(&hg[r..r + l]) {
                *y += mish_f32::<M>(M::mul_add(*v - centre, a, o)) + e;
            }
        }
    }
}

dispatch_avx2_fma! {
    fn norm_mish_add_dispatch(
        hg: &[f32],
        og: &mut [f32],
        g: usize,
        d: Dims,
        p: &NormParams,
        extra_bias: Option<&[f32]>,
    ) => norm_mish_add_group
}

/// `out (C, B, L) += mish(GroupNorm(h + conv_bias)) + extra_bias[c]`: the second half of a
/// residual block, `out` holding the residual branch.
pub(crate) fn norm_mish_add(
    h: &[f32],
    d: Dims,
    p: &NormParams,
    out: &mut [f32],
    extra_bias: Option<&[f32]>,
    par: Par,
) -> Result<()> {
    check_norm(d, p, Film::None)?;
    if h.len() != d.len() || out.len() != d.len() {
        candle_core::bail!(
            "group norm: {} and {} values for {:?}",
            h.len(),
            out.len(),
            d
        );
    }
    if extra_bias.is_some_and(|e| e.len() != d.c) {
        candle_core::bail!("residual bias: expected {} values", d.c);
    }
    let chunk = d.c / p.groups * d.b * d.l;
    if chunk == 0 {
        return Ok(());
    }
    let body = |g: usize, (hg, og): (&[f32], &mut [f32])| {
        norm_mish_add_dispatch(hg, og, g, d, p, extra_bias)
    };
    if par.parallel() {
        h.par_chunks(chunk)
            .zip(out.par_chunks_mut(chunk))
            .enumerate()
            .for_each(|(g, pair)| body(g, pair));
    } else {
        h.chunks(chunk)
            .zip(out.chunks_mut(chunk))
            .enumerate()
            .for_each(|(g, pair)| body(g, pair));
    }
    Ok(())
}

/// `x (C, B, L) += bias[c]`.
pub(crate) fn add_channel_bias(x: &mut [f32], d: Dims, bias: &[f32]) -> Result<()> {
    if x.len() != d.len() || bias.len() != d.c {
        candle_core::bail!(
            "bias: {} values for {:?}, bias of {}",
            x.len(),
            d,
            bias.len()
        );
    }
    let row = d.b * d.l;
    for (xc, bc) in x.chunks_mut(row.max(1)).zip(bias) {
        for v in xc {
            *v += bc;
        }
    }
    Ok(())
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
    for_each_chunk(cols, k * b * l_out, par, |ci, out| {
        for j in 0..k {
            for bi in 0..b {
                let src = &x[(ci * b + bi) * l..(ci * b + bi + 1) * l];
                let dst = &mut out[(j * b + bi) * l_out..(j * b + bi + 1) * l_out];
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
mod tests {
    use super::*;

    fn lcg(n: usize, seed: u64) -> Vec<f32> {
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

    #[test]
    fn exp_and_mish_match_libm() {
        let mut worst_exp = 0f64;
        let mut x = -87.0f32;
        while x < 88.0 {
            let want = f64::from(x).exp();
            let rel = ((f64::from(exp_f32::<Unfused>(x)) - want) / want).abs();
            worst_exp = worst_exp.max(rel);
            x += 0.0137;
        }
        assert!(worst_exp < 3e-7, "exp relative error {worst_exp}");
        for x in [
            -1000.0f32, -100.0, -30.0, -5.0, -1.0, -1e-3, 0.0, 1e-3, 0.5, 3.0, 19.9, 20.0, 50.0,
            1e30,
        ] {
            let xd = f64::from(x);
            let want = xd * xd.exp().ln_1p().tanh();
            let mut v = [x];
            mish_inplace(&mut v);
            let got = f64::from(v[0]);
            assert_eq!(
                mish_f32::<Unfused>(x).to_bits(),
                mish_f32::<Unfused>(x).to_bits()
            );
            assert!(
                (got - want).abs() <= 1e-6 * want.abs().max(1e-30) + 1e-30,
                "mish({x}) = {got}, want {want}"
            );
        }
        assert!(mish_f32::<Unfused>(f32::NAN).is_nan());
        for x in [
            -100.0f32, -30.0, -5.0, -1.0, -0.1, 0.0, 0.3, 2.0, 7.0, 19.0, 25.0, 1e30,
        ] {
            let xd = f64::from(x);
            let sp = xd.exp().ln_1p();
            let sig = 1.0 / (1.0 + (-xd).exp());
            let want = sp.tanh() + xd * (1.0 - sp.tanh().powi(2)) * sig;
            let mut v = [x];
            mish_grad_inplace(&mut v);
            let want = if want.is_nan() { 1.0 } else { want };
            assert!(
                (f64::from(v[0]) - want).abs() <= 1e-6 * want.abs().max(1.0),
                "mish'({x}) = {}, want {want}",
                v[0]
            );
        }
    }

    /// Direct GroupNorm + FiLM + Mish on (C, B, L) in f64.
    fn reference(h: &[f32], d: Dims, p: &NormParams, film: Film, mish: bool) -> Vec<f64> {
        let cpg = d.c / p.groups;
        let mut out = vec![0f64; h.len()];
        let idx = |c: usize, b: usize, l: usize| (c * d.b + b) * d.l + l;
        for b in 0..d.b {
            for g in 0..p.groups {
                let chans = g * cpg..(g + 1) * cpg;
                let vals: Vec<f64> = chans
                    .clone()
                    .flat_map(|c| (0..d.l).map(move |l| (c, l)))
                    .map(|(c, l)| f64::from(h[idx(c, b, l)]) + f64::from(p.conv_bias[c]))
                    .collect();
                let mean = vals.iter().sum::<f64>() / vals.len() as f64;
                let var = vals.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / vals.len() as f64;
                for c in chans {
                    for l in 0..d.l {
                        let v = f64::from(h[idx(c, b, l)]) + f64::from(p.conv_bias[c]);
                        let mut y = (v - mean) / (var + f64::from(p.eps)).sqrt()
                            * f64::from(p.gamma[c])
                            + f64::from(p.beta[c]);
                        if mish {
                            y *= y.exp().ln_1p().tanh();
                        }
                        y = match film {
                            Film::None => y,
                            Film::Bias(f) => y + f64::from(f[b * d.c + c]),
                            Film::ScaleBias(f) => {
                                y * f64::from(f[b * 2 * d.c + c])
                                    + f64::from(f[b * 2 * d.c + d.c + c])
                            }
                        };
                        out[idx(c, b, l)] = y;
                    }
                }
            }
        }
        out
    }

    #[test]
    fn fused_norm_matches_the_direct_formula() {
        let d = Dims { c: 8, b: 3, l: 5 };
        let h = lcg(d.len(), 1);
        let bias = lcg(8, 2);
        let gamma: Vec<f32> = lcg(8, 3).iter().map(|v| 1.0 + 0.3 * v).collect();
        let beta = lcg(8, 4);
        let p = NormParams {
            groups: 2,
            conv_bias: &bias,
            gamma: &gamma,
            beta: &beta,
            eps: 1e-5,
        };
        let sb = lcg(2 * 8 * 3, 5);
        let fb = lcg(8 * 3, 6);
        for par in [Par(1), Par(2)] {
            for film in [Film::None, Film::Bias(&fb), Film::ScaleBias(&sb)] {
                let mut got = h.clone();
                norm_mish_film(&mut got, d, &p, film, par).unwrap();
                let want = reference(&h, d, &p, film, true);
                for (g, w) in got.iter().zip(&want) {
                    assert!(
                        (f64::from(*g) - w).abs() < 2e-6 * (1.0 + w.abs()),
                        "{g} vs {w}"
                    );
                }
            }
            let resid = lcg(d.len(), 7);
            let extra = lcg(8, 8);
            let mut out = resid.clone();
            norm_mish_add(&h, d, &p, &mut out, Some(&extra), par).unwrap();
            let want = reference(&h, d, &p, Film::None, true);
            for (i, (g, w)) in out.iter().zip(&want).enumerate() {
                let w = w + f64::from(resid[i]) + f64::from(extra[i / (d.b * d.l)]);
                assert!(
                    (f64::from(*g) - w).abs() < 2e-6 * (1.0 + w.abs()),
                    "{g} vs {w}"
                );
            }
        }
        // A large common offset with a small spread keeps its precision (centring first).
        let offset: Vec<f32> = h.iter().map(|v| 1000.0 + 0.01 * v).collect();
        let mut got = offset.clone();
        norm_mish_film(&mut got, d, &p, Film::None, Par(1)).unwrap();
        let want = reference(&offset, d, &p, Film::None, true);
        for (g, w) in got.iter().zip(&want) {
            assert!((f64::from(*g) - w).abs() < 2e-3, "{g} vs {w}");
        }
    }

    #[test]
    fn im2col_matmul_is_a_convolution() {
        for (c_in, c_out, b, l, k, padding, stride) in [
            (3, 4, 2, 7, 5, 2, 1),
            (4, 2, 3, 8, 3, 1, 2),
            (2, 3, 1, 4, 5, 2, 1),
            (3, 3, 2, 9, 3, 1, 2),
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

#[cfg(test)]
mod microbench {
    use super::*;
    use std::time::Instant;

    fn best<F: FnMut()>(mut f: F) -> f64 {
        let mut b = f64::INFINITY;
        for _ in 0..30 {
            let t = Instant::now();
            f();
            b = b.min(t.elapsed().as_secs_f64());
        }
        b
    }

    #[test]
    #[ignore]
    fn shapes() {
        for &(m, n, k) in &[
            (32usize, 1024usize, 160usize),
            (32, 512, 640),
            (64, 512, 320),
            (128, 256, 640),
            (64, 256, 1280),
            (32, 4096, 160),
            (128, 1024, 640),
            (1024, 1024, 1024),
        ] {
            let a = vec![0.5f32; m * k];
            let bm = vec![0.25f32; k * n];
            let mut c = vec![0f32; m * n];
            for par in [Par(1), Par(2)] {
                let t = best(|| {
                    matmul(
                        (m, n, k),
                        &mut c,
                        (n, 1),
                        false,
                        Mat {
                            data: &a,
                            rs: k,
                            cs: 1,
                        },
                        Mat {
                            data: &bm,
                            rs: n,
                            cs: 1,
                        },
                        par,
                    )
                    .unwrap()
                });
                println!(
                    "gemm {m}x{n}x{k} par {}: {:.1} us, {:.1} GFLOP/s",
                    par.0,
                    t * 1e6,
                    2.0 * (m * n * k) as f64 / t / 1e9
                );
            }
        }
        let mut x: Vec<f32> = (0..32768).map(|i| (i % 17) as f32 * 0.3 - 2.0).collect();
        let t = best(|| mish_inplace(&mut x));
        println!(
            "mish 32768: {:.1} us ({:.2} ns/elem)",
            t * 1e6,
            t * 1e9 / 32768.0
        );
        let d = Dims {
            c: 32,
            b: 32,
            l: 32,
        };
        let bias = vec![0.1f32; 32];
        let gamma = vec![1.0f32; 32];
        let p = NormParams {
            groups: 8,
            conv_bias: &bias,
            gamma: &gamma,
            beta: &bias,
            eps: 1e-5,
        };
        let film = vec![0.5f32; 2 * 32 * 32];
        let t = best(|| norm_mish_film(&mut x, d, &p, Film::ScaleBias(&film), Par(1)).unwrap());
        println!("norm_mish_film 32x32x32: {:.1} us", t * 1e6);
        let xx = x.clone();
        let g = ConvGeom {
            k: 5,
            padding: 2,
            stride: 1,
        };
        let mut cols = vec![0f32; 32 * 5 * 1024];
        let t = best(|| im2col(&xx, d, g, &mut cols, Par(1)).unwrap());
        println!("im2col 32x32x32 k5: {:.1} us", t * 1e6);
    }
}
