//! The U-Net's convolutions: `nn.Conv1d` and the upsample `nn.ConvTranspose1d(c, c, 4, 2, 1)`,
//! each with a differentiable candle-op forward and a fused CPU-kernel forward (`forward_cpu`).
//!
//! Gradients and candle-core 0.11.1: its conv1d backward computes the input gradient with
//! `conv_transpose1d`, which is wrong for batch > 1 with padding 0, overflows (a panic in debug
//! builds) when `l_in - 1 < 2 padding`, and `conv_transpose1d` itself has no backward. So when a
//! convolution's input or weight tracks gradients it is unfold + one matmul here
//! ([`conv1d_unfold`]), the upsample is a conv1d (polyphase), and 1x1 convolutions a matmul.

use candle_core::{Result, Tensor};
use candle_nn::VarBuilder;

use super::cpu::kernels::{self, ConvGeom, Mat};
use super::cpu::{Act, CpuSlice, Dims, Par};
use super::ops::OpImpl;
use super::train_ops::UnfoldOp;

/// `nn.Conv1d` with bias. Weight `(out, in, k)` and bias `(out,)` under `weight` / `bias`.
///
/// A 1x1 convolution (k = 1, stride 1, no padding) is computed as a matrix product over the
/// channels: exact, faster, and it keeps candle's conv1d backward off its input-gradient path
/// (`conv_transpose1d` with padding 0, wrong for batch > 1 in candle-core 0.11.1).
#[derive(Debug, Clone)]
pub(crate) struct Conv1d {
    weight: Tensor,
    bias: Tensor,
    padding: usize,
    stride: usize,
}

impl Conv1d {
    /// Loads `weight (out_channels, in_channels, kernel_size)` and `bias (out_channels,)`.
    pub(crate) fn new(
        in_channels: usize,
        out_channels: usize,
        kernel_size: usize,
        stride: usize,
        padding: usize,
        vb: VarBuilder,
    ) -> Result<Self> {
        let conv = candle_nn::conv1d(
            in_channels,
            out_channels,
            kernel_size,
            candle_nn::Conv1dConfig {
                padding,
                stride,
                ..Default::default()
            },
            vb,
        )?;
        let bias = match conv.bias() {
            Some(b) => b.reshape((1, out_channels, 1))?,
            None => candle_core::bail!("conv1d without bias"),
        };
        Ok(Self {
            weight: conv.weight().clone(),
            bias,
            padding,
            stride,
        })
    }

    /// Calls `f` on every parameter tensor.
    pub(crate) fn visit(&self, f: &mut dyn FnMut(&Tensor)) {
        f(&self.weight);
        f(&self.bias);
    }

    /// Bias `(1, out, 1)`.
    pub(crate) fn bias(&self) -> &Tensor {
        &self.bias
    }

    /// The CPU kernels' forward: x (in, B, L) -> (out, B, L_out), with the bias added if
    /// `with_bias` (the blocks add it inside their GroupNorm pass instead).
    pub(crate) fn forward_cpu(&self, x: &Act, with_bias: bool, par: Par) -> Result<Act> {
        let (c_out, c_in, k) = self.weight.dims3()?;
        if x.d.c != c_in {
            candle_core::bail!(
                "conv1d: input {:?} for weight {:?}",
                x.d,
                self.weight.dims()
            );
        }
        let geom = ConvGeom {
            k,
            padding: self.padding,
            stride: self.stride,
        };
        let Some(l_out) = geom.l_out(x.d.l) else {
            candle_core::bail!("conv1d: kernel {geom:?} does not fit length {}", x.d.l);
        };
        let w = CpuSlice::new(&self.weight, "conv1d weight")?;
        let mut out = Act::zeros(Dims {
            c: c_out,
            b: x.d.b,
            l: l_out,
        });
        let n = x.d.b * l_out;
        let lhs = Mat {
            data: w.get(),
            rs: c_in * k,
            cs: 1,
        };
        if self.is_pointwise() {
            let rhs = Mat {
                data: &x.data,
                rs: n,
                cs: 1,
            };
            kernels::matmul(
                (c_out, n, c_in),
                &mut out.data,
                (n, 1),
                false,
                lhs,
                rhs,
                par,
            )?;
        } else {
            let mut cols = vec![0.0; c_in * k * n];
            kernels::im2col(&x.data, x.d, geom, &mut cols, par)?;
            let rhs = Mat {
                data: &cols,
                rs: n,
                cs: 1,
            };
            kernels::matmul(
                (c_out, n, c_in * k),
                &mut out.data,
                (n, 1),
                false,
                lhs,
                rhs,
                par,
            )?;
        }
        if with_bias {
            let bias = CpuSlice::new(&self.bias, "conv1d bias")?;
            kernels::add_channel_bias(&mut out.data, out.d, bias.get())?;
        }
        Ok(out)
    }

