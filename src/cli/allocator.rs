//! glibc malloc settings for the command line: keep freed memory for reuse.
//!
//! By default glibc serves every block above its mmap threshold (adaptive, at most 32 MiB)
//! with a fresh `mmap` and unmaps it on `free`, and gives the top of the heap back to the
//! kernel once more than the trim threshold is free there. The CPU network allocates and frees
//! activations of tens to hundreds of MiB in every layer, so each one is page-faulted in and
//! zeroed by the kernel again: measured on `--fast` (2 cores), 1.4 M page faults and a quarter
//! of the CPU time in the kernel. With both thresholds at 2 GiB the freed blocks are reused:
//! 0.43 M faults (about the peak memory, touched once) and a fifth less wall time, with the
//! same peak memory; 5-part `total` 256 s -> 205 s (docs/benchmarks.md, "glibc malloc
//! thresholds").
//!
//! Only the binary does this: it changes the whole process, which a library must not decide
//! for its caller.

/// Set to `glibc` to keep glibc's own malloc settings (for comparing).
pub const ALLOCATOR_VARIABLE: &str = "TOTALSEG_MALLOC";

/// Both thresholds: the largest value `mallopt` takes (an `int`).
const KEEP_BELOW_BYTES: i32 = i32::MAX;

/// What [`keep_freed_memory_for_reuse`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AllocatorTuning {
    /// Both thresholds raised.
    Applied,
    /// Left alone: the user chose glibc's settings (named variable).
    UserChoice(&'static str),
    /// Not glibc (musl, macOS, Windows), or `mallopt` refused.
    Unavailable,
}

/// The environment variables by which a user sets malloc up themselves; any of them set means
/// hands off. (`glibc.malloc.` tunables in `GLIBC_TUNABLES` count, others do not.)
///
/// ```
/// use totalsegmentator::cli::allocator::{user_choice, ALLOCATOR_VARIABLE};
/// let env = |vars: &'static [(&'static str, &'static str)]| {
///     move |name: &str| vars.iter().find(|(n, _)| *n == name).map(|(_, v)| v.to_string())
/// };
/// assert_eq!(user_choice(env(&[])), None);
/// assert_eq!(user_choice(env(&[(ALLOCATOR_VARIABLE, "glibc")])), Some(ALLOCATOR_VARIABLE));
/// assert_eq!(user_choice(env(&[(ALLOCATOR_VARIABLE, "reuse")])), None);
/// assert_eq!(user_choice(env(&[("MALLOC_TRIM_THRESHOLD_", "0")])), Some("MALLOC_TRIM_THRESHOLD_"));
/// assert_eq!(
///     user_choice(env(&[("GLIBC_TUNABLES", "glibc.malloc.mmap_threshold=1")])),
///     Some("GLIBC_TUNABLES")
/// );
/// assert_eq!(user_choice(env(&[("GLIBC_TUNABLES", "glibc.pthread.rseq=0")])), None);
/// ```
pub fn user_choice(var: impl Fn(&str) -> Option<String>) -> Option<&'static str> {
    if var(ALLOCATOR_VARIABLE).is_some_and(|v| v.trim().eq_ignore_ascii_case("glibc")) {
        return Some(ALLOCATOR_VARIABLE);
    }
    for name in [
        "MALLOC_MMAP_THRESHOLD_",
        "MALLOC_TRIM_THRESHOLD_",
        "MALLOC_TOP_PAD_",
        "MALLOC_MMAP_MAX_",
    ] {
        if var(name).is_some() {
            return Some(name);
        }
    }
    if var("GLIBC_TUNABLES").is_some_and(|v| v.contains("glibc.malloc.")) {
        return Some("GLIBC_TUNABLES");
    }
    None
}

/// Raises glibc's mmap and trim thresholds to 2 GiB for this process, unless the user set
/// malloc up through the environment ([`user_choice`]). Call once, first thing in `main`.
pub fn keep_freed_memory_for_reuse() -> AllocatorTuning {
    if let Some(name) = user_choice(|name| std::env::var(name).ok()) {
        return AllocatorTuning::UserChoice(name);
    }
    raise_thresholds()
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn raise_thresholds() -> AllocatorTuning {
    use std::ffi::c_int;
    // glibc's <malloc.h>.
    const M_TRIM_THRESHOLD: c_int = -1;
    const M_MMAP_THRESHOLD: c_int = -3;
    extern "C" {
        fn mallopt(param: c_int, value: c_int) -> c_int;
    }
    // SAFETY: mallopt only changes malloc's parameters; it returns 1 on success, 0 on error.
    let applied = unsafe {
        mallopt(M_MMAP_THRESHOLD, KEEP_BELOW_BYTES) == 1
            && mallopt(M_TRIM_THRESHOLD, KEEP_BELOW_BYTES) == 1
    };
    if applied {
        AllocatorTuning::Applied
    } else {
        AllocatorTuning::Unavailable
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn raise_thresholds() -> AllocatorTuning {
    let _ = KEEP_BELOW_BYTES;
    AllocatorTuning::Unavailable
}

#[cfg(all(test, target_os = "linux", target_env = "gnu"))]
mod tests {
    use super::*;

    /// glibc accepts both values, and a 48 MiB block (above glibc's largest default mmap
    /// threshold, 32 MiB) freed and allocated again is then served from the heap without new
    /// page faults. 48 MiB, not more: a test runs on a thread of its own, whose malloc arena
    /// grows in heaps of 64 MiB and maps anything larger afresh in any case.
    #[test]
    fn freed_large_blocks_are_reused_without_page_faults() {
        assert_eq!(raise_thresholds(), AllocatorTuning::Applied);
        const BYTES: usize = 48 << 20;
        let touch = || {
            let mut block = vec![0u8; BYTES];
            for i in (0..BYTES).step_by(4096) {
                block[i] = 1;
            }
            std::hint::black_box(&block);
        };
        touch();
        let before = minor_faults();
        touch();
        let faults = minor_faults() - before;
        // Fresh from mmap: 12288 faults of 4 KiB pages. Reused: none of its own (other test
        // threads may fault meanwhile, hence the margin).
        assert!(
            faults < 4_000,
            "{faults} page faults on the second 48 MiB block"
        );
    }

    /// Minor page faults of this process so far (`/proc/self/stat`, field 10).
    fn minor_faults() -> u64 {
        let stat = std::fs::read_to_string("/proc/self/stat").expect("/proc/self/stat");
        let after_name = &stat[stat.rfind(')').expect("comm") + 2..];
        after_name
            .split_whitespace()
            .nth(7)
            .expect("minflt")
            .parse()
            .expect("a number")
    }
}
