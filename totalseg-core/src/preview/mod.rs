//! `--preview`: the PNG that TotalSegmentator's `preview.py` draws of a segmentation, one
//! column per group of structures (`roi_groups`), each structure a smoothed surface seen from
//! the front, and a sagittal CT slice placed where its affine puts it.
//!
//! The scene is built as the official tool builds it (TotalSegmentator 2.18 with fury 0.12 /
//! VTK 9.3, what `pip install TotalSegmentator` brings on Python 3.11): the same window size,
//! surfaces, colours, camera and clipping. The rasteriser is our own (no anti-aliasing, no
//! normal splitting at sharp edges), so pixels are close to, not equal to, the official ones.
//!
//! ```
//! use ndarray::Array3;
//! use totalseg_core::preview::render_preview;
//!
//! // A 3 mm CT of 40 x 30 x 20 voxels with one cube-shaped structure (label 1).
//! let ct = Array3::<f32>::from_elem((40, 30, 20), 40.0);
//! let mut labels = Array3::<u8>::zeros((40, 30, 20));
//! labels.slice_mut(ndarray::s![10..20, 10..20, 5..15]).fill(1);
//! let affine = [
//!     [3.0, 0.0, 0.0, 0.0],
//!     [0.0, 3.0, 0.0, 0.0],
//!     [0.0, 0.0, 3.0, 0.0],
//!     [0.0, 0.0, 0.0, 1.0],
//! ];
//! let image = render_preview(ct.view(), &affine, labels.view(), &[vec![1]])?;
//! // Two columns of int(40 * 3 * 0.9) = 108 pixels, int(20 * 3 * 0.9) = 54 rows.
//! assert_eq!((image.width, image.height), (216, 54));
//! assert!(image.rgb.chunks(3).any(|p| p != [0, 0, 0]));
//! # Ok::<(), totalseg_core::preview::PreviewError>(())
//! ```

mod colors;
mod raster;
mod reslice;
mod surface;

use ndarray::{Array3, ArrayView2, ArrayView3, Axis};
use rayon::prelude::*;

use crate::geometry::{nifti_zooms_from_affine, Affine};
pub use colors::{preview_colors, PREVIEW_COLOR_COUNT};
use raster::{Camera, Canvas, ImageSlice};
use reslice::{diagonal_spacing, reslice, reslice_part};
use surface::{structure_surface, Surface, SMOOTHING_ITERATIONS};

/// Why no preview could be drawn.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PreviewError {
    /// The CT and the label map differ in shape.
    #[error("the CT is {ct:?} voxels but the label map {labels:?}")]
    ShapeMismatch {
        /// CT shape.
        ct: [usize; 3],
        /// Label-map shape.
        labels: [usize; 3],
    },
    /// The image is too small (or its spacing too fine) for a window of at least one pixel.
    #[error(
        "a {shape:?}-voxel image with spacing {zooms:?} mm gives an empty {width}x{height} preview"
    )]
    EmptyWindow {
        /// Image shape.
        shape: [usize; 3],
        /// Voxel size.
        zooms: [f32; 3],
        /// Window width in pixels.
        width: usize,
        /// Window height in pixels.
        height: usize,
    },
    /// A group has more structures than `random_colors` has rows (the official tool fails
    /// with an IndexError there).
    #[error("a preview group has {0} structures, more than the {PREVIEW_COLOR_COUNT} colours")]
    TooManyStructures(usize),
}

/// An 8-bit RGB image, rows top first.
#[derive(Debug, Clone, PartialEq)]
pub struct PreviewImage {
    /// Width in pixels.
    pub width: usize,
    /// Height in pixels.
    pub height: usize,
    /// `width * height * 3` bytes.
    pub rgb: Vec<u8>,
}

/// Samples per pixel along each axis, standing in for the multisampling of VTK's window
/// (3: the closest to the official edges of 1 to 4 tried).
const SAMPLES_PER_PIXEL: usize = 3;
/// fury's slicer window: `value_range = (-115, 225)`, the soft-tissue window of `preview.py`.
const SOFT_TISSUE_WINDOW: (f64, f64) = (-115.0, 225.0);
/// `contour_from_roi_smooth` scales the mask to 0/255 and takes the surface at 100.
const MASK_VALUE: f32 = 255.0;
const SURFACE_LEVEL: f32 = 100.0;

