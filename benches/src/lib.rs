//! Bench helpers.

/// The value after `--name` on the command line (`--repeats 3` -> `Some("3")`).
///
/// ```
/// let args = ["bench", "--repeats", "3"].map(String::from);
/// assert_eq!(totalseg_benches::flag_value(&args, "--repeats"), Some("3"));
/// assert_eq!(totalseg_benches::flag_value(&args, "--backend"), None);
/// ```
pub fn flag_value<'a>(args: &'a [String], name: &str) -> Option<&'a str> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .map(String::as_str)
}
