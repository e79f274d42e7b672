//! totalseg-io
