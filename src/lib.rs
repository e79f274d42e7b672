//! TotalSegmentator in Rust.
