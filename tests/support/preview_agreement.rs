//! How close a preview PNG is to the official one. The renderers differ (VTK with
//! multisampling and ours), so pixels are compared with a tolerance, not for equality.

use std::path::Path;

use totalseg_io::png::read_png_rgb;

/// Agreement of two RGB images of the same size.
#[derive(Debug)]
pub struct Agreement {
    /// Mean absolute difference over all channels of all pixels (0..255).
    pub mean_abs: f64,
    /// Share of pixels whose largest channel difference is at most 32.
    pub within_32: f64,
    /// Intersection over union of the non-black pixels.
    pub foreground_iou: f64,
}

pub fn agreement(ours: &[u8], official: &[u8]) -> Agreement {
    assert_eq!(ours.len(), official.len(), "image sizes differ");
    let pixels = ours.len() / 3;
    let (mut abs_sum, mut within, mut both, mut either) = (0u64, 0usize, 0usize, 0usize);
    for (a, b) in ours.chunks(3).zip(official.chunks(3)) {
        let diffs = [0, 1, 2].map(|k| a[k].abs_diff(b[k]));
        abs_sum += diffs.iter().map(|&d| u64::from(d)).sum::<u64>();
        within += usize::from(diffs.iter().all(|&d| d <= 32));
        let (fa, fb) = (a != [0, 0, 0], b != [0, 0, 0]);
        both += usize::from(fa && fb);
        either += usize::from(fa || fb);
    }
    Agreement {
        mean_abs: abs_sum as f64 / (3 * pixels) as f64,
        within_32: within as f64 / pixels as f64,
        foreground_iou: if either == 0 {
            1.0
        } else {
            both as f64 / either as f64
        },
    }
}

/// Reads the official PNG and checks `(width, height, rgb)` against it.
pub fn assert_close_to_official(
    ours: (usize, usize, &[u8]),
    official: &Path,
    min_within_32: f64,
    max_mean_abs: f64,
    min_foreground_iou: f64,
) -> Agreement {
    let (width, height, rgb) = read_png_rgb(official).expect("official preview is committed");
    assert_eq!((ours.0, ours.1), (width, height), "{}", official.display());
    let a = agreement(ours.2, &rgb);
    assert!(
        a.within_32 >= min_within_32
            && a.mean_abs <= max_mean_abs
            && a.foreground_iou >= min_foreground_iou,
        "{}: {a:?}",
        official.display()
    );
    a
}