    fn is_pointwise(&self) -> bool {
        self.weight.dim(2).ok() == Some(1) && self.padding == 0 && self.stride == 1
    }
}

impl Conv1d {
    /// x: (B, in, L) -> (B, out, (L + 2 padding - k) / stride + 1)
    pub(crate) fn forward(&self, x: &Tensor, imp: OpImpl) -> Result<Tensor> {
        let y = if self.is_pointwise() {
            pointwise_conv(x, &self.weight)?
        } else {
            conv1d(x, &self.weight, self.padding, self.stride, imp)?
        };
        y.broadcast_add(&self.bias)
    }
}

/// A 1x1 convolution without bias as one matrix product over the channels: x (B, in, L),
/// w (out, in, 1) -> (B, out, L), computed as `w (out, in) x (in, B L)`.
pub(crate) fn pointwise_conv(x: &Tensor, w: &Tensor) -> Result<Tensor> {
    let (b, c_in, l) = x.dims3()?;
    let (c_out, _, _) = w.dims3()?;
    // (in, B L)
    let cols = x.transpose(0, 1)?.contiguous()?.reshape((c_in, b * l))?;
    w.reshape((c_out, c_in))?
        .matmul(&cols)?
        .reshape((c_out, b, l))?
        .transpose(0, 1)
}

/// Cross-correlation without bias, as PyTorch's `conv1d`: x (B, in, L), w (out, in, k) ->
/// (B, out, L_out), `L_out = (L + 2 padding - k) / stride + 1`.
///
/// With gradients tracked (training) this is [`conv1d_unfold`]; otherwise candle's conv1d on
/// any device (whose forward is right, on the CPU and on CUDA; only its backward is not, see
/// the module docs).
pub(crate) fn conv1d(
    x: &Tensor,
    w: &Tensor,
    padding: usize,
    stride: usize,
    imp: OpImpl,
) -> Result<Tensor> {
    if x.track_op() || w.track_op() {
        conv1d_unfold(x, w, padding, stride, imp)
    } else {
        x.conv1d(w, padding, stride, 1, 1)
    }
}

/// [`conv1d`] as unfold + matmul, from differentiable ops whose backward is right for any batch:
/// the input's columns `(in k, B L_out)` (row `i k + j`, the weight's own layout: the
/// zero-padded input's `k` shifted, strided views) are multiplied by the weight `(out, in k)` in
/// one matrix product (not one per sample). With [`OpImpl::Native`] on the CPU the columns are
/// one op with its own backward ([`UnfoldOp`]); otherwise narrows and a stack.
pub(crate) fn conv1d_unfold(
    x: &Tensor,
    w: &Tensor,
    padding: usize,
    stride: usize,
    imp: OpImpl,
) -> Result<Tensor> {
    let (b, c_in, l) = x.dims3()?;
    let (c_out, c_in_w, k) = w.dims3()?;
    if c_in != c_in_w || stride == 0 || l + 2 * padding < k {
        candle_core::bail!(
            "conv1d: input {:?}, weight {:?}, padding {padding}, stride {stride} do not fit",
            x.dims(),
            w.dims()
        );
    }
    let l_out = (l + 2 * padding - k) / stride + 1;
    let cols = if imp.fused_cpu(x) {
        x.contiguous()?
            .apply_op1(UnfoldOp(ConvGeom { k, padding, stride }))?
    } else {
        unfold_generic(x, k, padding, stride, l_out)?
    };
    w.reshape((c_out, c_in * k))?
        .matmul(&cols)?
        .reshape((c_out, b, l_out))?
        .transpose(0, 1)
}

/// The columns of [`conv1d_unfold`] from candle ops: (in k, B L_out).
pub(crate) fn unfold_generic(
    x: &Tensor,
    k: usize,
    padding: usize,
    stride: usize,
    l_out: usize,
) -> Result<Tensor> {
    let (b, c_in, l) = x.dims3()?;
    // Every view j .. j + stride * l_out must fit: extra zeros on the right (never selected).
    let right = (k - 1 + stride * l_out).saturating_sub(l + 2 * padding) + padding;
    // (in, B, L + padding + right)
    let xp = x
        .transpose(0, 1)?
        .contiguous()?
        .pad_with_zeros(2, padding, right)?;
    let taps = (0..k)
        .map(|j| {
            let view = xp.narrow(2, j, stride * l_out)?;
            if stride == 1 {
                Ok(view)
            } else {
                view.reshape((c_in, b, l_out, stride))?
                    .narrow(3, 0, 1)?
                    .squeeze(3)
            }
        })
        .collect::<Result<Vec<_>>>()?;
    // (in, k, B, L_out) -> (in k, B L_out)
    Tensor::stack(&taps, 1)?.reshape((c_in * k, b * l_out))
}

