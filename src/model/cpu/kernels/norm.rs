//! The fused passes after a convolution: conv bias + GroupNorm + Mish (+ FiLM), and conv bias
//! + GroupNorm + Mish added to the residual branch.

use candle_core::Result;
use rayon::prelude::*;

#[cfg(target_arch = "x86_64")]
use super::math::{has_avx2_fma, has_avx512, Fused};
use super::math::{mish_f32, sum_f32, MulAdd, Unfused};
use super::{for_each_chunk, Dims, Par};

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

dispatch_simd! {
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

dispatch_simd! {
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

#[cfg(test)]
mod tests {
    use super::super::test_data::lcg;
    use super::*;

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
                // The baseline (no FMA) copy of the kernel too, whatever this CPU runs.
                let mut baseline = h.clone();
                let chunk = d.len() / p.groups;
                for (g, hg) in baseline.chunks_mut(chunk).enumerate() {
                    norm_mish_film_group::<Unfused>(hg, g, d, &p, film);
                }
                for ((g, b), w) in got.iter().zip(&baseline).zip(&want) {
                    for v in [g, b] {
                        assert!(
                            (f64::from(*v) - w).abs() < 2e-6 * (1.0 + w.abs()),
                            "{v} vs {w}"
                        );
                    }
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
}
