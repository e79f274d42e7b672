//! One forward pass of the TotalSegmentator 1.5 mm network (random weights) on the CPU backend.
//!
//! `cargo bench -p totalseg-nn --bench forward`; the patch side defaults to the real 128 and
//! can be lowered with `TOTALSEG_BENCH_PATCH=64` (a 128^3 pass is about a TFLOP).

mod common;

use burn::tensor::{Distribution, Tensor};
use burn_flex::{Flex, FlexDevice};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use totalseg_nn::{NnUnetModel, Precision};

fn patch_side() -> usize {
    std::env::var("TOTALSEG_BENCH_PATCH")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(128)
}

fn forward(c: &mut Criterion) {
    let patch = patch_side();
    let config = common::totalseg_config(patch);
    let mut group = c.benchmark_group("totalseg_1.5mm_forward");
    group.sample_size(10);
    for precision in [Precision::F32, Precision::F16] {
        let model =
            NnUnetModel::<Flex>::with_random_weights(config.clone(), &FlexDevice, precision, 7)
                .expect("model");
        let kw = &model.architecture().arch_kwargs;
        let flops = common::forward_flops(kw, 1, common::NUM_CLASSES, [patch; 3]);
        group.throughput(Throughput::Elements(flops as u64));
        let input = Tensor::<Flex, 5>::random(
            [1, 1, patch, patch, patch],
            Distribution::Normal(0.0, 1.0),
            &FlexDevice,
        );
        group.bench_function(format!("flex_{precision}_patch{patch}"), |b| {
            b.iter(|| {
                let logits = model.forward_logits(0, input.clone()).expect("forward");
                // Reading the data forces any lazy backend to finish.
                logits.into_data()
            })
        });
    }
    group.finish();
}

criterion_group!(benches, forward);
criterion_main!(benches);
