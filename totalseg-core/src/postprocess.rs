//! postprocess
