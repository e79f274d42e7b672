//! Criterion benches of TotalSegmentator's resampling steps on a synthetic CT-like volume
//! (256x256x150, 0.8x0.8x1.5 mm, int16): to 1.5 mm with order 1 and 3 (int32 output), and a
//! label map back with order 0. `cargo bench -p totalseg-benches --bench resample`.

use criterion::{criterion_group, criterion_main, Criterion};
use ndarray::Array3;
use totalseg_core::geometry::as_closest_canonical;
use totalseg_core::resample::{change_spacing, change_spacing_labels, SpacingTarget, SplineOrder};

const SHAPE: [usize; 3] = [256, 256, 150];

fn synthetic_ct() -> Array3<i16> {
    // Smooth structures plus a deterministic noise pattern, air outside a cylinder.
    Array3::from_shape_fn(SHAPE, |(i, j, k)| {
        let (x, y) = (i as f64 - 128.0, j as f64 - 128.0);
        if x * x + y * y > 120.0 * 120.0 {
            -1024
        } else {
            let tissue =
                40.0 + 300.0 * ((x / 17.0).sin() * (y / 23.0).cos() * (k as f64 / 11.0).sin());
            let noise = ((i * 7919 + j * 104729 + k * 1299709) % 61) as f64 - 30.0;
            (tissue + noise) as i16
        }
    })
}

fn resample(c: &mut Criterion) {
    let ct = synthetic_ct();
    let zooms = [0.8f32, 0.8, 1.5].map(f64::from);
    let affine = [
        [zooms[0], 0.0, 0.0, 0.0],
        [0.0, zooms[1], 0.0, 0.0],
        [0.0, 0.0, zooms[2], 0.0],
        [0.0, 0.0, 0.0, 1.0],
    ];
    let mut group = c.benchmark_group("change_spacing_256x256x150");
    group.sample_size(10);
    for order in [SplineOrder::Linear, SplineOrder::Cubic] {
        group.bench_function(format!("to_1.5mm_order{}_int32", order.as_u8()), |b| {
            b.iter(|| {
                change_spacing::<i16, i32>(
                    ct.view(),
                    &affine,
                    zooms,
                    SpacingTarget::Spacing([1.5; 3]),
                    order,
                )
            })
        });
    }
    let low = change_spacing::<i16, i32>(
        ct.view(),
        &affine,
        zooms,
        SpacingTarget::Spacing([1.5; 3]),
        SplineOrder::Linear,
    )
    .ok()
    .flatten()
    .map(|r| r.data.mapv(|v| ((v + 1024).clamp(0, 117 * 20) / 20) as u8));
    if let Some(labels) = low {
        let low_affine = [
            [1.5, 0.0, 0.0, 0.0],
            [0.0, 1.5, 0.0, 0.0],
            [0.0, 0.0, 1.5, 0.0],
            [0.0, 0.0, 0.0, 1.0],
        ];
        group.bench_function("labels_back_order0_uint8", |b| {
            b.iter(|| {
                change_spacing_labels(
                    labels.view(),
                    &low_affine,
                    [1.5; 3],
                    SpacingTarget::Shape(SHAPE),
                )
            })
        });
    }
    group.finish();

    let lps = [
        [-0.8, 0.0, 0.0, 0.0],
        [0.0, -0.8, 0.0, 0.0],
        [0.0, 0.0, 1.5, 0.0],
        [0.0, 0.0, 0.0, 1.0],
    ];
    c.bench_function("as_closest_canonical_lps_256x256x150_int16", |b| {
        b.iter(|| as_closest_canonical(ct.view(), &lps).map(|r| r.data.len()))
    });
}

criterion_group!(benches, resample);
criterion_main!(benches);
