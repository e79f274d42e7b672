//! Reading `model.safetensors`: memory-mapped, every tensor checked by name, shape and dtype.

use std::collections::{BTreeSet, HashSet};
use std::fs::File;
use std::path::{Path, PathBuf};

use burn::tensor::backend::Backend;
use burn::tensor::{DType, Tensor, TensorData};
use memmap2::Mmap;
use safetensors::{Dtype, SafeTensors};

use crate::config::{WeightDtype, MODEL_FORMAT, MODEL_FORMAT_VERSION};
use crate::error::NnError;

/// A memory-mapped `model.safetensors` whose header has been validated.
pub(crate) struct WeightFile {
    path: PathBuf,
    mmap: Mmap,
}

impl WeightFile {
    /// Maps the file and checks the header and the `format` metadata.
    pub(crate) fn open(path: &Path) -> Result<Self, NnError> {
        let io_err = |source| NnError::Io {
            path: path.to_path_buf(),
            source,
        };
        let file = File::open(path).map_err(io_err)?;
        // SAFETY: the map is read-only and lives only while the model is being loaded; the
        // converted model files are not modified by this process. A concurrent truncation by
        // another process is the one way to break this, as with any mmap-based reader.
        let mmap = unsafe { Mmap::map(&file) }.map_err(io_err)?;
        let weights = WeightFile {
            path: path.to_path_buf(),
            mmap,
        };
        weights.check_metadata()?;
        Ok(weights)
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Parses the header (cheap: the tensor data stays in the map).
    pub(crate) fn tensors(&self) -> Result<SafeTensors<'_>, NnError> {
        SafeTensors::deserialize(&self.mmap).map_err(|e| self.invalid(e.to_string()))
    }

    fn invalid(&self, reason: String) -> NnError {
        NnError::InvalidWeightsFile {
            path: self.path.clone(),
            reason,
        }
    }

    fn check_metadata(&self) -> Result<(), NnError> {
        let (_, metadata) =
            SafeTensors::read_metadata(&self.mmap).map_err(|e| self.invalid(e.to_string()))?;
        let info = metadata.metadata().as_ref();
        let get = |key: &str| info.and_then(|m| m.get(key)).map(String::as_str);
        if get("format") != Some(MODEL_FORMAT) {
            return Err(self.invalid(format!(
                "metadata `format` is {:?}, expected \"{MODEL_FORMAT}\"",
                get("format")
            )));
        }
        if get("format_version") != Some(&MODEL_FORMAT_VERSION.to_string()) {
            return Err(self.invalid(format!(
                "metadata `format_version` is {:?}, expected \"{MODEL_FORMAT_VERSION}\"",
                get("format_version")
            )));
        }
        Ok(())
    }
}

/// Where a fold's tensors come from.
enum Source<'a> {
    /// A `model.safetensors` file.
    File {
        tensors: &'a SafeTensors<'a>,
        path: &'a Path,
        file_dtype: WeightDtype,
    },
    /// Deterministic pseudo-random weights (benchmarks, tests): see [`random_values`].
    Random { state: u64 },
}

/// The tensors of one fold (`fold_<k>.` prefix), handed out to the network builders.
///
/// Remembers which names were taken, so that leftover tensors can be reported.
pub(crate) struct FoldWeights<'a, B: Backend> {
    source: Source<'a>,
    prefix: String,
    compute: DType,
    device: &'a B::Device,
    used: HashSet<String>,
}

impl<'a, B: Backend> FoldWeights<'a, B> {
    /// Tensors of `fold` from a weights file whose tensors are all `file_dtype`.
    pub(crate) fn from_file(
        tensors: &'a SafeTensors<'a>,
        path: &'a Path,
        fold: u32,
        file_dtype: WeightDtype,
        compute: DType,
        device: &'a B::Device,
    ) -> Self {
        Self {
            source: Source::File {
                tensors,
                path,
                file_dtype,
            },
            prefix: format!("fold_{fold}."),
            compute,
            device,
            used: HashSet::new(),
        }
    }

    /// Pseudo-random tensors of any requested shape, reproducible from `seed`.
    pub(crate) fn random(seed: u64, compute: DType, device: &'a B::Device) -> Self {
        Self {
            source: Source::Random { state: seed },
            prefix: String::new(),
            compute,
            device,
            used: HashSet::new(),
        }
    }

    /// The dtype convolutions run in.
    pub(crate) fn compute_dtype(&self) -> DType {
        self.compute
    }

    /// A convolution weight or bias, converted to the compute dtype.
    pub(crate) fn compute_tensor<const D: usize>(
        &mut self,
        name: &str,
        shape: [usize; D],
    ) -> Result<Tensor<B, D>, NnError> {
        self.tensor(name, shape, self.compute)
    }

    /// A normalisation parameter: always f32, since normalisation runs in f32.
    pub(crate) fn f32_tensor<const D: usize>(
        &mut self,
        name: &str,
        shape: [usize; D],
    ) -> Result<Tensor<B, D>, NnError> {
        self.tensor(name, shape, DType::F32)
    }

