use candle_core::{DType, Device, Module, Tensor};
use std::time::Instant;

fn time<F: FnMut()>(mut f: F) -> f64 {
    for _ in 0..3 {
        f();
    }
    let n = 30;
    let mut v = vec![];
    for _ in 0..n {
        let t = Instant::now();
        f();
        v.push(t.elapsed().as_secs_f64() * 1e3);
    }
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[n / 2]
}

fn main() {
    let dev = Device::Cpu;
    let b: usize = std::env::var("B")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(32);
    let mish = |x: &Tensor| -> Tensor {
        let sp = (x.relu().unwrap()
            + (x.abs().unwrap().neg().unwrap().exp().unwrap() + 1.0)
                .unwrap()
                .log()
                .unwrap())
        .unwrap();
        (x * sp.tanh().unwrap()).unwrap()
    };
    let mut total = std::collections::BTreeMap::new();
    // (C, L, count of k5 convs C->C at that level, counts of GN+mish)
    // shipped: down [32,64,128], T=32. per level: down blocks 2 (4 convs), up blocks 2 (4 convs) except last level; mid 2 blocks at level 2.
    for (c, l, nconv) in [
        (32usize, 32usize, 4 + 4 + 1),
        (64, 16, 4 + 4),
        (128, 8, 4 + 4),
    ] {
        let x = Tensor::randn(0f32, 1.0, (b, c, l), &dev).unwrap();
        let w = Tensor::randn(0f32, 1.0, (c, c, 5), &dev).unwrap();
        let gn = candle_nn::GroupNorm::new(
            Tensor::ones(c, DType::F32, &dev).unwrap(),
            Tensor::zeros(c, DType::F32, &dev).unwrap(),
            c,
            8,
            1e-5,
        )
        .unwrap();
        let s = Tensor::randn(0f32, 1.0, (b, c, 1), &dev).unwrap();
        let tc = time(|| {
            x.conv1d(&w, 2, 1, 1, 1).unwrap();
        });
        let tg = time(|| {
            gn.forward(&x).unwrap();
        });
        let tm = time(|| {
            mish(&x);
        });
        let tf = time(|| {
            x.broadcast_mul(&s).unwrap().broadcast_add(&s).unwrap();
        });
        let flops = 2.0 * (c * c * 5 * l * b) as f64;
        println!(
            "C{c} L{l}: conv {tc:.3} ms ({:.1} GFLOP/s), gn {tg:.3}, mish {tm:.3}, film {tf:.3}",
            flops / tc / 1e6
        );
        *total.entry("conv").or_insert(0.0) += tc * nconv as f64;
        *total.entry("gn").or_insert(0.0) += tg * nconv as f64;
        *total.entry("mish").or_insert(0.0) += tm * nconv as f64;
        *total.entry("film").or_insert(0.0) += tf * (nconv / 2) as f64;
    }
    println!("{total:?}");
}