/// `nn.ConvTranspose1d(c, c, 4, stride 2, padding 1)`, the U-Net's upsample: `(B, C, L) ->
/// (B, C, 2L)`. Weight `(in, out, k)` (PyTorch's layout for transposed convolutions).
///
/// Computed as an exact polyphase equivalent from differentiable ops, because candle-core
/// 0.11.1's `conv_transpose1d` has no backward (and is wrong for batch > 1 with padding 0).
/// With `y[o, 2l + k - 1] += x[i, l] w[i, o, k]`:
/// `y[2m] = x[m] w_1 + x[m-1] w_3` and `y[2m+1] = x[m+1] w_0 + x[m] w_2`, i.e. one conv1d
/// (kernel 3, padding 1) with `2C` output channels, kernel `[w_3, w_1, 0]` for the even phase
/// and `[0, w_2, w_0]` for the odd one, then the two phases interleaved.
#[derive(Debug, Clone)]
pub(crate) struct Upsample1d {
    weight: Tensor,
    bias: Tensor,
}

impl Upsample1d {
    const KERNEL: usize = 4;
    const STRIDE: usize = 2;
    const PADDING: usize = 1;

    /// Loads `weight (channels, channels, 4)` and `bias (channels,)`.
    pub(crate) fn new(channels: usize, vb: VarBuilder) -> Result<Self> {
        let conv = candle_nn::conv_transpose1d(
            channels,
            channels,
            Self::KERNEL,
            candle_nn::ConvTranspose1dConfig {
                padding: Self::PADDING,
                stride: Self::STRIDE,
                ..Default::default()
            },
            vb,
        )?;
        let bias = match conv.bias() {
            Some(b) => b.reshape((1, channels, 1))?,
            None => candle_core::bail!("conv_transpose1d without bias"),
        };
        Ok(Self {
            weight: conv.weight().clone(),
            bias,
        })
    }

    /// Calls `f` on every parameter tensor.
    pub(crate) fn visit(&self, f: &mut dyn FnMut(&Tensor)) {
        f(&self.weight);
        f(&self.bias);
    }

    /// The CPU kernels' forward: x (C, B, L) -> (C, B, 2L). The columns of the 3-tap conv
    /// `(3C, B L)` are multiplied by the even and the odd rows of the polyphase kernel, each
    /// product written with column stride 2 straight into its interleaved output positions.
    pub(crate) fn forward_cpu(&self, x: &Act, par: Par) -> Result<Act> {
        let (c_in, c_out, k) = self.weight.dims3()?;
        if x.d.c != c_in || k != Self::KERNEL {
            candle_core::bail!(
                "upsample: input {:?} for weight {:?}",
                x.d,
                self.weight.dims()
            );
        }
        let w = CpuSlice::new(&self.weight, "upsample weight")?;
        let w = w.get();
        // (2 C_out, 3 C_in), column ci * 3 + j: even rows [w3, w1, 0], odd rows [0, w2, w0].
        let mut poly = vec![0.0; 2 * c_out * 3 * c_in];
        for o in 0..c_out {
            for ci in 0..c_in {
                let tap = |j: usize| w[(ci * c_out + o) * Self::KERNEL + j];
                let even = (o * c_in + ci) * 3;
                poly[even] = tap(3);
                poly[even + 1] = tap(1);
                let odd = ((c_out + o) * c_in + ci) * 3;
                poly[odd + 1] = tap(2);
                poly[odd + 2] = tap(0);
            }
        }
        let geom = ConvGeom {
            k: 3,
            padding: 1,
            stride: 1,
        };
        let n = x.d.b * x.d.l;
        let mut out = Act::zeros(Dims {
            c: c_out,
            b: x.d.b,
            l: 2 * x.d.l,
        });
        kernels::with_columns(3 * c_in * n, |cols| -> Result<()> {
            kernels::im2col(&x.data, x.d, geom, cols, par)?;
            let rhs = Mat {
                data: cols,
                rs: n,
                cs: 1,
            };
            for phase in 0..2 {
                let lhs = Mat {
                    data: &poly[phase * c_out * 3 * c_in..],
                    rs: 3 * c_in,
                    cs: 1,
                };
                kernels::matmul(
                    (c_out, n, 3 * c_in),
                    &mut out.data[phase..],
                    (2 * n, 2),
                    false,
                    lhs,
                    rhs,
                    par,
                )?;
            }
            Ok(())
        })?;
        let bias = CpuSlice::new(&self.bias, "upsample bias")?;
        kernels::add_channel_bias(&mut out.data, out.d, bias.get())?;
        Ok(out)
    }

