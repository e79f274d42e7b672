//! The frames of a DICOM SEG: the order highdicom gives the planes, its slice spacing and
//! decimal strings, and the bit packing.

use crate::dicom::geometry::cross;

/// highdicom's slice normal: column direction x row direction (its "DR" index convention),
/// i.e. the negated [`slice_normal`](crate::dicom::geometry).
pub fn highdicom_normal(orientation: &[f64; 6]) -> [f64; 3] {
    let [r0, r1, r2, c0, c1, c2] = *orientation;
    cross([c0, c1, c2], [r0, r1, r2])
}

/// The order highdicom gives the planes (`np.unique(distances, return_index=True)`):
/// ascending distance along [`highdicom_normal`]. `None` when two planes share a distance.
pub fn plane_order(distances: &[f64]) -> Option<Vec<usize>> {
    let mut order: Vec<usize> = (0..distances.len()).collect();
    order.sort_by(|&a, &b| distances[a].total_cmp(&distances[b]));
    let unique = order.windows(2).all(|w| distances[w[0]] != distances[w[1]]);
    unique.then_some(order)
}

/// highdicom's `get_volume_positions(...)[0]` for planes at `distances` (in the given
/// order): the mean step `(last - first) / (n - 1)` if every step is within 1 % of it,
/// else `None`.
pub fn regular_spacing(distances: &[f64]) -> Option<f64> {
    match distances.len() {
        0 => None,
        1 => Some(1.0),
        n => {
            let spacing = (distances[n - 1] - distances[0]) / (n - 1) as f64;
            let regular = distances
                .windows(2)
                .all(|w| ((w[1] - w[0]) - spacing).abs() <= 1e-2 * spacing.abs());
            regular.then_some(spacing)
        }
    }
}

/// pydicom's `format_number_as_ds` for the values a SEG holds (no scientific notation):
/// Python's `str(float)`, cut to 16 characters by rounding when longer.
pub fn format_ds(value: f64) -> String {
    let mut text = format!("{value}");
    if !text.contains('.') && !text.contains("inf") && !text.contains("NaN") {
        text.push_str(".0");
    }
    if text.len() <= 16 {
        return text;
    }
    let sign = usize::from(value < 0.0);
    let log = value.abs().log10();
    let decimals = if log >= 1.0 {
        14usize.saturating_sub(sign + log.floor() as usize)
    } else {
        14 - sign
    };
    format!("{value:.decimals$}")
}

/// Packs binary frames the way DICOM stores BitsAllocated = 1: pixels in frame order, one
/// bit each, the first pixel in the lowest bit; frames follow each other without padding,
/// and the whole is padded to an even number of bytes.
#[derive(Debug, Default)]
pub struct BitPacker {
    bytes: Vec<u8>,
    bits: usize,
}

impl BitPacker {
    /// Appends one frame's pixels.
    pub fn push_frame(&mut self, pixels: impl Iterator<Item = bool>) {
        for on in pixels {
            if self.bits.is_multiple_of(8) {
                self.bytes.push(0);
            }
            if on {
                if let Some(last) = self.bytes.last_mut() {
                    *last |= 1 << (self.bits % 8);
                }
            }
            self.bits += 1;
        }
    }

    /// The packed bytes, padded to an even length.
    pub fn finish(mut self) -> Vec<u8> {
        if !self.bytes.len().is_multiple_of(2) {
            self.bytes.push(0);
        }
        self.bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn planes_go_down_the_slice_normal() {
        // IOP (1,0,0, 0,1,0): highdicom's normal is -z, so the top slice comes first.
        let normal = highdicom_normal(&[1.0, 0.0, 0.0, 0.0, 1.0, 0.0]);
        assert_eq!(normal.map(|v| v + 0.0), [0.0, 0.0, -1.0]);
        let z = [-804.5, -802.5, -766.5];
        let d: Vec<f64> = z
            .iter()
            .map(|&z| crate::dicom::geometry::dot(normal, [0.0, 0.0, z]))
            .collect();
        assert_eq!(plane_order(&d), Some(vec![2, 1, 0]));
        assert_eq!(plane_order(&[1.0, 1.0]), None);
    }

    #[test]
    fn spacing_and_decimal_strings_as_highdicom_writes_them() {
        assert_eq!(regular_spacing(&[766.5, 768.5, 770.5]), Some(2.0));
        assert_eq!(regular_spacing(&[0.0, 1.0, 3.0]), None);
        assert_eq!(regular_spacing(&[3.0, 2.0, 1.0]), Some(-1.0));
        assert_eq!(format_ds(2.0), "2.0");
        assert_eq!(format_ds(0.9765625), "0.9765625");
        assert_eq!(format_ds(-1.5), "-1.5");
        // str(0.1 + 0.2) is 19 characters: cut to 14 decimals as pydicom does.
        assert_eq!(format_ds(0.1 + 0.2), "0.30000000000000");
        assert_eq!(format_ds(12.345678901234567), "12.3456789012346");
    }

    #[test]
    fn bits_pack_lowest_first_across_frames() {
        let mut packer = BitPacker::default();
        packer.push_frame([true, false, false, false, false, false].into_iter());
        packer.push_frame([false, false, false, true].into_iter());
        // bits: 1 0 0 0 0 0 | 0 0 0 1 -> byte0 = 0b0000_0001, byte1 bit 1 set.
        assert_eq!(packer.finish(), vec![0b0000_0001, 0b0000_0010]);
        let mut odd = BitPacker::default();
        odd.push_frame(std::iter::repeat_n(true, 9));
        assert_eq!(odd.finish(), vec![0xff, 0x01]);
    }
}
