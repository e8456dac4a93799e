//! CPU custom ops with a backward pass, for the differentiable (training) path: each replaces a
//! chain of candle ops (and its chain of backward ops) by one fused pass forward and one or two
//! backward. Only f32 on the CPU; `ops.rs` falls back to candle's elementwise ops elsewhere.
//!
//! - [`MishOp`]: Mish; backward `grad * mish'(x)` ([`MishGradOp`]).
//! - [`UnfoldOp`]: im2col of a 1-D convolution, `(B, C, L) -> (C k, B L_out)`; backward col2im.
//! - [`GroupNormOp`]: GroupNorm with affine weight and bias; backward to all three.

use candle_core::{CpuStorage, CustomOp1, CustomOp3, Layout, Result, Shape, Tensor};

use super::cpu::kernels::{self, ConvGeom};
use super::cpu::CpuSlice;

/// The contiguous f32 values of a CPU storage.
fn cpu_f32<'a>(storage: &'a CpuStorage, layout: &Layout, op: &str) -> Result<&'a [f32]> {
    let (CpuStorage::F32(v), Some((start, end))) = (storage, layout.contiguous_offsets()) else {
        candle_core::bail!("{op}: needs a contiguous f32 tensor");
    };
    Ok(&v[start..end])
}

/// Mish as one op (the fused kernel of `cpu::kernels`); backward `grad * mish'(x)`.
pub(crate) struct MishOp;

impl CustomOp1 for MishOp {
    fn name(&self) -> &'static str {
        "mish"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        let mut out = cpu_f32(storage, layout, "mish")?.to_vec();
        kernels::mish_inplace(&mut out);
        Ok((CpuStorage::F32(out), layout.shape().clone()))
    }

    fn bwd(&self, arg: &Tensor, _res: &Tensor, grad_res: &Tensor) -> Result<Option<Tensor>> {
        let slope = arg.contiguous()?.apply_op1_no_bwd(&MishGradOp)?;
        Ok(Some(grad_res.mul(&slope)?))
    }
}

/// `mish'(x)`, elementwise (no backward of its own).
pub(crate) struct MishGradOp;

impl CustomOp1 for MishGradOp {
    fn name(&self) -> &'static str {
        "mish-grad"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        let mut out = cpu_f32(storage, layout, "mish-grad")?.to_vec();
        kernels::mish_grad_inplace(&mut out);
        Ok((CpuStorage::F32(out), layout.shape().clone()))
    }
}

/// im2col: `x (B, C, L)` -> columns `(C k, B L_out)`, row `c k + j`, column `b L_out + o`
/// holding `x[b, c, o stride + j - padding]` (0 outside). Backward: col2im, each column entry
/// added back to the input position it came from.
pub(crate) struct UnfoldOp(pub(crate) ConvGeom);

impl UnfoldOp {
    fn sizes(&self, dims: &[usize]) -> Result<(usize, usize, usize, usize)> {
        let &[b, c, l] = dims else {
            candle_core::bail!("unfold: expected (B, C, L), found {dims:?}");
        };
        let Some(l_out) = self.0.l_out(l) else {
            candle_core::bail!("unfold: kernel {:?} does not fit length {l}", self.0);
        };
        Ok((b, c, l, l_out))
    }
}

impl CustomOp1 for UnfoldOp {
    fn name(&self) -> &'static str {
        "unfold1d"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        let x = cpu_f32(storage, layout, "unfold")?;
        let (b, c, l, l_out) = self.sizes(layout.dims())?;
        let ConvGeom { k, padding, stride } = self.0;
        let mut cols = vec![0f32; c * k * b * l_out];
        for ci in 0..c {
            for j in 0..k {
                for bi in 0..b {
                    let src = &x[(bi * c + ci) * l..(bi * c + ci + 1) * l];
                    let row = (ci * k + j) * b * l_out + bi * l_out;
                    for (o, v) in cols[row..row + l_out].iter_mut().enumerate() {
                        let pos = o * stride + j;
                        if pos >= padding && pos - padding < l {
                            *v = src[pos - padding];
                        }
                    }
                }
            }
        }
        Ok((CpuStorage::F32(cols), Shape::from((c * k, b * l_out))))
    }

    fn bwd(&self, arg: &Tensor, _res: &Tensor, grad_res: &Tensor) -> Result<Option<Tensor>> {
        let (b, c, l, l_out) = self.sizes(arg.dims())?;
        let ConvGeom { k, padding, stride } = self.0;
        let grad = grad_res.contiguous()?;
        let g = CpuSlice::new(&grad, "unfold gradient")?;
        let g = g.get();
        let mut dx = vec![0f32; b * c * l];
        for ci in 0..c {
            for j in 0..k {
                for bi in 0..b {
                    let dst = &mut dx[(bi * c + ci) * l..(bi * c + ci + 1) * l];
                    let row = (ci * k + j) * b * l_out + bi * l_out;
                    for (o, v) in g[row..row + l_out].iter().enumerate() {
                        let pos = o * stride + j;
                        if pos >= padding && pos - padding < l {
                            dst[pos - padding] += v;
                        }
                    }
                }
            }
        }
        Ok(Some(Tensor::from_vec(dx, (b, c, l), arg.device())?))
    }
}

