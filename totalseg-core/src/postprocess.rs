//! TotalSegmentator's postprocessing at model resolution (postprocessing.py, nnunet.py):
//! argmax of the logits, auxiliary-label removal, keep-largest-blob, small-blob removal and
//! the `body` task's rules. Connected components are scipy's `ndimage.label` with its
//! default 6-connectivity, as TotalSegmentator uses.
//!
//! Label maps are `u8` arrays indexed `[a0, a1, a2]` in the caller's axis order; only the
//! tie-break of [`keep_largest_blob`] (the first component in raster order wins) depends on
//! it. TotalSegmentator runs these on nibabel arrays, i.e. `[x, y, z]`.

pub mod vertebrae;

use half::f16;
use ndarray::{s, Array3, ArrayView3, ArrayView4, Axis, Zip};
use rayon::prelude::*;

use crate::morphology::{binary_dilation, binary_erosion, label_components, Connectivity};

/// `--remove_small_blobs` without a value: blobs up to 200 mm³ go.
pub const DEFAULT_SMALL_BLOB_MM3: f64 = 200.0;
/// The `body` task drops `body_extremities` blobs up to 50 000 mm³.
pub const BODY_EXTREMITIES_MIN_MM3: f64 = 50_000.0;
/// TotalSegmentator's upper bound of the kept size interval (`1e10` voxels).
pub const BLOB_SIZE_UPPER_BOUND: f64 = 1e10;
/// Label of `body_trunc` in the `body` task.
pub const BODY_TRUNC_LABEL: u8 = 1;
/// Label of `body_extremities` in the `body` task.
pub const BODY_EXTREMITIES_LABEL: u8 = 2;

/// What went wrong postprocessing.
#[derive(Debug, thiserror::Error)]
pub enum PostprocessError {
    /// More channels than a `u8` label map can hold.
    #[error("{0} channels do not fit a u8 label map (at most 256)")]
    TooManyChannels(usize),
    /// No channels at all.
    #[error("logits have no channels")]
    NoChannels,
    /// Two arrays that must share a shape do not.
    #[error("shape mismatch: {what} has shape {actual:?}, expected {expected:?}")]
    ShapeMismatch {
        /// Which array.
        what: &'static str,
        /// Expected shape.
        expected: Vec<usize>,
        /// Actual shape.
        actual: Vec<usize>,
    },
}

/// Blob sizes (voxels) that survive [`remove_small_blobs`]: `lower_exclusive < size <=
/// upper_inclusive`, TotalSegmentator's `interval=[lower, upper]`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BlobSizeInterval {
    /// Blobs with at most this many voxels are removed.
    pub lower_exclusive: f64,
    /// Blobs with more voxels than this are removed.
    pub upper_inclusive: f64,
}

impl BlobSizeInterval {
    /// TotalSegmentator's interval for a minimum size in mm³ at the given voxel spacing:
    /// `[size_mm3 / prod(spacing), 1e10]` with the voxel volume and the quotient in float32
    /// (the NIfTI zooms are float32, NumPy keeps that precision).
    ///
    /// ```
    /// use totalseg_core::postprocess::BlobSizeInterval;
    /// let i = BlobSizeInterval::from_min_volume_mm3(200.0, [1.5, 1.5, 1.5]);
    /// assert_eq!(i.lower_exclusive, f64::from(200.0f32 / 3.375f32));
    /// assert!(i.keeps(60) && !i.keeps(59));
    /// ```
    pub fn from_min_volume_mm3(size_mm3: f64, spacing: [f32; 3]) -> Self {
        let voxel_volume = (spacing[0] * spacing[1]) * spacing[2];
        Self {
            lower_exclusive: f64::from(size_mm3 as f32 / voxel_volume),
            upper_inclusive: BLOB_SIZE_UPPER_BOUND,
        }
    }

    /// Whether a blob of `voxels` voxels is kept.
    pub fn keeps(&self, voxels: u64) -> bool {
        let v = voxels as f64;
        v > self.lower_exclusive && v <= self.upper_inclusive
    }
}

/// Logit element types [`argmax_channels`] accepts.
pub trait LogitValue: Copy + Send + Sync {
    /// Widens one value to f32 (exact for f16).
    fn to_f32(self) -> f32;
}

impl LogitValue for f32 {
    fn to_f32(self) -> f32 {
        self
    }
}

impl LogitValue for f16 {
    fn to_f32(self) -> f32 {
        f16::to_f32(self)
    }
}

