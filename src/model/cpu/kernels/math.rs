//! The exponential, Mish and its derivative, compiled three times: for AVX-512, for AVX2 + FMA
//! (chosen at run time by `dispatch_simd!`) and for the baseline CPU.

/// Multiply-add: fused where the CPU has FMA, `a * b + c` otherwise (`f32::mul_add` without
/// hardware FMA is a slow library call).
pub(crate) trait MulAdd {
    fn mul_add(a: f32, b: f32, c: f32) -> f32;
}

/// Hardware FMA (only inside functions compiled with the `fma` target feature).
#[cfg(target_arch = "x86_64")]
pub(crate) struct Fused;
/// Separate multiply and add.
pub(crate) struct Unfused;

#[cfg(target_arch = "x86_64")]
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
#[cfg(target_arch = "x86_64")]
pub(crate) fn has_avx2_fma() -> bool {
    is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma")
}

/// True if this CPU runs the AVX-512 versions of the kernels.
#[cfg(target_arch = "x86_64")]
pub(crate) fn has_avx512() -> bool {
    is_x86_feature_detected!("avx512f") && is_x86_feature_detected!("avx512vl") && has_avx2_fma()
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
    let t = M::mul_add(x, LOG2E, ROUND);
    let n = t - ROUND;
    // n as an integer, read from t's low mantissa bits (t = 1.5 2^23 + n exactly): unlike
    // `n as i32` (saturating, NaN-aware) this vectorises.
    let n_int = (t.to_bits() as i32).wrapping_sub(ROUND.to_bits() as i32);
    let r = M::mul_add(n, -LN2_LO, M::mul_add(n, -LN2_HI, x));
    let p = M::mul_add(1.987_569_1e-4, r, 1.398_199_9e-3);
    let p = M::mul_add(p, r, 8.333_452e-3);
    let p = M::mul_add(p, r, 4.166_579_6e-2);
    let p = M::mul_add(p, r, 1.666_666_5e-1);
    let p = M::mul_add(p, r, 0.5);
    let e_r = M::mul_add(p, r * r, r) + 1.0;
    // 2^n by building the exponent bits; n is in [-126, 127] (garbage only for a NaN x,
    // whose result is NaN anyway).
    let scale = f32::from_bits((n_int.wrapping_add(127) as u32) << 23);
    e_r * scale
}

/// Mish `x tanh(softplus(x))` with one exponential: with `n = e^x`,
/// `tanh(ln(1 + n)) = n (n + 2) / (n (n + 2) + 2)`. For x >= 20 the ratio is 1 in f32 (as
/// PyTorch's softplus threshold of 20 gives); very negative x give `x e^x`, about 0.
#[inline(always)]
pub(super) fn mish_f32<M: MulAdd>(x: f32) -> f32 {
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

dispatch_simd! {
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

dispatch_simd! {
    /// The derivative of Mish in place, elementwise.
    pub(crate) fn mish_grad_inplace(xs: &mut [f32]) => mish_grad_slice
}

/// Sum with 8 independent accumulators, so that the loop vectorises.
#[inline(always)]
pub(super) fn sum_f32(xs: &[f32], shift: f32, square: bool) -> f32 {
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

#[cfg(test)]
mod tests {
    use super::*;

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
            let mut v = [x, x];
            mish_inplace(&mut v[..1]);
            // The baseline (no FMA) copy too, whatever this CPU runs.
            mish_slice::<Unfused>(&mut v[1..]);
            assert!((v[0] - v[1]).abs() <= 1e-6 * v[1].abs().max(1e-30));
            let got = f64::from(v[0]);
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
}
