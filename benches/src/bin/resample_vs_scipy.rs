//! Times TotalSegmentator's resampling steps, ours against scipy, on one CT, same machine,
//! same run, and checks that the outputs are identical.
//!
//! The CT: `example_ct.nii.gz` (3 mm) upsampled to 512x512x300 (order 1, int16 values) and
//! given a 0.8x0.8x1.5 mm affine. Steps timed, as TotalSegmentator runs them:
//!
//! 1. `change_spacing(ct, 1.5, order=1, dtype=int32)` (the default `resampling_order`),
//! 2. the same with order 3,
//! 3. a 117-label map from the 1.5 mm grid back to 512x512x300 with order 0 (uint8).
//!
//! scipy gets the float64 array TotalSegmentator gets from `get_fdata()` (its conversion is not
//! timed); the zoom factors are computed from float32 header zooms exactly as TotalSegmentator
//! does. Both sides report the fastest of `--repeats` runs (default 3). Usage:
//!
//! ```text
//! cargo run --release -p totalseg-benches --bin resample_vs_scipy [-- --repeats N] [--small] [--no-python]
//! ```

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use ndarray::Array3;
use totalseg_core::resample::{
    change_spacing, change_spacing_labels, scipy_zoom, GridMode, SpacingTarget, SplineOrder,
};

const PYTHON: &str = r#"
import json, sys, time
import numpy as np
from scipy import ndimage
d, repeats = sys.argv[1], int(sys.argv[2])
def best(f):
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        out = f()
        times.append(time.perf_counter() - t)
    return min(times), out
ct = np.load(d + "/ct.npy").astype(np.float64)          # what get_fdata() hands scipy
zooms = np.array(json.load(open(d + "/zooms.json")), dtype=np.float32)
zoom = zooms / np.array([1.5, 1.5, 1.5])                 # change_spacing's zoom
res = {}
for order in (1, 3):
    res[f"scipy_order{order}_s"], out = best(
        lambda: ndimage.zoom(ct, zoom, order=order, mode="nearest").astype(np.int32))
    ours = np.load(d + f"/ours_order{order}.npy")
    res[f"order{order}_shape_equal"] = ours.shape == out.shape
    res[f"order{order}_mismatches"] = int((ours != out).sum()) if ours.shape == out.shape else -1
    del out, ours
del ct
labels = np.load(d + "/labels.npy").astype(np.float64)
target = np.array(json.load(open(d + "/target_shape.json")))
zoom = target / np.array(labels.shape)
res["scipy_labels_s"], out = best(
    lambda: ndimage.zoom(labels, zoom, order=0, mode="nearest").astype(np.uint8))
ours = np.load(d + "/ours_labels.npy")
res["labels_mismatches"] = int((ours != out).sum()) if ours.shape == out.shape else -1
print(json.dumps(res))
"#;

type BenchResult<T> = Result<T, Box<dyn std::error::Error>>;