/// Draws the preview of `labels` (on the grid of `ct`, the image nnU-Net was given: canonical
/// and at the model's spacing, with `affine`). `groups` are the columns after the CT's, each
/// a list of labels; the n-th label of a group takes the n-th [`preview_colors`] colour.
/// Labels absent from the map are left out, as the official tool leaves out empty masks.
pub fn render_preview(
    ct: ArrayView3<f32>,
    affine: &Affine,
    labels: ArrayView3<u8>,
    groups: &[Vec<u8>],
) -> Result<PreviewImage, PreviewError> {
    let shape = dims(ct.shape());
    if labels.shape() != ct.shape() {
        return Err(PreviewError::ShapeMismatch {
            ct: shape,
            labels: dims(labels.shape()),
        });
    }
    if let Some(g) = groups.iter().find(|g| g.len() > PREVIEW_COLOR_COUNT) {
        return Err(PreviewError::TooManyStructures(g.len()));
    }
    // plot_subject: int(shape * zoom * 0.9), in float32 as NumPy computes it from the header.
    let zooms = nifti_zooms_from_affine(affine);
    let subject_width = (shape[0] as f32 * zooms[0] * 0.9f32) as usize;
    let subject_height = (shape[2] as f32 * zooms[2] * 0.9f32) as usize;
    let columns = groups.len() + 1;
    let (width, height) = (subject_width * columns, subject_height);
    if width == 0 || height == 0 || shape.contains(&0) {
        return Err(PreviewError::EmptyWindow {
            shape,
            zooms,
            width,
            height,
        });
    }

    let slice = ct_slice(ct, affine);
    let colors = preview_colors();
    let boxes = label_boxes(labels);
    // Every structure's surface, placed in its group's column.
    let jobs: Vec<(u8, [f64; 3], [f64; 3])> = groups
        .iter()
        .enumerate()
        .flat_map(|(g, group)| {
            let x = ((g + 1) % columns * subject_width) as f64;
            let colors = &colors;
            group
                .iter()
                .enumerate()
                .map(move |(n, &label)| (label, colors[n], [x, 0.0, 0.0]))
        })
        .filter(|(label, _, _)| boxes[usize::from(*label)].is_some())
        .collect();
    let surfaces: Vec<(Surface, [f64; 3], [f64; 3])> = jobs
        .into_par_iter()
        .filter_map(|(label, color, offset)| {
            let bounds = boxes[usize::from(label)]?;
            Some((mask_surface(labels, label, bounds, affine), color, offset))
        })
        .collect();

    let mut bounds = slice.bounds();
    for (surface, _, offset) in &surfaces {
        if let Some([low, high]) = surface.bounds() {
            for a in 0..3 {
                bounds[0][a] = bounds[0][a].min(low[a] + offset[a]);
                bounds[1][a] = bounds[1][a].max(high[a] + offset[a]);
            }
        }
    }
    let camera = Camera::fitting(bounds, width, height, SAMPLES_PER_PIXEL);
    let mut canvas = Canvas::new(&camera);
    canvas.draw_image_slice(&slice);
    for (surface, color, offset) in &surfaces {
        canvas.draw_surface(surface, *color, *offset);
    }
    Ok(PreviewImage {
        width,
        height,
        rgb: canvas.into_rgb(),
    })
}

impl ImageSlice {
    fn bounds(&self) -> [[f64; 3]; 2] {
        let high = [0, 1].map(|a| self.origin[a] + (self.size[a] - 1) as f64 * self.spacing[a]);
        [
            [self.origin[0], self.origin[1], self.z],
            [high[0], high[1], self.z],
        ]
    }
}

/// `plot_subject`'s CT: `data.transpose(1, 2, 0)[::-1]` given to fury's slicer with the image
/// affine, which shows the middle slice along the last axis through a black-to-white lookup
/// table over the soft-tissue window.
fn ct_slice(ct: ArrayView3<f32>, affine: &Affine) -> ImageSlice {
    let mut turned = ct.permuted_axes([1, 2, 0]);
    turned.invert_axis(Axis(0));
    let lut = grey_lookup_table();
    let slice = |plane: ArrayView2<f32>, origin: [f64; 3], spacing: [f64; 3], layer: usize| {
        let texels = plane
            .iter()
            .map(|&v| lut[lookup_index(f64::from(v))])
            .collect();
        ImageSlice {
            origin: [origin[0], origin[1]],
            spacing: [spacing[0], spacing[1]],
            size: [plane.shape()[0], plane.shape()[1]],
            z: origin[2] + layer as f64 * spacing[2],
            texels,
        }
    };
    if let Some(spacing) = diagonal_spacing(affine) {
        // Only the shown slice is needed, and no interpolation happens.
        let layer = (turned.shape()[2] - 1) / 2;
        let origin = [affine[0][3], affine[1][3], affine[2][3]];
        return slice(turned.index_axis(Axis(2), layer), origin, spacing, layer);
    }
    let volume = reslice(turned, affine);
    let layer = (volume.data.shape()[2] - 1) / 2;
    slice(
        volume.data.index_axis(Axis(2), layer),
        volume.origin,
        volume.spacing,
        layer,
    )
}

/// fury's `colormap_lookup_table(value_range, (0, 0), (0, 0), (0, 1))`: a 256-entry
/// `vtkLookupTable` from black to white with VTK's default S-curve ramp.
fn grey_lookup_table() -> Vec<[f32; 3]> {
    (0..256)
        .map(|i| {
            let value = f64::from(i) / 255.0;
            let c = (127.5 * (1.0 + ((1.0 - value) * std::f64::consts::PI).cos())) as u8;
            let g = f32::from(c) / 255.0;
            [g, g, g]
        })
        .collect()
}

