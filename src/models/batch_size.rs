//! How many tiles go through the network at once on an accelerator: a pure function of the
//! free device memory and the network's activation footprint per tile.

use totalseg_nn::{ArchitectureConfig, Precision};

/// Never more tiles per call than this. One 128³ tile of a full-width U-Net already fills an
/// H100 (its first conv output alone is 67 M elements), so larger batches mainly raise the peak
/// GPU memory, which must stay at or below the official tool's (nnU-Net runs one tile at a
/// time). To be tuned on a GPU.
pub const MAX_BATCH_SIZE: usize = 2;

/// Memory kept aside for everything that is not a tile's activations: the padded image, the
/// fp16 logit sums and weights of the largest image, the fold average, the label map and the
/// allocator's slack. 3 GiB holds the sums of a 512 x 512 x 600 CT at 1.5 mm with 30 classes.
pub const RESERVED_BYTES: u64 = 3 << 30;

/// Share of the free memory (after [`RESERVED_BYTES`]) the tiles may use: the allocator pools
/// by size class and fragments, so the estimate is not filled to the last byte.
pub const USABLE_FRACTION: f64 = 0.7;

/// What one tile costs in device memory while it runs through a U-Net.
#[derive(Debug, Clone, PartialEq)]
pub struct TileFootprint {
    /// Tile (patch) size in voxels per axis.
    pub patch_size: [usize; 3],
    /// Image channels.
    pub input_channels: usize,
    /// Output channels (classes, background included).
    pub num_classes: usize,
    /// Feature channels of each stage.
    pub features_per_stage: Vec<usize>,
    /// Downsampling stride of each stage, per axis.
    pub strides: Vec<[usize; 3]>,
    /// Bytes per activation element (2 for f16/bf16, 4 for f32).
    pub element_bytes: u64,
}

impl TileFootprint {
    /// The footprint of `architecture` on tiles of `patch_size` at `precision`.
    pub fn of(
        architecture: &ArchitectureConfig,
        patch_size: [usize; 3],
        precision: Precision,
    ) -> Self {
        Self {
            patch_size,
            input_channels: architecture.input_channels,
            num_classes: architecture.num_classes,
            features_per_stage: architecture.arch_kwargs.features_per_stage.clone(),
            strides: architecture.arch_kwargs.strides.clone(),
            element_bytes: match precision {
                Precision::F32 => 4,
                Precision::F16 | Precision::BF16 => 2,
            },
        }
    }

    /// Estimated peak bytes of one tile: every encoder skip kept for the decoder, plus at the
    /// largest stage the transient tensors of one block (concatenated skip, conv output, the
    /// f32 InstanceNorm output and its cast back), plus the input and the logits with their
    /// f32 copies for the accumulation.
    pub fn bytes_per_tile(&self) -> u64 {
        let b = self.element_bytes;
        let mut voxels: [u64; 3] = self.patch_size.map(|p| p as u64);
        let mut skips = 0u64;
        let mut largest_stage = 0u64;
        for (stage, &features) in self.features_per_stage.iter().enumerate() {
            if let Some(stride) = self.strides.get(stage) {
                for (v, &s) in voxels.iter_mut().zip(stride) {
                    *v = (*v / s.max(1) as u64).max(1);
                }
            }
            let elements = features as u64 * voxels.iter().product::<u64>();
            skips += elements * b;
            largest_stage = largest_stage.max(elements * (4 * b + 8));
        }
        let tile_voxels: u64 = self.patch_size.iter().map(|&p| p as u64).product();
        let input = self.input_channels as u64 * tile_voxels * (4 + b);
        let logits = self.num_classes as u64 * tile_voxels * (b + 8);
        skips + largest_stage + input + logits
    }
}