/// Argmax over channels of `[c, d0, d1, d2]` logits (f32 or f16); ties go to the lowest
/// channel (torch's `argmax`), a NaN counts as the maximum like in torch.
///
/// ```
/// use ndarray::Array4;
/// use totalseg_core::postprocess::argmax_channels;
/// let mut logits = Array4::<f32>::zeros((3, 1, 1, 2));
/// logits[[2, 0, 0, 0]] = 1.0;
/// let labels = argmax_channels(logits.view())?; // voxel 1: all tie -> 0
/// assert_eq!(labels.iter().copied().collect::<Vec<_>>(), vec![2, 0]);
/// # Ok::<(), totalseg_core::postprocess::PostprocessError>(())
/// ```
pub fn argmax_channels<T: LogitValue>(
    logits: ArrayView4<T>,
) -> Result<Array3<u8>, PostprocessError> {
    let (c, d0, d1, d2) = logits.dim();
    if c == 0 {
        return Err(PostprocessError::NoChannels);
    }
    if c > 256 {
        return Err(PostprocessError::TooManyChannels(c));
    }
    // One parallel pass per channel over the whole volume: 17-20 ms against ~39 ms for a
    // plane-by-plane loop over the channels (benches/benches/argmax.rs, 25x112x160x160 f32).
    let mut best = logits.index_axis(Axis(0), 0).mapv(T::to_f32);
    let mut labels = Array3::<u8>::zeros((d0, d1, d2));
    for channel in 1..c {
        Zip::from(&mut best)
            .and(&mut labels)
            .and(logits.index_axis(Axis(0), channel))
            .par_for_each(|b, label, &v| {
                // `v > best` or `v` NaN, unless best is already NaN: the first NaN wins.
                let v = v.to_f32();
                #[allow(clippy::neg_cmp_op_on_partial_ord)]
                if !(v <= *b) && !b.is_nan() {
                    *b = v;
                    *label = channel as u8;
                }
            });
    }
    Ok(labels)
}

/// TotalSegmentator's `keep_largest_blob`: only the largest 6-connected component stays;
/// on equal sizes the one whose first voxel comes first in raster order.
pub fn keep_largest_blob(mask: ArrayView3<bool>) -> Array3<bool> {
    let components = label_components(mask, Connectivity::Faces);
    if components.count == 0 {
        return mask.to_owned();
    }
    let sizes = components.sizes();
    let mut largest = 1usize;
    for label in 2..sizes.len() {
        if sizes[label] > sizes[largest] {
            largest = label;
        }
    }
    components.labels.mapv(|l| l as usize == largest)
}

/// TotalSegmentator's `remove_small_blobs`: keeps the 6-connected components whose size
/// lies in `interval`.
pub fn remove_small_blobs(mask: ArrayView3<bool>, interval: BlobSizeInterval) -> Array3<bool> {
    let components = label_components(mask, Connectivity::Faces);
    let keep: Vec<bool> = components
        .sizes()
        .into_iter()
        .enumerate()
        .map(|(label, size)| label != 0 && interval.keeps(size))
        .collect();
    components.labels.mapv(|l| keep[l as usize])
}

/// Half-open bounding box of every label value (index = value), `None` where absent.
fn label_bounding_boxes(seg: &Array3<u8>) -> Vec<Option<([usize; 3], [usize; 3])>> {
    let mut boxes: Vec<Option<([usize; 3], [usize; 3])>> = vec![None; 256];
    for ((i0, i1, i2), &v) in seg.indexed_iter() {
        let index = [i0, i1, i2];
        let entry = boxes[v as usize].get_or_insert((index, [i0 + 1, i1 + 1, i2 + 1]));
        for (a, &i) in index.iter().enumerate() {
            entry.0[a] = entry.0[a].min(i);
            entry.1[a] = entry.1[a].max(i + 1);
        }
    }
    boxes
}

/// Applies `filter` to the mask of each label, restricted to the label's bounding box (a
/// label's components never leave it, and raster order inside the box is the full
/// array's), and clears the voxels it drops, as the reference's `data[roi] = 0;
/// data[cleaned] = idx` does. Labels only read and clear their own voxels, so they are
/// processed in parallel on the input and the removals applied afterwards.
fn filter_labels(
    seg: &mut Array3<u8>,
    labels: &[u8],
    filter: impl Fn(ArrayView3<bool>) -> Array3<bool> + Sync,
) {
    let boxes = label_bounding_boxes(seg);
    let view = seg.view();
    let removals: Vec<Vec<[usize; 3]>> = labels
        .par_iter()
        .filter_map(|&label| {
            let (start, end) = boxes[label as usize]?;
            let window = view.slice(s![start[0]..end[0], start[1]..end[1], start[2]..end[2]]);
            let mask = window.mapv(|v| v == label);
            let kept = filter(mask.view());
            let dropped: Vec<[usize; 3]> = mask
                .indexed_iter()
                .zip(kept.iter())
                .filter(|((_, &m), &k)| m && !k)
                .map(|(((i0, i1, i2), _), _)| [start[0] + i0, start[1] + i1, start[2] + i2])
                .collect();
            Some(dropped)
        })
        .collect();
    for index in removals.into_iter().flatten() {
        seg[index] = 0;
    }
}