    /// The polyphase conv1d kernel `(2C, C, 3)`: rows `0..C` the even outputs, `C..2C` the odd
    /// ones. Built from the weight on every call (differentiable, and never stale when the
    /// weight is a training variable).
    pub(crate) fn polyphase_kernel(&self) -> Result<Tensor> {
        let (c_in, c_out, _) = self.weight.dims3()?;
        // (out, in, 4)
        let wt = self.weight.transpose(0, 1)?;
        let tap = |k: usize| wt.narrow(2, k, 1);
        let zero = Tensor::zeros((c_out, c_in, 1), self.weight.dtype(), self.weight.device())?;
        let even = Tensor::cat(&[&tap(3)?, &tap(1)?, &zero], 2)?;
        let odd = Tensor::cat(&[&zero, &tap(2)?, &tap(0)?], 2)?;
        Tensor::cat(&[&even, &odd], 0)
    }
}

impl Upsample1d {
    /// x: (B, C, L) -> (B, C, 2L)
    pub(crate) fn forward(&self, x: &Tensor, imp: OpImpl) -> Result<Tensor> {
        let (b, c, l) = x.dims3()?;
        // (B, 2C, L) -> (B, 2, C, L) -> (B, C, L, 2) -> (B, C, 2L)
        let phases = conv1d(x, &self.polyphase_kernel()?, 1, 1, imp)?;
        phases
            .reshape((b, 2, c, l))?
            .permute((0, 2, 3, 1))?
            .reshape((b, c, 2 * l))?
            .broadcast_add(&self.bias)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::test_util::max_diff;
    use candle_core::{DType, Device};

    #[test]
    fn unfold_conv_and_pointwise_conv_match_candle_conv1d_at_batch_3() {
        let dev = Device::Cpu;
        // (in, out, k, padding, stride, L): the U-Net's convolutions, odd and even lengths.
        for (c_in, c_out, k, padding, stride, l) in [
            (3, 5, 5, 2, 1, 8),
            (4, 4, 3, 1, 2, 8),
            (4, 4, 3, 1, 2, 7),
            (2, 6, 5, 2, 1, 4),
            (6, 2, 1, 0, 1, 9),
        ] {
            let x = Tensor::randn(0f32, 1.0, (3, c_in, l), &dev).unwrap();
            let w = Tensor::randn(0f32, 1.0, (c_out, c_in, k), &dev).unwrap();
            let want = x.conv1d(&w, padding, stride, 1, 1).unwrap();
            for imp in [OpImpl::Native, OpImpl::TensorOps] {
                let got = conv1d_unfold(&x, &w, padding, stride, imp).unwrap();
                assert_eq!(got.dims(), want.dims());
                assert!(
                    max_diff(&got, &want) < 1e-5,
                    "{imp:?} k {k} stride {stride} L {l}"
                );
            }
            if k == 1 {
                let got = pointwise_conv(&x, &w).unwrap();
                assert!(max_diff(&got, &want) < 1e-5);
            }
        }
    }

    #[test]
    fn upsample_doubles_the_length_at_batch_3() {
        // Against a direct evaluation of the transposed convolution:
        // y[o, 2l + k - 1] += sum_i x[i, l] w[i, o, k], for 0 <= 2l + k - 1 < 2L.
        let dev = Device::Cpu;
        let (b, c, l) = (3usize, 2usize, 5usize);
        let x: Vec<f32> = (0..b * c * l).map(|v| (v as f32 * 0.37).sin()).collect();
        let w: Vec<f32> = (0..c * c * 4).map(|v| (v as f32 * 0.91).cos()).collect();
        let bias = [0.1f32, -0.2];
        let mut map = std::collections::HashMap::new();
        map.insert(
            "weight".to_string(),
            Tensor::from_vec(w.clone(), (c, c, 4), &dev).unwrap(),
        );
        map.insert("bias".to_string(), Tensor::new(&bias[..], &dev).unwrap());
        let up = Upsample1d::new(c, VarBuilder::from_tensors(map, DType::F32, &dev)).unwrap();
        let xt = Tensor::from_vec(x.clone(), (b, c, l), &dev).unwrap();
        let y = up
            .forward(&xt, OpImpl::Native)
            .unwrap()
            .to_vec3::<f32>()
            .unwrap();
        let y_tensor_ops = up.forward(&xt, OpImpl::TensorOps).unwrap();
        assert_eq!(y_tensor_ops.to_vec3::<f32>().unwrap(), y);
        for bi in 0..b {
            for o in 0..c {
                let mut want = vec![bias[o]; 2 * l];
                for i in 0..c {
                    for li in 0..l {
                        for k in 0..4 {
                            let pos = 2 * li + k;
                            if (1..=2 * l).contains(&pos) {
                                want[pos - 1] += x[(bi * c + i) * l + li] * w[(i * c + o) * 4 + k];
                            }
                        }
                    }
                }
                for (p, v) in want.iter().enumerate() {
                    assert!((y[bi][o][p] - v).abs() < 1e-5, "b{bi} o{o} p{p}");
                }
            }
        }
    }
}