/// vtkLookupTable's index of a scalar: linear over the range, truncated, clamped.
fn lookup_index(value: f64) -> usize {
    let (low, high) = SOFT_TISSUE_WINDOW;
    if value.is_nan() {
        return 0;
    }
    let scaled = (value - low) * (256.0 / (high - low));
    scaled.clamp(0.0, 255.0) as usize
}

/// Bounding boxes (`[min, max]` voxel indices) of every label value.
fn label_boxes(labels: ArrayView3<u8>) -> Vec<Option<[[usize; 3]; 2]>> {
    let mut boxes: Vec<Option<[[usize; 3]; 2]>> = vec![None; 256];
    for ((i, j, k), &l) in labels.indexed_iter() {
        if l == 0 {
            continue;
        }
        let b = boxes[usize::from(l)].get_or_insert([[i, j, k], [i, j, k]]);
        for (a, v) in [i, j, k].into_iter().enumerate() {
            b[0][a] = b[0][a].min(v);
            b[1][a] = b[1][a].max(v);
        }
    }
    boxes
}

/// `plot_mask` + `contour_from_roi_smooth` for one label: the mask turned as
/// `mask.transpose(0, 2, 1)[::-1]`, placed by the affine without its offset, surfaced and
/// smoothed. Only the label's bounding box (and one voxel around it) is surfaced: the rest
/// of the volume holds no surface.
fn mask_surface(
    labels: ArrayView3<u8>,
    label: u8,
    bounds: [[usize; 3]; 2],
    affine: &Affine,
) -> Surface {
    let shape = dims(labels.shape());
    // Turned axes: a = nx - 1 - i, b = k, c = j.
    let turned_shape = [shape[0], shape[2], shape[1]];
    let turned_low = [shape[0] - 1 - bounds[1][0], bounds[0][2], bounds[0][1]];
    let turned_high = [shape[0] - 1 - bounds[0][0], bounds[1][2], bounds[1][1]];
    let start = [0, 1, 2].map(|a| turned_low[a].saturating_sub(1));
    let end = [0, 1, 2].map(|a| (turned_high[a] + 1).min(turned_shape[a] - 1));
    let size = [0, 1, 2].map(|a| end[a] - start[a] + 1);
    let mask = Array3::from_shape_fn((size[0], size[1], size[2]), |(a, b, c)| {
        let (a, b, c) = (a + start[0], b + start[1], c + start[2]);
        if labels[[shape[0] - 1 - a, c, b]] == label {
            MASK_VALUE
        } else {
            0.0
        }
    });
    // The affine with its offset zeroed (`affine[:3, 3] = 0`).
    let mut placed = *affine;
    for row in placed.iter_mut().take(3) {
        row[3] = 0.0;
    }
    let mut volume = reslice_part(mask.view(), start, turned_shape, &placed);
    // The mask is uint8 in VTK, and so is what vtkImageReslice interpolates from it.
    volume
        .data
        .mapv_inplace(|v| (v + 0.5).floor().clamp(0.0, MASK_VALUE));
    structure_surface(&volume, SURFACE_LEVEL, SMOOTHING_ITERATIONS)
}

fn dims(shape: &[usize]) -> [usize; 3] {
    [shape[0], shape[1], shape[2]]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookup_table_is_vtk_s_curve() {
        let lut = grey_lookup_table();
        assert_eq!(lut[0], [0.0; 3]);
        assert_eq!(lut[255], [1.0; 3]);
        // 127.5 * (1 + cos(pi * 128 / 255)) = 126.27 -> 126.
        assert_eq!(lut[127][0], 126.0 / 255.0);
        assert_eq!(lookup_index(-1000.0), 0);
        assert_eq!(lookup_index(-115.0), 0);
        assert_eq!(lookup_index(225.0), 255);
        assert_eq!(lookup_index(55.0), 128);
    }

    #[test]
    fn mismatched_shapes_and_tiny_images_are_errors() {
        let affine = [
            [1.0, 0.0, 0.0, 0.0],
            [0.0, 1.0, 0.0, 0.0],
            [0.0, 0.0, 1.0, 0.0],
            [0.0, 0.0, 0.0, 1.0],
        ];
        let ct = Array3::<f32>::zeros((4, 4, 4));
        let labels = Array3::<u8>::zeros((4, 4, 5));
        assert!(matches!(
            render_preview(ct.view(), &affine, labels.view(), &[]),
            Err(PreviewError::ShapeMismatch { .. })
        ));
        for shape in [(4, 4, 1), (4, 0, 4)] {
            let labels = Array3::<u8>::zeros(shape);
            let ct = Array3::<f32>::zeros(shape);
            assert!(matches!(
                render_preview(ct.view(), &affine, labels.view(), &[]),
                Err(PreviewError::EmptyWindow { .. })
            ));
        }
    }
}
