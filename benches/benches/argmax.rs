//! Criterion bench of the host argmax over the classes (`predictor::argmax_channels`): 25 classes
//! of f32 logits over 112x160x160 voxels, the size of a 1.5 mm `total` part of a small CT.
//! `cargo bench -p totalseg-benches --bench argmax`.

use criterion::{criterion_group, criterion_main, Criterion};
use ndarray::Array4;
use totalsegmentator::predictor::argmax_channels;

fn argmax(c: &mut Criterion) {
    // Deterministic values with ties, so both branches of the comparison run.
    let logits = Array4::from_shape_fn((25, 112, 160, 160), |(k, i, j, l)| {
        ((k * 31 + i * 17 + j * 7 + l * 3) % 97) as f32 * 0.25
    });
    let mut group = c.benchmark_group("argmax");
    group.sample_size(10);
    group.bench_function("argmax_channels 25x112x160x160 f32", |b| {
        b.iter(|| argmax_channels(logits.view()).expect("argmax"))
    });
    group.finish();
}

criterion_group!(benches, argmax);
criterion_main!(benches);
