//! pyradiomics' first-order features (`RadiomicsFirstOrder`, segment-based, bin width 25,
//! no voxel shift), with NumPy's arithmetic: pairwise sums, `percentile(method="linear")`,
//! `digitize` on `arange` bin edges.

use super::PixelType;
use crate::pairwise_sum::pairwise_sum;

/// Names in pyradiomics' output order (its `getFeatureNames`, sorted by method name).
pub(super) const FIRST_ORDER_NAMES: [&str; 18] = [
    "10Percentile",
    "90Percentile",
    "Energy",
    "Entropy",
    "InterquartileRange",
    "Kurtosis",
    "Maximum",
    "MeanAbsoluteDeviation",
    "Mean",
    "Median",
    "Minimum",
    "Range",
    "RobustMeanAbsoluteDeviation",
    "RootMeanSquared",
    "Skewness",
    "TotalEnergy",
    "Uniformity",
    "Variance",
];

/// pyradiomics' default `binWidth`.
const BIN_WIDTH: f64 = 25.0;

/// The 18 features, in [`FIRST_ORDER_NAMES`] order, of the `values` inside the mask (in the
/// C order of pyradiomics' `(z, y, x)` array, which fixes NumPy's summation order).
/// `spacing` is the image spacing (x, y, z); `pixel_type` the image's stored type, whose
/// arithmetic pyradiomics' binning uses.
pub(super) fn first_order_features(
    values: &[f64],
    spacing: [f64; 3],
    pixel_type: PixelType,
) -> [f64; 18] {
    let n = values.len() as f64;
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let minimum = sorted[0];
    let maximum = sorted[sorted.len() - 1];

    let squares: Vec<f64> = values.iter().map(|v| v * v).collect();
    let energy = pairwise_sum(&squares);
    let total_energy = energy * ((spacing[0] * spacing[1]) * spacing[2]);

    let (entropy, uniformity) = histogram_features(values, minimum, maximum, pixel_type);

    let p10 = percentile(&sorted, 10.0);
    let p90 = percentile(&sorted, 90.0);
    let iqr = percentile(&sorted, 75.0) - percentile(&sorted, 25.0);
    let median = median(&sorted);

    let mean = pairwise_sum(values) / n;
    let deviations: Vec<f64> = values.iter().map(|v| (v - mean).abs()).collect();
    let mean_absolute_deviation = pairwise_sum(&deviations) / n;

    // The voxels outside [p10, p90] become NaN, and NumPy's nan-reductions sum the whole
    // row with zeros in their place: the pairing of the sum keeps every position.
    let inside: Vec<bool> = values.iter().map(|&v| v >= p10 && v <= p90).collect();
    let kept: Vec<f64> = values
        .iter()
        .zip(&inside)
        .map(|(&v, &keep)| if keep { v } else { 0.0 })
        .collect();
    let kept_count = inside.iter().filter(|&&keep| keep).count() as f64;
    let kept_mean = pairwise_sum(&kept) / kept_count;
    let kept_deviations: Vec<f64> = values
        .iter()
        .zip(&inside)
        .map(|(&v, &keep)| if keep { (v - kept_mean).abs() } else { 0.0 })
        .collect();
    let robust_mad = pairwise_sum(&kept_deviations) / kept_count;

    let rms = (energy / n).sqrt();

    let moment = |power: f64| {
        let terms: Vec<f64> = values.iter().map(|v| (v - mean).powf(power)).collect();
        pairwise_sum(&terms) / n
    };
    let mut m2 = moment(2.0);
    let (mut m3, mut m4) = (moment(3.0), moment(4.0));
    if m2 == 0.0 {
        // pyradiomics: a flat region gives skewness and kurtosis 0.
        m2 = 1.0;
        (m3, m4) = (0.0, 0.0);
    }
    let skewness = m3 / m2.powf(1.5);
    let kurtosis = m4 / (m2 * m2);

    // np.nanstd(a) ** 2: the square of the square root of the variance.
    let centred: Vec<f64> = values.iter().map(|v| (v - mean) * (v - mean)).collect();
    let std = (pairwise_sum(&centred) / n).sqrt();
    let variance = std * std;

    [
        p10,
        p90,
        energy,
        entropy,
        iqr,
        kurtosis,
        maximum,
        mean_absolute_deviation,
        mean,
        median,
        minimum,
        maximum - minimum,
        robust_mad,
        rms,
        skewness,
        total_energy,
        uniformity,
        variance,
    ]
}