fn main() -> BenchResult<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let repeats = args
        .iter()
        .position(|a| a == "--repeats")
        .and_then(|i| args.get(i + 1))
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(3usize);
    let small = args.iter().any(|a| a == "--small");
    let run_python = !args.iter().any(|a| a == "--no-python");
    let shape = if small {
        [256, 256, 150]
    } else {
        [512, 512, 300]
    };
    let threads = std::env::var("RAYON_NUM_THREADS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    println!("threads: {threads} (rayon; set RAYON_NUM_THREADS to change), scipy: 1 thread");

    let ct = make_ct(shape)?;
    let zooms_f32 = [0.8f32, 0.8, if small { 3.0 } else { 1.5 }];
    let zooms = zooms_f32.map(f64::from);
    let affine = [
        [zooms[0], 0.0, 0.0, -200.0],
        [0.0, zooms[1], 0.0, -180.0],
        [0.0, 0.0, zooms[2], -300.0],
        [0.0, 0.0, 0.0, 1.0],
    ];
    println!(
        "CT {:?} int16, zooms {:?} mm -> 1.5 mm",
        ct.dim(),
        zooms_f32
    );

    let dir = std::env::temp_dir().join(format!("resample_vs_scipy_{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    write_npy_i16(&dir.join("ct.npy"), &ct)?;
    std::fs::write(dir.join("zooms.json"), format!("{:?}", zooms_f32))?;

    let mut ours = Vec::new();
    let mut order1 = None;
    for order in [SplineOrder::Linear, SplineOrder::Cubic] {
        let (secs, out) = time_best(repeats, || {
            change_spacing::<i16, i32>(
                ct.view(),
                &affine,
                zooms,
                SpacingTarget::Spacing([1.5; 3]),
                order,
            )
        })?;
        let out = out.ok_or("spacing unchanged")?;
        println!(
            "ours  order {}: {:>8.3} s  -> {:?}",
            order.as_u8(),
            secs,
            out.data.dim()
        );
        write_npy_i32(
            &dir.join(format!("ours_order{}.npy", order.as_u8())),
            &out.data,
        )?;
        ours.push(secs);
        if order == SplineOrder::Linear {
            order1 = Some(out.data);
        }
    }
    let lowres = order1.ok_or("order 1 result missing")?;
    // A 117-class label map on the 1.5 mm grid, from intensity bands of the CT.
    let labels = lowres.mapv(|v| ((v + 1024).clamp(0, 117 * 20) / 20) as u8);
    write_npy_u8(&dir.join("labels.npy"), &labels)?;
    std::fs::write(dir.join("target_shape.json"), format!("{:?}", shape))?;
    let low_affine = [
        [1.5, 0.0, 0.0, 0.0],
        [0.0, 1.5, 0.0, 0.0],
        [0.0, 0.0, 1.5, 0.0],
        [0.0, 0.0, 0.0, 1.0],
    ];
    let (secs, back) = time_best(repeats, || {
        change_spacing_labels(
            labels.view(),
            &low_affine,
            [1.5; 3],
            SpacingTarget::Shape(shape),
        )
    })?;
    let back = back.ok_or("shape unchanged")?;
    println!(
        "ours  labels order 0: {:>8.3} s  -> {:?}",
        secs,
        back.data.dim()
    );
    write_npy_u8(&dir.join("ours_labels.npy"), &back.data)?;
    ours.push(secs);

    if run_python {
        println!("running scipy (python3) on the same arrays ...");
        let output = Command::new("python3")
            .arg("-c")
            .arg(PYTHON)
            .arg(&dir)
            .arg(repeats.to_string())
            .output()?;
        if !output.status.success() {
            return Err(format!(
                "python3 failed: {}",
                String::from_utf8_lossy(&output.stderr)
            )
            .into());
        }
        let text = String::from_utf8(output.stdout)?;
        let line = text.lines().last().ok_or("no output from python")?;
        let field = |key: &str| -> Option<String> {
            let rest = line.split(&format!("\"{key}\": ")).nth(1)?;
            Some(rest.split([',', '}']).next()?.trim().to_string())
        };
        let scipy: Vec<f64> = ["scipy_order1_s", "scipy_order3_s", "scipy_labels_s"]
            .iter()
            .map(|k| {
                field(k)
                    .and_then(|v| v.parse().ok())
                    .ok_or(format!("missing {k}"))
            })
            .collect::<Result<_, _>>()?;
        println!();
        println!(
            "{:<22} {:>10} {:>10} {:>8}  identical",
            "step", "ours [s]", "scipy [s]", "ratio"
        );
        for (i, (name, key)) in [
            ("order 1 -> int32", "order1_mismatches"),
            ("order 3 -> int32", "order3_mismatches"),
            ("labels order 0", "labels_mismatches"),
        ]
        .iter()
        .enumerate()
        {
            let mismatches = field(key).unwrap_or_else(|| "?".into());
            println!(
                "{:<22} {:>10.3} {:>10.3} {:>7.1}x  {} voxels differ",
                name,
                ours[i],
                scipy[i],
                scipy[i] / ours[i],
                mismatches
            );
        }
    }
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}

/// The example CT (3 mm) upsampled to `shape` with order 1 and cast to int16.
fn make_ct(shape: [usize; 3]) -> BenchResult<Array3<i16>> {
    let path = example_ct_path();
    let volume = totalseg_io::nifti::read_nifti(&path)?;
    let (a, b, c) = volume.data.dim();
    let zoom = [
        shape[0] as f64 / a as f64,
        shape[1] as f64 / b as f64,
        shape[2] as f64 / c as f64,
    ];
    Ok(scipy_zoom::<f32, i16>(
        volume.data.view(),
        zoom,
        SplineOrder::Linear,
        GridMode::AlignCorners,
    )?)
}

fn example_ct_path() -> PathBuf {
    PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../shared/data/totalseg-examples/example_ct.nii.gz"
    ))
}

/// Runs `f` `repeats` times; returns the fastest time and the last result.
fn time_best<T, E: std::error::Error + 'static>(
    repeats: usize,
    mut f: impl FnMut() -> Result<T, E>,
) -> BenchResult<(f64, T)> {
    let mut best = f64::INFINITY;
    let mut last = None;
    for _ in 0..repeats.max(1) {
        let t = Instant::now();
        let out = f()?;
        best = best.min(t.elapsed().as_secs_f64());
        last = Some(out);
    }
    Ok((best, last.ok_or("no run")?))
}

fn write_npy(
    path: &Path,
    descr: &str,
    shape: (usize, usize, usize),
    data: &[u8],
) -> BenchResult<()> {
    let mut header = format!(
        "{{'descr': '{descr}', 'fortran_order': False, 'shape': ({}, {}, {}), }}",
        shape.0, shape.1, shape.2
    );
    // Pad so that the data starts on a 64-byte boundary, header ending in '\n'.
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(' ');
    }
    header.push('\n');
    let mut file = std::io::BufWriter::new(std::fs::File::create(path)?);
    file.write_all(b"\x93NUMPY\x01\x00")?;
    file.write_all(&(header.len() as u16).to_le_bytes())?;
    file.write_all(header.as_bytes())?;
    file.write_all(data)?;
    file.flush()?;
    Ok(())
}

fn write_npy_i16(path: &Path, a: &Array3<i16>) -> BenchResult<()> {
    let bytes: Vec<u8> = a.iter().flat_map(|v| v.to_le_bytes()).collect();
    write_npy(path, "<i2", a.dim(), &bytes)
}

fn write_npy_i32(path: &Path, a: &Array3<i32>) -> BenchResult<()> {
    let bytes: Vec<u8> = a.iter().flat_map(|v| v.to_le_bytes()).collect();
    write_npy(path, "<i4", a.dim(), &bytes)
}

fn write_npy_u8(path: &Path, a: &Array3<u8>) -> BenchResult<()> {
    let bytes: Vec<u8> = a.iter().copied().collect();
    write_npy(path, "|u1", a.dim(), &bytes)
}
