//! File formats and storage: NIfTI reading/writing (with TotalSegmentator's label-map
//! extension) and the weights store (cache, download, conversion on first use).

pub mod nifti;
pub mod weights;