/// Entropy and uniformity of the grey levels binned as pyradiomics bins them:
/// `digitize(values, arange(min - min % 25, max + 50, 25))`, the bin edges computed in the
/// image's own type (integer or float32 arithmetic).
fn histogram_features(
    values: &[f64],
    minimum: f64,
    maximum: f64,
    pixel_type: PixelType,
) -> (f64, f64) {
    let (low, high) = match pixel_type {
        PixelType::Float32 => {
            let (min, max) = (minimum as f32, maximum as f32);
            let width = BIN_WIDTH as f32;
            (
                f64::from(min - python_mod_f32(min, width)),
                f64::from(max + 2.0 * width),
            )
        }
        // Integers are exact in f64 (CT values are far below 2^53).
        PixelType::Integer { .. } | PixelType::Float64 => (
            minimum - python_mod(minimum, BIN_WIDTH),
            maximum + 2.0 * BIN_WIDTH,
        ),
    };
    let edge_count = ((high - low) / BIN_WIDTH).ceil().max(0.0) as usize;
    let edges: Vec<f64> = if edge_count == 1 {
        vec![low - 0.5, low + 0.5]
    } else {
        (0..edge_count)
            .map(|i| low + i as f64 * BIN_WIDTH)
            .collect()
    };
    // digitize (right=False): the number of edges <= value.
    let mut counts = vec![0usize; edges.len() + 1];
    for &v in values {
        counts[edges.partition_point(|&e| e <= v)] += 1;
    }
    let n = values.len() as f64;
    // np.unique(..., return_counts=True): the occupied bins in ascending order.
    let p: Vec<f64> = counts
        .iter()
        .filter(|&&c| c > 0)
        .map(|&c| c as f64 / n)
        .collect();
    let entropy_terms: Vec<f64> = p.iter().map(|&p| p * (p + f64::EPSILON).log2()).collect();
    let squares: Vec<f64> = p.iter().map(|&p| p * p).collect();
    (-pairwise_sum(&entropy_terms), pairwise_sum(&squares))
}

/// Python's float `%` (the result takes the divisor's sign).
fn python_mod(a: f64, b: f64) -> f64 {
    let r = a % b;
    if r != 0.0 && ((r < 0.0) != (b < 0.0)) {
        r + b
    } else {
        r
    }
}

/// NumPy's float32 `%`, in float32.
fn python_mod_f32(a: f32, b: f32) -> f32 {
    let r = a % b;
    if r != 0.0 && ((r < 0.0) != (b < 0.0)) {
        r + b
    } else {
        r
    }
}

/// `np.percentile(values, q)` (method "linear") of ascending `sorted` values.
pub(super) fn percentile(sorted: &[f64], q: f64) -> f64 {
    let q = q / 100.0;
    let virtual_index = (sorted.len() - 1) as f64 * q;
    let previous = virtual_index.floor();
    let below = previous as usize;
    let above = (below + 1).min(sorted.len() - 1);
    let gamma = virtual_index - previous;
    let (a, b) = (sorted[below], sorted[above]);
    // NumPy's _lerp: from the nearer end.
    let diff = b - a;
    if gamma >= 0.5 {
        b - diff * (1.0 - gamma)
    } else {
        a + diff * gamma
    }
}

/// `np.median`: the middle value, or the mean of the two middle values.
fn median(sorted: &[f64]) -> f64 {
    let n = sorted.len();
    if n % 2 == 1 {
        sorted[n / 2]
    } else {
        (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_follow_numpy_linear_method() {
        // np.percentile([1, 2, 3, 4, 10], [10, 25, 75, 90]) = [1.4, 2.0, 4.0, 7.6]
        let v = [1.0, 2.0, 3.0, 4.0, 10.0];
        assert!((percentile(&v, 10.0) - 1.4).abs() < 1e-12);
        assert_eq!(percentile(&v, 25.0), 2.0);
        assert_eq!(percentile(&v, 75.0), 4.0);
        assert!((percentile(&v, 90.0) - 7.6).abs() < 1e-12);
        assert_eq!(median(&[1.0, 2.0, 4.0, 8.0]), 3.0);
    }

    #[test]
    fn python_modulo_takes_the_divisor_sign() {
        assert_eq!(python_mod(-121.0, 25.0), 4.0);
        assert_eq!(python_mod(121.0, 25.0), 21.0);
        assert_eq!(python_mod_f32(-125.0, 25.0), 0.0);
    }

    #[test]
    fn entropy_of_two_equal_bins_is_one_bit() {
        // -100 and -99 share the bin [-100, -75); 0 and 1 share [0, 25).
        let (entropy, uniformity) = histogram_features(
            &[-100.0, -99.0, 0.0, 1.0],
            -100.0,
            1.0,
            PixelType::Integer {
                min: -32768.0,
                max: 32767.0,
            },
        );
        assert!((entropy - 1.0).abs() < 1e-12);
        assert_eq!(uniformity, 0.5);
    }
}
