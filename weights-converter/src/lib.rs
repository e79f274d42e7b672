//! weights-converter