/// Tiles per network call for `free_bytes` of free device memory: what fits in
/// [`USABLE_FRACTION`] of the memory left after [`RESERVED_BYTES`], at least 1 (a single tile
/// is always tried) and at most [`MAX_BATCH_SIZE`].
///
/// ```
/// use totalsegmentator::models::batch_size::{batch_size_for_free_memory, TileFootprint};
///
/// let footprint = TileFootprint {
///     patch_size: [128, 128, 128],
///     input_channels: 1,
///     num_classes: 25,
///     features_per_stage: vec![32, 64, 128, 256, 320, 320],
///     strides: vec![[1, 1, 1], [2, 2, 2], [2, 2, 2], [2, 2, 2], [2, 2, 2], [2, 2, 2]],
///     element_bytes: 2,
/// };
/// assert_eq!(batch_size_for_free_memory(4 << 30, &footprint), 1);
/// assert_eq!(batch_size_for_free_memory(78 << 30, &footprint), 2);
/// ```
pub fn batch_size_for_free_memory(free_bytes: u64, footprint: &TileFootprint) -> usize {
    let usable = free_bytes.saturating_sub(RESERVED_BYTES) as f64 * USABLE_FRACTION;
    let per_tile = footprint.bytes_per_tile().max(1) as f64;
    ((usable / per_tile).floor() as usize).clamp(1, MAX_BATCH_SIZE)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn full_width(classes: usize, element_bytes: u64) -> TileFootprint {
        TileFootprint {
            patch_size: [128, 128, 128],
            input_channels: 1,
            num_classes: classes,
            features_per_stage: vec![32, 64, 128, 256, 320, 320],
            strides: vec![
                [1, 1, 1],
                [2, 2, 2],
                [2, 2, 2],
                [2, 2, 2],
                [2, 2, 2],
                [2, 2, 2],
            ],
            element_bytes,
        }
    }

    #[test]
    fn a_full_width_fp16_tile_costs_a_few_gib() {
        // Skips: 32*128^3 + 64*64^3 + 128*32^3 + 256*16^3 + 320*8^3 + 320*4^3 elements.
        let skips: u64 = 32 * 128u64.pow(3)
            + 64 * 64u64.pow(3)
            + 128 * 32u64.pow(3)
            + 256 * 16u64.pow(3)
            + 320 * 8u64.pow(3)
            + 320 * 4u64.pow(3);
        let v = 128u64.pow(3);
        let expected = skips * 2 + 32 * v * (4 * 2 + 8) + v * (4 + 2) + 25 * v * (2 + 8);
        assert_eq!(full_width(25, 2).bytes_per_tile(), expected);
        let gib = expected as f64 / (1u64 << 30) as f64;
        assert!((1.0..3.0).contains(&gib), "{gib} GiB");
    }

    #[test]
    fn the_batch_is_what_fits_the_usable_memory_within_the_cap() {
        for f in [full_width(25, 2), full_width(118, 4)] {
            let per_tile = f.bytes_per_tile() as f64;
            let sizes: Vec<usize> = [0u64, 4, 6, 8, 12, 16, 24, 40, 78, 139]
                .iter()
                .map(|gib| {
                    let free = gib << 30;
                    let size = batch_size_for_free_memory(free, &f);
                    let fits = (free.saturating_sub(RESERVED_BYTES) as f64 * USABLE_FRACTION
                        / per_tile)
                        .floor() as usize;
                    assert_eq!(size, fits.clamp(1, MAX_BATCH_SIZE), "{gib} GiB");
                    size
                })
                .collect();
            assert!(sizes.windows(2).all(|w| w[0] <= w[1]), "{sizes:?}");
            assert_eq!(sizes[0], 1);
            assert_eq!(*sizes.last().unwrap(), MAX_BATCH_SIZE);
        }
        // The 118-class f32 tile (about 4.6 GiB) is the memory-bound case: 8 GiB gives one.
        assert_eq!(batch_size_for_free_memory(8 << 30, &full_width(118, 4)), 1);
    }

    #[test]
    fn f32_and_more_classes_cost_more_per_tile() {
        let half = full_width(25, 2).bytes_per_tile();
        assert!(full_width(25, 4).bytes_per_tile() > half);
        assert!(full_width(118, 2).bytes_per_tile() > half);
        let smaller_patch = TileFootprint {
            patch_size: [64, 64, 64],
            ..full_width(25, 2)
        };
        assert!(smaller_patch.bytes_per_tile() * 6 < half);
    }

    #[test]
    fn too_little_memory_still_tries_one_tile() {
        assert_eq!(batch_size_for_free_memory(0, &full_width(118, 4)), 1);
        assert_eq!(
            batch_size_for_free_memory(RESERVED_BYTES, &full_width(2, 2)),
            1
        );
    }
}