    /// Checks a tensor that exists in the file but is unused at inference
    /// (the deep-supervision heads), without loading it.
    pub(crate) fn check_unused(&mut self, name: &str, shape: &[usize]) -> Result<(), NnError> {
        match self.source {
            Source::File { .. } => self.view(name, shape).map(|_| ()),
            Source::Random { .. } => Ok(()),
        }
    }

    /// The full names taken so far.
    pub(crate) fn into_used(self) -> HashSet<String> {
        self.used
    }

    fn tensor<const D: usize>(
        &mut self,
        name: &str,
        shape: [usize; D],
        dtype: DType,
    ) -> Result<Tensor<B, D>, NnError> {
        let data = match &mut self.source {
            Source::Random { state } => {
                *state = state.wrapping_add(1);
                TensorData::new(random_values(name, &shape, *state), shape)
            }
            Source::File { .. } => decode(&self.view(name, &shape)?, shape),
        };
        Ok(Tensor::from_data(data, (self.device, dtype)))
    }

    /// Looks a tensor up in the file, checks shape and dtype, and marks it used.
    fn view(
        &mut self,
        name: &str,
        shape: &[usize],
    ) -> Result<safetensors::tensor::TensorView<'a>, NnError> {
        let full = format!("{}{name}", self.prefix);
        let Source::File {
            tensors,
            path,
            file_dtype,
        } = &self.source
        else {
            // Only reached through a programming error; report it as the tensor being absent.
            return Err(NnError::MissingTensor {
                path: Default::default(),
                name: full,
            });
        };
        let view = tensors.tensor(&full).map_err(|_| NnError::MissingTensor {
            path: path.to_path_buf(),
            name: full.clone(),
        })?;
        if view.shape() != shape {
            return Err(NnError::ShapeMismatch {
                path: path.to_path_buf(),
                name: full,
                expected: shape.to_vec(),
                found: view.shape().to_vec(),
            });
        }
        let expected = match file_dtype {
            WeightDtype::F32 => Dtype::F32,
            WeightDtype::F16 => Dtype::F16,
        };
        if view.dtype() != expected {
            return Err(NnError::DtypeMismatch {
                path: path.to_path_buf(),
                name: full,
                expected: format!("{expected:?}"),
                found: format!("{:?}", view.dtype()),
            });
        }
        self.used.insert(full);
        Ok(view)
    }
}

/// Little-endian f32 / f16 bytes (already checked against the declared dtype) to tensor data.
/// Copies element-wise, so the map's alignment does not matter.
fn decode<const D: usize>(
    view: &safetensors::tensor::TensorView<'_>,
    shape: [usize; D],
) -> TensorData {
    let bytes = view.data();
    match view.dtype() {
        Dtype::F16 => TensorData::new(
            bytes
                .chunks_exact(2)
                .map(|c| half::f16::from_le_bytes([c[0], c[1]]))
                .collect::<Vec<half::f16>>(),
            shape,
        ),
        _ => TensorData::new(
            bytes
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect::<Vec<f32>>(),
            shape,
        ),
    }
}

/// Values for a random-weights network that keep activations in a sane range: convolution
/// weights uniform with He variance (`2 / fan_in`), norm scales 1, biases and shifts 0.
fn random_values(name: &str, shape: &[usize], seed: u64) -> Vec<f32> {
    let numel: usize = shape.iter().product();
    if shape.len() == 1 {
        let value = if name.ends_with(".norm.weight") {
            1.0
        } else {
            0.0
        };
        return vec![value; numel];
    }
    // Conv weights are [out, in, k...], transposed conv weights [in, out, k...]: either way
    // the fan-in is the product of all but the first dimension (close enough for a transposed conv).
    let fan_in: usize = shape[1..].iter().product::<usize>().max(1);
    let bound = (6.0 / fan_in as f64).sqrt() as f32;
    // splitmix64: tiny, deterministic, plenty for benchmark weights.
    let mut state = seed ^ 0x9E37_79B9_7F4A_7C15;
    (0..numel)
        .map(|_| {
            state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = state;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^= z >> 31;
            let unit = (z >> 40) as f32 / (1u64 << 24) as f32;
            (2.0 * unit - 1.0) * bound
        })
        .collect()
}

/// Fails on the first (alphabetically) tensor in the file that no fold took.
pub(crate) fn check_all_used(
    tensors: &SafeTensors<'_>,
    path: &Path,
    used: &HashSet<String>,
) -> Result<(), NnError> {
    let leftover: BTreeSet<&str> = tensors
        .names()
        .into_iter()
        .filter(|n| !used.contains(*n))
        .collect();
    match leftover.into_iter().next() {
        Some(name) => Err(NnError::UnexpectedTensor {
            path: path.to_path_buf(),
            name: name.to_string(),
        }),
        None => Ok(()),
    }
}