/// GroupNorm over `x (B, C, L)` (contiguous) with weight and bias `(C,)`: per sample and group
/// of `C / groups` channels, `(x - mean) / sqrt(var + eps) * weight + bias` (biased variance,
/// as PyTorch).
pub(crate) struct GroupNormOp {
    pub(crate) groups: usize,
    pub(crate) eps: f32,
}

/// Per (sample, group) block of `n` contiguous values: mean and 1/sqrt(var + eps).
fn block_stats(block: &[f32], eps: f32) -> (f32, f32) {
    let n = block.len() as f64;
    let mean = block.iter().map(|&v| f64::from(v)).sum::<f64>() / n;
    let var = block
        .iter()
        .map(|&v| (f64::from(v) - mean).powi(2))
        .sum::<f64>()
        / n;
    (mean as f32, (1.0 / (var + f64::from(eps)).sqrt()) as f32)
}

impl GroupNormOp {
    fn sizes(&self, dims: &[usize], gamma: usize, beta: usize) -> Result<(usize, usize, usize)> {
        let &[b, c, l] = dims else {
            candle_core::bail!("group norm: expected (B, C, L), found {dims:?}");
        };
        if self.groups == 0 || c % self.groups != 0 || gamma != c || beta != c {
            candle_core::bail!(
                "group norm: {} groups, {c} channels, weight {gamma}, bias {beta}",
                self.groups
            );
        }
        Ok((b, c, l))
    }
}

