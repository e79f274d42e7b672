//! Gaussian-weighted sum of tile logits, in nnU-Net 2.8's fp16 arithmetic
//! (`_internal_predict_sliding_window_return_logits`).

use std::borrow::Cow;

use half::f16;
use half::slice::HalfFloatSliceExt;
use ndarray::{s, Array4, ArrayView1, ArrayView3, ArrayView4, Axis};
use rayon::prelude::*;

use super::{gaussian_importance_map, SlidingWindowError, SlidingWindowPlan};

/// The arithmetic used to weight and sum the tiles.
///
/// nnU-Net 2.8 allocates `predicted_logits` and `n_predictions` as `torch.half` on every
/// device. Per tile it runs `prediction *= gaussian` (in the prediction's dtype),
/// `predicted_logits[sl] += prediction` (computed in float32, stored as fp16) and
/// `n_predictions[sl] += gaussian` (fp16), then divides in fp16.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AccumulationPrecision {
    /// nnU-Net with a float32 network output (CPU inference): the weighted tile is float32,
    /// each sum is rounded to fp16.
    #[default]
    Fp16,
    /// nnU-Net under CUDA autocast, where the network returns fp16: the tile is rounded to
    /// fp16 and the weighted tile is rounded to fp16 before it is added.
    Fp16Autocast,
    /// Float32 sums and division (not what nnU-Net does; changes some voxels).
    Fp32,
}

/// Flat `[c, d0, d1, d2]` sums and `[d0, d1, d2]` weights in C order.
enum Buffers {
    Half { logits: Vec<f16>, weights: Vec<f16> },
    Single { logits: Vec<f32>, weights: Vec<f32> },
}

/// Sums gaussian-weighted tile logits over the padded image, then divides by the summed
/// weights (the MONAI `sliding_window_inference` role, minus the network call).
pub struct LogitAccumulator {
    precision: AccumulationPrecision,
    num_classes: usize,
    patch_size: [usize; 3],
    padded_shape: [usize; 3],
    pad_below: [usize; 3],
    image_shape: [usize; 3],
    /// The fp16 importance map widened to f32 (exact), C order.
    gaussian: Vec<f32>,
    buffers: Buffers,
}

