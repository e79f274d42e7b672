//! Opt-in stage timings (`TOTALSEG_TIMINGS=1`): one `[timing]` line on stderr per pipeline
//! stage, so a slow run (a GPU bench, a huge CT) shows where its time went without a profiler.

use std::sync::OnceLock;
use std::time::Instant;

/// Whether `TOTALSEG_TIMINGS` is set to something other than empty or `0`.
pub fn enabled() -> bool {
    static ENABLED: OnceLock<bool> = OnceLock::new();
    *ENABLED
        .get_or_init(|| std::env::var("TOTALSEG_TIMINGS").is_ok_and(|v| !v.is_empty() && v != "0"))
}

/// Runs `work`, printing `[timing] <stage>: <seconds> s` when timings are enabled.
///
/// ```
/// let sum = totalsegmentator::timing::stage("sum", || 1 + 1);
/// assert_eq!(sum, 2);
/// ```
pub fn stage<T>(name: &str, work: impl FnOnce() -> T) -> T {
    if !enabled() {
        return work();
    }
    let start = Instant::now();
    let result = work();
    eprintln!("[timing] {name}: {:.3} s", start.elapsed().as_secs_f64());
    result
}

/// `bytes` in the largest binary unit that keeps the value at least 1, one decimal.
///
/// ```
/// assert_eq!(totalsegmentator::timing::format_bytes(3 << 29), "1.5 GiB");
/// assert_eq!(totalsegmentator::timing::format_bytes(512), "512.0 B");
/// ```
pub fn format_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}
