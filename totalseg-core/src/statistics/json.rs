//! `json.dump(stats, f, indent=4)` as Python writes it: floats in `repr` form, ASCII
//! escapes, four-space indentation, no trailing newline.

use std::fmt::Write as _;

/// Python's `repr(float)`: the shortest round-tripping digits, fixed notation for decimal
/// exponents in [-4, 16), otherwise `d.ddde+XX` with at least two exponent digits.
///
/// ```
/// use totalseg_core::statistics::python_float_repr;
/// assert_eq!(python_float_repr(260010.0), "260010.0");
/// assert_eq!(python_float_repr(33.05909), "33.05909");
/// assert_eq!(python_float_repr(1e-5), "1e-05");
/// assert_eq!(python_float_repr(1e16), "1e+16");
/// assert_eq!(python_float_repr(-0.0), "-0.0");
/// ```
pub fn python_float_repr(value: f64) -> String {
    if value.is_nan() {
        return "NaN".to_string();
    }
    if value.is_infinite() {
        return if value > 0.0 { "Infinity" } else { "-Infinity" }.to_string();
    }
    if value == 0.0 {
        return if value.is_sign_negative() {
            "-0.0"
        } else {
            "0.0"
        }
        .to_string();
    }
    // Rust's `{:e}` prints the shortest round-trip digits, like Python's repr.
    let scientific = format!("{:e}", value.abs());
    let (mantissa, exponent) = scientific
        .split_once('e')
        .unwrap_or((scientific.as_str(), "0"));
    let exponent: i32 = exponent.parse().unwrap_or(0);
    let digits: String = mantissa.chars().filter(|c| *c != '.').collect();
    let sign = if value < 0.0 { "-" } else { "" };
    if (-4..16).contains(&exponent) {
        let point = exponent + 1; // digits before the decimal point
        let body = if point <= 0 {
            format!("0.{}{}", "0".repeat((-point) as usize), digits)
        } else if point as usize >= digits.len() {
            format!("{}{}.0", digits, "0".repeat(point as usize - digits.len()))
        } else {
            let (int, frac) = digits.split_at(point as usize);
            format!("{int}.{frac}")
        };
        format!("{sign}{body}")
    } else {
        let (first, rest) = digits.split_at(1);
        let mantissa = if rest.is_empty() {
            first.to_string()
        } else {
            format!("{first}.{rest}")
        };
        let exp_sign = if exponent < 0 { '-' } else { '+' };
        format!("{sign}{mantissa}e{exp_sign}{:02}", exponent.abs())
    }
}

/// Python's `round(value, digits)` for floats: the decimal correctly rounded from the exact
/// binary value, ties to even (Rust's fixed-precision formatting does the same), read back.
///
/// ```
/// use totalseg_core::statistics::python_round;
/// assert_eq!(python_round(2.675, 2), 2.67); // 2.67499999... in binary
/// assert_eq!(python_round(0.125, 2), 0.12); // an exact tie: to even
/// ```
pub fn python_round(value: f64, digits: usize) -> f64 {
    if !value.is_finite() {
        return value;
    }
    format!("{value:.digits$}").parse().unwrap_or(value)
}

/// A JSON object as `json.dump(..., indent=4)` writes it from its already indented
/// `"key": value` lines: `{}` when there are none.
pub fn python_json_object(items: &[String], closing_indent: &str) -> String {
    if items.is_empty() {
        "{}".to_string()
    } else {
        format!("{{\n{}\n{closing_indent}}}", items.join(",\n"))
    }
}

/// A JSON string literal as Python's `json.dumps` (with `ensure_ascii=True`) writes it.
pub fn python_json_string(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for ch in text.chars() {
        match ch {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{08}' => out.push_str("\\b"),
            '\u{0c}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 || (c as u32) > 0x7e => {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    let _ = write!(out, "\\u{unit:04x}");
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Indentation of a structure's keys, of the items of its lists, and of theirs (indent=4).
const KEY: &str = "        ";
const ITEM: &str = "            ";
const INNER: &str = "                ";

/// The `--statistics_extra` keys of one structure as `json.dump(..., indent=4)` writes them
/// at nesting depth 2 (lists one item per line), each line starting with `,\n`.
pub(super) fn extra_metrics_fields(extra: &super::ExtraMetrics) -> String {
    let mut out = String::new();
    let _ = write!(out, ",\n{KEY}\"n_voxels\": {}", extra.n_voxels);
    for (key, value) in [
        ("intensity_std", extra.intensity_std),
        ("intensity_min", extra.intensity_min),
        ("intensity_max", extra.intensity_max),
    ] {
        let _ = write!(out, ",\n{KEY}\"{key}\": {}", python_float_repr(value));
    }
    let centroid = extra
        .centroid_vox
        .map(|c| c.map(|v| format!("{ITEM}{}", python_float_repr(v))));
    push_list(
        &mut out,
        "centroid_vox",
        centroid.as_ref().map(|c| c.as_slice()),
    );
    let bbox = (extra.bbox_vox)
        .map(|b| b.map(|[lo, hi]| format!("{ITEM}[\n{INNER}{lo},\n{INNER}{hi}\n{ITEM}]")));
    push_list(&mut out, "bbox_vox", bbox.as_ref().map(|b| b.as_slice()));
    out
}

/// `,\n        "key": [` the already indented `items` one per line `]`, or `null`.
fn push_list(out: &mut String, key: &str, items: Option<&[String]>) {
    let _ = match items {
        Some(items) => write!(out, ",\n{KEY}\"{key}\": [\n{}\n{KEY}]", items.join(",\n")),
        None => write!(out, ",\n{KEY}\"{key}\": null"),
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_round_matches_cpython() {
        // Values whose decimal expansion sits just below or above the half.
        assert_eq!(python_round(2.675, 2), 2.67); // 2.67499999...
        assert_eq!(python_round(1.005, 2), 1.0);
        assert_eq!(python_round(0.125, 2), 0.12); // exact tie: half to even
        assert_eq!(python_round(0.375, 2), 0.38);
        assert_eq!(python_round(-0.5, 0), -0.0);
        assert_eq!(python_round(73.216_4, 4), 73.2164);
    }
}
