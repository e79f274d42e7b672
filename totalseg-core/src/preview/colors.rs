//! The structure colours of `preview.py`: `np.random.seed(1234)` then
//! `random_colors = np.random.rand(100, 4)`; the n-th structure of a group is drawn in the RGB
//! part of row n. NumPy's legacy generator is MT19937, so the table is computed here.

/// Number of rows of `random_colors`.
pub const PREVIEW_COLOR_COUNT: usize = 100;

/// The RGB colours (0..1) of `random_colors`, row by row.
pub fn preview_colors() -> Vec<[f64; 3]> {
    let mut rng = Mt19937::new(1234);
    (0..PREVIEW_COLOR_COUNT)
        .map(|_| {
            let rgba = [0; 4].map(|_| rng.next_f64());
            [rgba[0], rgba[1], rgba[2]]
        })
        .collect()
}

/// MT19937 as NumPy's `RandomState` runs it: `seed(int)` is `init_genrand`, and a double
/// is made of 27 + 26 random bits (`random_sample`).
struct Mt19937 {
    state: [u32; 624],
    index: usize,
}

impl Mt19937 {
    fn new(seed: u32) -> Mt19937 {
        let mut state = [0u32; 624];
        state[0] = seed;
        for i in 1..624 {
            let previous = state[i - 1];
            state[i] = 1_812_433_253u32
                .wrapping_mul(previous ^ (previous >> 30))
                .wrapping_add(i as u32);
        }
        Mt19937 { state, index: 624 }
    }

    fn twist(&mut self) {
        for i in 0..624 {
            let y = (self.state[i] & 0x8000_0000) | (self.state[(i + 1) % 624] & 0x7fff_ffff);
            let mut next = self.state[(i + 397) % 624] ^ (y >> 1);
            if y & 1 != 0 {
                next ^= 0x9908_b0df;
            }
            self.state[i] = next;
        }
        self.index = 0;
    }

    fn next_u32(&mut self) -> u32 {
        if self.index >= 624 {
            self.twist();
        }
        let mut y = self.state[self.index];
        self.index += 1;
        y ^= y >> 11;
        y ^= (y << 7) & 0x9d2c_5680;
        y ^= (y << 15) & 0xefc6_0000;
        y ^ (y >> 18)
    }

    fn next_f64(&mut self) -> f64 {
        let a = f64::from(self.next_u32() >> 5);
        let b = f64::from(self.next_u32() >> 6);
        (a * 67_108_864.0 + b) / 9_007_199_254_740_992.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colours_equal_numpy_seed_1234() {
        // np.random.seed(1234); r = np.random.rand(100, 4); repr(r[0]), repr(r[99])
        let colors = preview_colors();
        assert_eq!(colors.len(), 100);
        assert_eq!(
            colors[0],
            [0.1915194503788923, 0.6221087710398319, 0.4377277390071145]
        );
        assert_eq!(
            colors[99],
            [0.4733298760702601, 0.9025550260477352, 0.22599552633736475]
        );
    }
}