/// A contiguous view of a 1-D lane (copied only if the caller's array is strided).
fn lane<T: Copy>(lane: ArrayView1<'_, T>) -> Cow<'_, [T]> {
    match lane.to_slice() {
        Some(slice) => Cow::Borrowed(slice),
        None => Cow::Owned(lane.to_vec()),
    }
}

impl LogitAccumulator {
    /// Zeroed buffers for `num_classes` channels over the plan's padded shape, with nnU-Net's
    /// default importance map for the plan's patch size.
    pub fn new(
        num_classes: usize,
        plan: &SlidingWindowPlan,
        precision: AccumulationPrecision,
    ) -> Result<Self, SlidingWindowError> {
        let map = gaussian_importance_map(plan.patch_size());
        Self::with_importance_map(num_classes, plan, precision, map.view())
    }

    /// Like [`Self::new`] with a precomputed importance map (nnU-Net caches it per patch size).
    pub fn with_importance_map(
        num_classes: usize,
        plan: &SlidingWindowPlan,
        precision: AccumulationPrecision,
        importance_map: ArrayView3<f16>,
    ) -> Result<Self, SlidingWindowError> {
        if num_classes == 0 {
            return Err(SlidingWindowError::NoClasses);
        }
        let patch_size = plan.patch_size();
        if importance_map.shape() != patch_size {
            return Err(SlidingWindowError::ImportanceMapShapeMismatch {
                expected: patch_size,
                actual: importance_map.shape().to_vec(),
            });
        }
        let voxels: usize = plan.padded_shape().iter().product();
        let buffers = match precision {
            AccumulationPrecision::Fp16 | AccumulationPrecision::Fp16Autocast => Buffers::Half {
                logits: vec![f16::ZERO; num_classes * voxels],
                weights: vec![f16::ZERO; voxels],
            },
            AccumulationPrecision::Fp32 => Buffers::Single {
                logits: vec![0.0; num_classes * voxels],
                weights: vec![0.0; voxels],
            },
        };
        Ok(Self {
            precision,
            num_classes,
            patch_size,
            padded_shape: plan.padded_shape(),
            pad_below: plan.pad_below(),
            image_shape: plan.image_shape(),
            gaussian: importance_map.iter().map(|v| v.to_f32()).collect(),
            buffers,
        })
    }

    /// The arithmetic in use.
    pub fn precision(&self) -> AccumulationPrecision {
        self.precision
    }

    /// Adds one tile's logits, `[num_classes, p0, p1, p2]` as float32, at `origin` (padded
    /// coordinates, from [`SlidingWindowPlan::tiles`]). Call in the plan's tile order to
    /// reproduce nnU-Net's fp16 rounding.
    pub fn add_tile(
        &mut self,
        origin: [usize; 3],
        tile: ArrayView4<f32>,
    ) -> Result<(), SlidingWindowError> {
        let [p0, p1, p2] = self.patch_size;
        let expected = [self.num_classes, p0, p1, p2];
        if tile.shape() != expected {
            return Err(SlidingWindowError::TileShapeMismatch {
                expected,
                actual: tile.shape().to_vec(),
            });
        }
        if (0..3).any(|a| origin[a] + self.patch_size[a] > self.padded_shape[a]) {
            return Err(SlidingWindowError::TileOutOfBounds {
                origin,
                patch: self.patch_size,
                padded: self.padded_shape,
            });
        }
        let [_, d1, d2] = self.padded_shape;
        let voxels: usize = self.padded_shape.iter().product();
        // Offset of patch row (i0, i1) in a padded channel, and in the patch.
        let rows: Vec<(usize, usize)> = (0..p0)
            .flat_map(|i0| (0..p1).map(move |i1| (i0, i1)))
            .map(|(i0, i1)| {
                let padded = ((origin[0] + i0) * d1 + origin[1] + i1) * d2 + origin[2];
                (padded, (i0 * p1 + i1) * p2)
            })
            .collect();
        let gaussian = &self.gaussian;
        let precision = self.precision;
        match &mut self.buffers {
            Buffers::Half { logits, weights } => {
                logits
                    .par_chunks_mut(voxels)
                    .zip(tile.axis_iter(Axis(0)).into_par_iter())
                    .for_each(|(channel, tile_channel)| {
                        let mut sums = vec![0.0f32; p2];
                        let mut weighted = vec![0.0f32; p2];
                        let mut rounded = vec![f16::ZERO; p2];
                        for (&(padded, in_patch), lanes) in rows.iter().zip(tile_channel.rows()) {
                            let acc = &mut channel[padded..padded + p2];
                            let t = lane(lanes);
                            let g = &gaussian[in_patch..in_patch + p2];
                            acc.convert_to_f32_slice(&mut sums);
                            if precision == AccumulationPrecision::Fp16Autocast {
                                // fp16 network output, fp16 product.
                                rounded.convert_from_f32_slice(&t);
                                rounded.convert_to_f32_slice(&mut weighted);
                                for (w, &gv) in weighted.iter_mut().zip(g) {
                                    *w *= gv;
                                }
                                rounded.convert_from_f32_slice(&weighted);
                                rounded.convert_to_f32_slice(&mut weighted);
                            } else {
                                for ((w, &tv), &gv) in weighted.iter_mut().zip(t.iter()).zip(g) {
                                    *w = tv * gv;
                                }
                            }
                            for (s, &w) in sums.iter_mut().zip(&weighted) {
                                *s += w;
                            }
                            acc.convert_from_f32_slice(&sums);
                        }
                    });
                let mut sums = vec![0.0f32; p2];
                for &(padded, in_patch) in &rows {
                    let w = &mut weights[padded..padded + p2];
                    w.convert_to_f32_slice(&mut sums);
                    for (s, &g) in sums.iter_mut().zip(&gaussian[in_patch..in_patch + p2]) {
                        *s += g;
                    }
                    w.convert_from_f32_slice(&sums);
                }
            }
            Buffers::Single { logits, weights } => {
                logits
                    .par_chunks_mut(voxels)
                    .zip(tile.axis_iter(Axis(0)).into_par_iter())
                    .for_each(|(channel, tile_channel)| {
                        for (&(padded, in_patch), lanes) in rows.iter().zip(tile_channel.rows()) {
                            let acc = &mut channel[padded..padded + p2];
                            let t = lane(lanes);
                            let g = &gaussian[in_patch..in_patch + p2];
                            for ((a, &tv), &gv) in acc.iter_mut().zip(t.iter()).zip(g) {
                                *a += tv * gv;
                            }
                        }
                    });
                for &(padded, in_patch) in &rows {
                    let w = &mut weights[padded..padded + p2];
                    for (s, &g) in w.iter_mut().zip(&gaussian[in_patch..in_patch + p2]) {
                        *s += g;
                    }
                }
            }
        }
        Ok(())
    }

    /// Divides the sums by the weights and removes the padding: logits `[num_classes, d0,
    /// d1, d2]` over the unpadded image (fp16 values widened to f32 for the fp16 modes).
    ///
    /// Fails like nnU-Net when a quotient is infinite (fp16 overflow).
    pub fn finish(self) -> Result<Array4<f32>, SlidingWindowError> {
        let geometry = self.geometry();
        match self.buffers {
            Buffers::Half { logits, weights } => {
                let quotient = divide_half(logits, &weights)?;
                Ok(geometry.crop(&quotient, |src, dst| src.convert_to_f32_slice(dst)))
            }
            Buffers::Single { logits, weights } => {
                let quotient = divide_single(logits, &weights)?;
                geometry.crop_or_reuse(quotient)
            }
        }
    }

    /// Like [`Self::finish`] but keeps fp16 values (half the memory; what nnU-Net returns).
    /// In [`AccumulationPrecision::Fp32`] mode the quotients are rounded to fp16.
    pub fn finish_f16(self) -> Result<Array4<f16>, SlidingWindowError> {
        let geometry = self.geometry();
        match self.buffers {
            Buffers::Half { logits, weights } => {
                let quotient = divide_half(logits, &weights)?;
                geometry.crop_or_reuse(quotient)
            }
            Buffers::Single { logits, weights } => {
                let quotient = divide_single(logits, &weights)?;
                Ok(geometry.crop(&quotient, |src, dst| dst.convert_from_f32_slice(src)))
            }
        }
    }

    fn geometry(&self) -> CropGeometry {
        CropGeometry {
            num_classes: self.num_classes,
            padded: self.padded_shape,
            below: self.pad_below,
            image: self.image_shape,
        }
    }
}

/// Where the image sits in the padded buffers.
struct CropGeometry {
    num_classes: usize,
    padded: [usize; 3],
    below: [usize; 3],
    image: [usize; 3],
}

impl CropGeometry {
    /// The image region as an array: the buffer itself when nothing was padded (the usual
    /// case, saving a copy of the largest array of the pipeline), else a cropped copy.
    fn crop_or_reuse<T: Copy + Default + Send + Sync>(
        &self,
        data: Vec<T>,
    ) -> Result<Array4<T>, SlidingWindowError> {
        if self.image != self.padded {
            return Ok(self.crop(&data, |src, dst| dst.copy_from_slice(src)));
        }
        let [d0, d1, d2] = self.padded;
        Array4::from_shape_vec((self.num_classes, d0, d1, d2), data)
            .map_err(|e| SlidingWindowError::BufferShape(e.to_string()))
    }

    /// Copies the image region of flat padded `[c, d0, d1, d2]` data into a new array,
    /// converting row by row with `convert`.
    fn crop<S: Sync, T: Clone + Default + Send + Sync>(
        &self,
        data: &[S],
        convert: impl Fn(&[S], &mut [T]) + Sync,
    ) -> Array4<T> {
        let [n0, n1, n2] = self.image;
        let [_, d1, d2] = self.padded;
        let voxels: usize = self.padded.iter().product();
        let mut out = Array4::<T>::default((self.num_classes, n0, n1, n2));
        out.axis_iter_mut(Axis(0))
            .into_par_iter()
            .enumerate()
            .for_each(|(c, mut channel)| {
                let src = &data[c * voxels..(c + 1) * voxels];
                for i0 in 0..n0 {
                    for i1 in 0..n1 {
                        let start =
                            ((self.below[0] + i0) * d1 + self.below[1] + i1) * d2 + self.below[2];
                        let mut dst = channel.slice_mut(s![i0, i1, ..]);
                        if let Some(dst) = dst.as_slice_mut() {
                            convert(&src[start..start + n2], dst);
                        }
                    }
                }
            });
        out
    }
}

fn divide_half(mut logits: Vec<f16>, weights: &[f16]) -> Result<Vec<f16>, SlidingWindowError> {
    let w: Vec<f32> = {
        let mut w = vec![0.0f32; weights.len()];
        weights.convert_to_f32_slice(&mut w);
        w
    };
    const BLOCK: usize = 4096;
    let count: usize = logits
        .par_chunks_mut(weights.len())
        .map(|channel| {
            let mut values = vec![0.0f32; BLOCK];
            let mut infinite = 0usize;
            for (block, w_block) in channel.chunks_mut(BLOCK).zip(w.chunks(BLOCK)) {
                let values = &mut values[..block.len()];
                block.convert_to_f32_slice(values);
                for (v, &wv) in values.iter_mut().zip(w_block) {
                    *v /= wv;
                }
                block.convert_from_f32_slice(values);
                infinite += block.iter().filter(|v| v.is_infinite()).count();
            }
            infinite
        })
        .sum();
    if count > 0 {
        return Err(SlidingWindowError::InfiniteLogits { count });
    }
    Ok(logits)
}

fn divide_single(mut logits: Vec<f32>, weights: &[f32]) -> Result<Vec<f32>, SlidingWindowError> {
    let count: usize = logits
        .par_chunks_mut(weights.len())
        .map(|channel| {
            let mut infinite = 0usize;
            for (v, &w) in channel.iter_mut().zip(weights) {
                *v /= w;
                infinite += usize::from(v.is_infinite());
            }
            infinite
        })
        .sum();
    if count > 0 {
        return Err(SlidingWindowError::InfiniteLogits { count });
    }
    Ok(logits)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array3;

    fn half_weights(acc: &LogitAccumulator) -> Option<Array3<f16>> {
        match &acc.buffers {
            Buffers::Half { weights, .. } => {
                let [d0, d1, d2] = acc.padded_shape;
                Array3::from_shape_vec((d0, d1, d2), weights.clone()).ok()
            }
            Buffers::Single { .. } => None,
        }
    }

    #[test]
    fn weights_sum_the_gaussian_in_fp16() {
        let plan = SlidingWindowPlan::new([6, 4, 4], [4, 4, 4], 0.5).unwrap();
        let mut acc = LogitAccumulator::new(1, &plan, AccumulationPrecision::Fp16).unwrap();
        for origin in plan.tiles() {
            acc.add_tile(origin, Array4::zeros((1, 4, 4, 4)).view())
                .unwrap();
        }
        let g = gaussian_importance_map([4, 4, 4]);
        let w = half_weights(&acc).unwrap();
        // Tiles at 0 and 2 along axis 0: voxel 2 gets g[2] then g[0], rounded to fp16.
        assert_eq!(plan.steps()[0], vec![0, 2]);
        let expected = f16::from_f32(g[[2, 1, 1]].to_f32() + g[[0, 1, 1]].to_f32());
        assert_eq!(w[[2, 1, 1]], expected);
    }
}