impl CustomOp3 for GroupNormOp {
    fn name(&self) -> &'static str {
        "group-norm"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let x = cpu_f32(s1, l1, "group norm input")?;
        let gamma = cpu_f32(s2, l2, "group norm weight")?;
        let beta = cpu_f32(s3, l3, "group norm bias")?;
        let (_, c, l) = self.sizes(l1.dims(), gamma.len(), beta.len())?;
        let cpg = c / self.groups;
        let mut y = vec![0f32; x.len()];
        for (i, (xb, yb)) in x.chunks(cpg * l).zip(y.chunks_mut(cpg * l)).enumerate() {
            let (mean, rstd) = block_stats(xb, self.eps);
            let g0 = (i % self.groups) * cpg;
            for (ch, (xr, yr)) in xb.chunks(l).zip(yb.chunks_mut(l)).enumerate() {
                let a = gamma[g0 + ch] * rstd;
                let o = beta[g0 + ch];
                for (v, out) in xr.iter().zip(yr) {
                    *out = (v - mean) * a + o;
                }
            }
        }
        Ok((CpuStorage::F32(y), l1.shape().clone()))
    }

    fn bwd(
        &self,
        arg1: &Tensor,
        arg2: &Tensor,
        arg3: &Tensor,
        _res: &Tensor,
        grad_res: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let (_, c, l) = self.sizes(arg1.dims(), arg2.elem_count(), arg3.elem_count())?;
        let cpg = c / self.groups;
        let (x, gamma, grad) = (
            arg1.contiguous()?,
            arg2.contiguous()?,
            grad_res.contiguous()?,
        );
        let (x, gamma, grad) = (
            CpuSlice::new(&x, "group norm input")?,
            CpuSlice::new(&gamma, "group norm weight")?,
            CpuSlice::new(&grad, "group norm gradient")?,
        );
        let (x, gamma, dy) = (x.get(), gamma.get(), grad.get());
        let mut dx = vec![0f32; x.len()];
        let mut dgamma = vec![0f64; c];
        let mut dbeta = vec![0f64; c];
        let n = (cpg * l) as f64;
        for (i, ((xb, dyb), dxb)) in x
            .chunks(cpg * l)
            .zip(dy.chunks(cpg * l))
            .zip(dx.chunks_mut(cpg * l))
            .enumerate()
        {
            let (mean, rstd) = block_stats(xb, self.eps);
            let g0 = (i % self.groups) * cpg;
            // mean over the block of dy gamma and of dy gamma xhat
            let (mut m1, mut m2) = (0f64, 0f64);
            for (ch, (xr, dyr)) in xb.chunks(l).zip(dyb.chunks(l)).enumerate() {
                let gm = f64::from(gamma[g0 + ch]);
                for (v, d) in xr.iter().zip(dyr) {
                    let xhat = f64::from((v - mean) * rstd);
                    let d = f64::from(*d);
                    m1 += d * gm;
                    m2 += d * gm * xhat;
                    dgamma[g0 + ch] += d * xhat;
                    dbeta[g0 + ch] += d;
                }
            }
            let (m1, m2) = (m1 / n, m2 / n);
            for (ch, ((xr, dyr), dxr)) in xb
                .chunks(l)
                .zip(dyb.chunks(l))
                .zip(dxb.chunks_mut(l))
                .enumerate()
            {
                let gm = f64::from(gamma[g0 + ch]);
                for ((v, d), out) in xr.iter().zip(dyr).zip(dxr) {
                    let xhat = f64::from((v - mean) * rstd);
                    *out = (f64::from(rstd) * (f64::from(*d) * gm - m1 - xhat * m2)) as f32;
                }
            }
        }
        let dev = arg1.device();
        let to_f32 = |v: Vec<f64>| v.into_iter().map(|x| x as f32).collect::<Vec<f32>>();
        Ok((
            Some(Tensor::from_vec(dx, arg1.shape(), dev)?),
            Some(Tensor::from_vec(to_f32(dgamma), arg2.shape(), dev)?),
            Some(Tensor::from_vec(to_f32(dbeta), arg3.shape(), dev)?),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::conv::unfold_generic;
    use crate::model::ops::group_norm_generic;
    use crate::model::test_util::max_diff;
    use candle_core::{Device, Var};

    fn var(shape: &[usize], offset: f32) -> Var {
        let t =
            (Tensor::randn(0f32, 1.0, shape, &Device::Cpu).unwrap() + f64::from(offset)).unwrap();
        Var::from_tensor(&t).unwrap()
    }

    #[test]
    fn group_norm_op_matches_candle_ops_and_gradients_at_batch_3() {
        let x = var(&[3, 8, 5], 2.0);
        let gamma = var(&[8], 1.0);
        let beta = var(&[8], 0.0);
        let w = Tensor::randn(0f32, 1.0, (3, 8, 5), &Device::Cpu).unwrap();
        let op = GroupNormOp {
            groups: 4,
            eps: 1e-5,
        };
        let fused = x
            .as_tensor()
            .apply_op3(gamma.as_tensor(), beta.as_tensor(), op)
            .unwrap();
        let generic =
            group_norm_generic(x.as_tensor(), gamma.as_tensor(), beta.as_tensor(), 4).unwrap();
        assert!(max_diff(&fused, &generic) < 1e-5);
        let gf = (fused * &w).unwrap().sum_all().unwrap().backward().unwrap();
        let gg = (generic * &w)
            .unwrap()
            .sum_all()
            .unwrap()
            .backward()
            .unwrap();
        for (name, v) in [("x", &x), ("gamma", &gamma), ("beta", &beta)] {
            let err = max_diff(gf.get(v).unwrap(), gg.get(v).unwrap());
            assert!(err < 1e-4, "{name}: {err}");
        }
    }

    #[test]
    fn unfold_op_matches_candle_ops_and_gradients_at_batch_3() {
        for (k, padding, stride, l) in [(5, 2, 1, 8), (3, 1, 2, 8), (3, 1, 2, 7), (1, 0, 1, 4)] {
            let x = var(&[3, 4, l], 0.0);
            let geom = ConvGeom { k, padding, stride };
            let l_out = geom.l_out(l).unwrap();
            let fused = x.as_tensor().apply_op1(UnfoldOp(geom)).unwrap();
            let generic = unfold_generic(x.as_tensor(), k, padding, stride, l_out).unwrap();
            assert_eq!(fused.dims(), generic.dims());
            assert_eq!(max_diff(&fused, &generic), 0.0);
            let w = Tensor::randn(0f32, 1.0, fused.dims(), &Device::Cpu).unwrap();
            let gf = (fused * &w).unwrap().sum_all().unwrap().backward().unwrap();
            let gg = (generic * &w)
                .unwrap()
                .sum_all()
                .unwrap()
                .backward()
                .unwrap();
            let err = max_diff(gf.get(&x).unwrap(), gg.get(&x).unwrap());
            assert!(err < 1e-5, "k {k} stride {stride}: {err}");
        }
    }
}