/// `keep_largest_blob_multilabel`: keeps the largest blob of each label in `labels`.
pub fn keep_largest_blob_multilabel(seg: &mut Array3<u8>, labels: &[u8]) {
    filter_labels(seg, labels, keep_largest_blob);
}

/// `remove_small_blobs_multilabel`: drops the blobs of each label in `labels` whose size is
/// outside `interval`.
pub fn remove_small_blobs_multilabel(
    seg: &mut Array3<u8>,
    labels: &[u8],
    interval: BlobSizeInterval,
) {
    filter_labels(seg, labels, |m| remove_small_blobs(m, interval));
}

/// `--remove_small_blobs [size_mm3]` as nnunet.py runs it on every class of the task:
/// blobs up to `size_mm3` (200 by default) are removed.
pub fn remove_small_blobs_all_classes(
    seg: &mut Array3<u8>,
    labels: &[u8],
    size_mm3: f64,
    spacing: [f32; 3],
) {
    remove_small_blobs_multilabel(
        seg,
        labels,
        BlobSizeInterval::from_min_volume_mm3(size_mm3, spacing),
    );
}

/// `remove_auxiliary_labels`: sets the task's auxiliary labels (`<task>_auxiliary` in
/// map_to_binary.py) to 0.
pub fn remove_auxiliary_labels(seg: &mut Array3<u8>, auxiliary_labels: &[u8]) {
    seg.mapv_inplace(|v| if auxiliary_labels.contains(&v) { 0 } else { v });
}

/// The `body` task's postprocessing in nnunet.py: keep the largest `body_trunc` blob, then
/// remove `body_extremities` blobs up to 50 000 mm³. `spacing` is the prediction's voxel
/// size (NIfTI zooms, float32).
pub fn postprocess_body(seg: &mut Array3<u8>, spacing: [f32; 3]) {
    keep_largest_blob_multilabel(seg, &[BODY_TRUNC_LABEL]);
    let interval = BlobSizeInterval::from_min_volume_mm3(BODY_EXTREMITIES_MIN_MM3, spacing);
    remove_small_blobs_multilabel(seg, &[BODY_EXTREMITIES_LABEL], interval);
}

/// `remove_outside_of_mask`: labels outside `mask` dilated `dilation_iterations` times
/// (6-connected cross; 0 = scipy's "until nothing changes") become 0.
pub fn remove_outside_of_mask(
    seg: &mut Array3<u8>,
    mask: ArrayView3<bool>,
    dilation_iterations: usize,
) -> Result<(), PostprocessError> {
    if mask.shape() != seg.shape() {
        return Err(PostprocessError::ShapeMismatch {
            what: "mask",
            expected: seg.shape().to_vec(),
            actual: mask.shape().to_vec(),
        });
    }
    let grown = binary_dilation(mask, dilation_iterations);
    Zip::from(seg).and(&grown).for_each(|v, &inside| {
        if !inside {
            *v = 0;
        }
    });
    Ok(())
}

/// `extract_skin`: the skin derived from the `body` mask at the CT's resolution: the body
/// dilated once minus the dilated body eroded three times, restricted to -200 < HU < 250,
/// without blobs of at most 5 voxels.
pub fn extract_skin(
    ct: ArrayView3<f64>,
    body: ArrayView3<bool>,
) -> Result<Array3<bool>, PostprocessError> {
    if ct.shape() != body.shape() {
        return Err(PostprocessError::ShapeMismatch {
            what: "body mask",
            expected: ct.shape().to_vec(),
            actual: body.shape().to_vec(),
        });
    }
    let dilated = binary_dilation(body, 1);
    let inner = binary_erosion(dilated.view(), 3);
    let skin = Zip::from(&dilated)
        .and(&inner)
        .and(ct)
        .map_collect(|&d, &i, &hu| d && !i && hu > -200.0 && hu < 250.0);
    let interval = BlobSizeInterval {
        lower_exclusive: 5.0,
        upper_inclusive: BLOB_SIZE_UPPER_BOUND,
    };
    Ok(remove_small_blobs(skin.view(), interval))
}
