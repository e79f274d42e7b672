//! totalseg-core
