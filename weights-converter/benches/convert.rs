//! Conversion time of the largest committed network fixture and, when
//! `WEIGHTS_CONVERTER_BENCH_MODEL` points at one, of a full-size model folder (e.g. a synthetic
//! 1.5 mm TotalSegmentator-sized PlainConvUNet made with torch; not committed).
//!
//! `WEIGHTS_CONVERTER_BENCH_MODEL=/tmp/.../nnUNetTrainerNoMirroring__nnUNetPlans__3d_fullres \
//!  cargo bench -p weights-converter --bench convert`

use std::path::{Path, PathBuf};
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use weights_converter::{convert_model_folder, ConvertOptions, OutputDType};

/// The model folder with the largest checkpoint under `fixtures/networks/`.
fn largest_fixture() -> Option<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/networks");
    let mut best: Option<(u64, PathBuf)> = None;
    for fixture in std::fs::read_dir(root).ok()? {
        for dataset in std::fs::read_dir(fixture.ok()?.path()).ok()? {
            let Ok(dataset) = dataset else { continue };
            let Ok(models) = std::fs::read_dir(dataset.path()) else {
                continue;
            };
            for model in models.flatten() {
                let model = model.path();
                let size =
                    std::fs::metadata(model.join("fold_0/checkpoint_final.pth")).map(|m| m.len());
                if let Ok(size) = size {
                    if best.as_ref().is_none_or(|(s, _)| size > *s) {
                        best = Some((size, model));
                    }
                }
            }
        }
    }
    best.map(|(_, p)| p)
}

fn bench_folder(c: &mut Criterion, label: &str, src: &Path, samples: usize) {
    let out = tempfile::tempdir().expect("temp dir");
    let mut group = c.benchmark_group(label);
    group
        .sample_size(samples)
        .measurement_time(Duration::from_secs(20));
    for dtype in [OutputDType::F32, OutputDType::F16] {
        let options = ConvertOptions {
            dtype,
            ..ConvertOptions::default()
        };
        group.bench_function(dtype.name(), |b| {
            b.iter(|| convert_model_folder(src, out.path(), &options).expect("conversion"))
        });
    }
    group.finish();
}

fn conversion(c: &mut Criterion) {
    if let Some(fixture) = largest_fixture() {
        bench_folder(c, "convert_largest_fixture", &fixture, 50);
    }
    if let Some(model) = std::env::var_os("WEIGHTS_CONVERTER_BENCH_MODEL") {
        bench_folder(c, "convert_full_size", Path::new(&model), 10);
    }
}

criterion_group!(benches, conversion);
criterion_main!(benches);
