//! Tile positions and padding of nnU-Net's sliding window
//! (`compute_steps_for_sliding_window`, `pad_nd_image`, `_internal_get_sliding_window_slicers`).

use ndarray::{s, Array4, ArrayView4, SliceInfo, SliceInfoElem};

use super::SlidingWindowError;

/// Tile start positions along one axis, as nnU-Net's `compute_steps_for_sliding_window`.
///
/// `image_size` is the (already padded) size, at least `patch_size`. The number of steps is
/// `ceil((image_size - patch) / (patch * step_size)) + 1`; positions are spread evenly over
/// `[0, image_size - patch]` and rounded half to even, like `np.round`.
///
/// ```
/// use totalseg_core::sliding_window::compute_steps;
/// assert_eq!(compute_steps(197, 128, 0.5), vec![0, 34, 69]);
/// assert_eq!(compute_steps(128, 128, 0.5), vec![0]);
/// ```
pub fn compute_steps(image_size: usize, patch_size: usize, step_size: f64) -> Vec<usize> {
    let max_step_value = image_size.saturating_sub(patch_size);
    let target_step = patch_size as f64 * step_size;
    let num_steps = (max_step_value as f64 / target_step).ceil() as usize + 1;
    if num_steps == 1 {
        return vec![0];
    }
    let actual_step = max_step_value as f64 / (num_steps - 1) as f64;
    (0..num_steps)
        .map(|i| (actual_step * i as f64).round_ties_even() as usize)
        .collect()
}

/// Where nnU-Net places its tiles on a 3-D image: padding for axes smaller than the patch
/// and the start positions along each axis.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlidingWindowPlan {
    image_shape: [usize; 3],
    patch_size: [usize; 3],
    padded_shape: [usize; 3],
    pad_below: [usize; 3],
    steps: [Vec<usize>; 3],
}

impl SlidingWindowPlan {
    /// Plans the tiles for an image of spatial shape `image_shape` (`[d0, d1, d2]`).
    ///
    /// Axes shorter than the patch are padded to the patch size (`pad_nd_image`: below =
    /// difference / 2 rounded down, above = the rest, constant 0). `step_size` is nnU-Net's
    /// `tile_step_size` (0.5 by default, 0.8 for TotalSegmentator's `total` models).
    pub fn new(
        image_shape: [usize; 3],
        patch_size: [usize; 3],
        step_size: f64,
    ) -> Result<Self, SlidingWindowError> {
        if !(step_size > 0.0 && step_size <= 1.0) {
            return Err(SlidingWindowError::InvalidStepSize(step_size));
        }
        if image_shape.contains(&0) || patch_size.contains(&0) {
            return Err(SlidingWindowError::EmptyShape {
                image: image_shape.to_vec(),
                patch: patch_size.to_vec(),
            });
        }
        let padded_shape: [usize; 3] = std::array::from_fn(|a| image_shape[a].max(patch_size[a]));
        let pad_below: [usize; 3] = std::array::from_fn(|a| (padded_shape[a] - image_shape[a]) / 2);
        let steps =
            std::array::from_fn(|a| compute_steps(padded_shape[a], patch_size[a], step_size));
        Ok(Self {
            image_shape,
            patch_size,
            padded_shape,
            pad_below,
            steps,
        })
    }

    /// Spatial shape of the unpadded image.
    pub fn image_shape(&self) -> [usize; 3] {
        self.image_shape
    }

    /// Patch (tile) size.
    pub fn patch_size(&self) -> [usize; 3] {
        self.patch_size
    }

    /// Spatial shape after padding: `max(image, patch)` per axis.
    pub fn padded_shape(&self) -> [usize; 3] {
        self.padded_shape
    }

    /// Zeros added before the image on each axis; the image occupies
    /// `pad_below[a] .. pad_below[a] + image_shape[a]` of the padded array.
    pub fn pad_below(&self) -> [usize; 3] {
        self.pad_below
    }

    /// Tile start positions along each axis (padded coordinates).
    pub fn steps(&self) -> &[Vec<usize>; 3] {
        &self.steps
    }

    /// Number of tiles.
    pub fn num_tiles(&self) -> usize {
        self.steps.iter().map(Vec::len).product()
    }

    /// Tile origins in nnU-Net's order: axis 0 outermost, axis 2 innermost.
    ///
    /// The order matters: the fp16 sums in [`super::LogitAccumulator`] are not associative.
    pub fn tiles(&self) -> impl Iterator<Item = [usize; 3]> + '_ {
        self.steps[0].iter().flat_map(move |&a| {
            self.steps[1]
                .iter()
                .flat_map(move |&b| self.steps[2].iter().map(move |&c| [a, b, c]))
        })
    }

    /// The slice `[.., o0..o0+p0, o1..o1+p1, o2..o2+p2]` of a padded `[c, d0, d1, d2]` array
    /// that the tile at `origin` covers.
    pub fn tile_slice(
        &self,
        origin: [usize; 3],
    ) -> SliceInfo<[SliceInfoElem; 4], ndarray::Ix4, ndarray::Ix4> {
        let p = self.patch_size;
        s![
            ..,
            origin[0]..origin[0] + p[0],
            origin[1]..origin[1] + p[1],
            origin[2]..origin[2] + p[2]
        ]
    }

    /// Pads a `[c, d0, d1, d2]` image with zeros to [`Self::padded_shape`] (a copy).
    pub fn pad_image(&self, image: ArrayView4<f32>) -> Result<Array4<f32>, SlidingWindowError> {
        let (c, d0, d1, d2) = image.dim();
        if [d0, d1, d2] != self.image_shape {
            return Err(SlidingWindowError::ImageShapeMismatch {
                expected: self.image_shape,
                actual: image.shape().to_vec(),
            });
        }
        let [p0, p1, p2] = self.padded_shape;
        let [b0, b1, b2] = self.pad_below;
        let mut padded = Array4::<f32>::zeros((c, p0, p1, p2));
        padded
            .slice_mut(s![.., b0..b0 + d0, b1..b1 + d1, b2..b2 + d2])
            .assign(&image);
        Ok(padded)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_position_when_patch_covers_axis() {
        assert_eq!(compute_steps(64, 64, 0.5), vec![0]);
    }

    #[test]
    fn padding_splits_below_down() {
        let plan = SlidingWindowPlan::new([5, 128, 9], [8, 64, 12], 0.5).unwrap();
        assert_eq!(plan.padded_shape(), [8, 128, 12]);
        assert_eq!(plan.pad_below(), [1, 0, 1]);
        assert_eq!(plan.steps()[1], vec![0, 32, 64]);
    }

    #[test]
    fn rejects_bad_step() {
        assert!(SlidingWindowPlan::new([5, 5, 5], [4, 4, 4], 0.0).is_err());
        assert!(SlidingWindowPlan::new([5, 5, 5], [4, 4, 4], 1.5).is_err());
    }
}
