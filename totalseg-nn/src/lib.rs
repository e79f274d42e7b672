//! totalseg-nn
