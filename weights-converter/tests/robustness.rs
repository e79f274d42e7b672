//! Every truncation and many random byte flips of a real nnU-Net checkpoint, and of a pickle:
//! the reader returns `Ok` or `Err`, never panics, and never returns altered weights.

mod common;

use std::io::{Cursor, Read};
use std::path::Path;

use common::{fixtures, model_folder};
use weights_converter::pickle::unpickle;
use weights_converter::torch::{NnUnetCheckpoint, TorchArchive};
use weights_converter::ConvertError;

/// Every float tensor of the checkpoint in `data`, as `(name, values)`.
fn read_all(data: &[u8]) -> Result<Vec<(String, Vec<f32>)>, ConvertError> {
    let path = Path::new("fuzzed.pth");
    let archive = TorchArchive::from_reader(path, Cursor::new(data), data.len() as u64)?;
    let mut checkpoint = NnUnetCheckpoint::from_archive(archive)?;
    let entries = checkpoint.network_weights.clone();
    let mut out = Vec::with_capacity(entries.len());
    for entry in entries {
        if entry.tensor.dtype.is_float() {
            let values = checkpoint.read_f32(&entry)?;
            out.push((entry.name, values));
        }
    }
    Ok(out)
}

fn checkpoint_bytes() -> Vec<u8> {
    let src = model_folder(&fixtures().join("converter/inherits_from"));
    std::fs::read(src.join("fold_0/checkpoint_final.pth")).unwrap()
}

/// xorshift64*: deterministic and dependency-free.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

#[test]
fn every_truncation_of_a_checkpoint_is_an_error() {
    let data = checkpoint_bytes();
    let reference = read_all(&data).unwrap();
    assert!(reference.len() > 10);
    for len in 0..data.len() {
        assert!(
            read_all(&data[..len]).is_err(),
            "truncation to {len} bytes was accepted"
        );
    }
}

#[test]
fn random_byte_flips_never_panic_or_alter_weights() {
    let data = checkpoint_bytes();
    let reference = read_all(&data).unwrap();
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let (mut accepted, mut rejected) = (0, 0);
    for _ in 0..2000 {
        let mut fuzzed = data.clone();
        for _ in 0..1 + rng.below(3) {
            let at = rng.below(fuzzed.len());
            fuzzed[at] ^= 1 << rng.below(8);
        }
        match read_all(&fuzzed) {
            Ok(values) => {
                // Flips the CRCs cannot see (zip padding, timestamps) must not change weights.
                assert_eq!(values, reference);
                accepted += 1;
            }
            Err(_) => rejected += 1,
        }
    }
    assert!(rejected > 0 && accepted + rejected == 2000);
}

fn pickle_bytes() -> Vec<u8> {
    let data = std::fs::read(fixtures().join("converter/exotic_tensors.pth")).unwrap();
    let mut zip = zip::ZipArchive::new(Cursor::new(data)).unwrap();
    let name = zip
        .file_names()
        .find(|n| n.ends_with("/data.pkl"))
        .unwrap()
        .to_owned();
    let mut pickle = Vec::new();
    zip.by_name(&name)
        .unwrap()
        .read_to_end(&mut pickle)
        .unwrap();
    pickle
}

#[test]
fn every_truncation_of_a_pickle_is_an_error() {
    let pickle = pickle_bytes();
    assert!(unpickle(&pickle).is_ok());
    for len in 0..pickle.len() {
        assert!(
            unpickle(&pickle[..len]).is_err(),
            "pickle truncated to {len} bytes was accepted"
        );
    }
}

#[test]
fn random_pickle_mutations_never_panic() {
    let pickle = pickle_bytes();
    let mut rng = Rng(42);
    for round in 0..5000 {
        let mut fuzzed = pickle.clone();
        for _ in 0..1 + rng.below(4) {
            let at = rng.below(fuzzed.len());
            if round % 2 == 0 {
                fuzzed[at] ^= 1 << rng.below(8);
            } else {
                fuzzed[at] = rng.next() as u8;
            }
        }
        // Whatever the machine makes of it, interpreting the result must not panic either.
        if let Ok(u) = unpickle(&fuzzed) {
            if let Some(weights) = u.heap.dict_get(&u.root, "network_weights") {
                for (_, v) in u.heap.dict_items(weights).unwrap_or_default() {
                    let _ = weights_converter::torch::tensor_ref(&u.heap, v);
                }
            }
            let _ = u.heap.describe(&u.root);
        }
    }
}
