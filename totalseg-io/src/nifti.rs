//! nifti
