//! Tensor descriptions read from a checkpoint, and turning their storage bytes into values.

use half::{bf16, f16};

/// Element type of a torch storage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StorageDType {
    /// `torch.float32` (`FloatStorage`).
    F32,
    /// `torch.float64` (`DoubleStorage`).
    F64,
    /// `torch.float16` (`HalfStorage`).
    F16,
    /// `torch.bfloat16` (`BFloat16Storage`).
    BF16,
    /// `torch.int64` (`LongStorage`).
    I64,
    /// `torch.int32` (`IntStorage`).
    I32,
    /// `torch.int16` (`ShortStorage`).
    I16,
    /// `torch.int8` (`CharStorage`).
    I8,
    /// `torch.uint8` (`ByteStorage`, `UntypedStorage`).
    U8,
    /// `torch.bool` (`BoolStorage`).
    Bool,
}

impl StorageDType {
    /// Bytes per element.
    pub fn size(self) -> usize {
        match self {
            StorageDType::F64 | StorageDType::I64 => 8,
            StorageDType::F32 | StorageDType::I32 => 4,
            StorageDType::F16 | StorageDType::BF16 | StorageDType::I16 => 2,
            StorageDType::I8 | StorageDType::U8 | StorageDType::Bool => 1,
        }
    }

    /// Whether this is a floating-point type (the only kind converted into model weights).
    pub fn is_float(self) -> bool {
        matches!(
            self,
            StorageDType::F32 | StorageDType::F64 | StorageDType::F16 | StorageDType::BF16
        )
    }

    /// The dtype of a legacy storage class name (`FloatStorage`) or a `torch.<dtype>` name.
    pub fn from_torch_name(name: &str) -> Option<Self> {
        Some(match name {
            "FloatStorage" | "float32" | "float" => StorageDType::F32,
            "DoubleStorage" | "float64" | "double" => StorageDType::F64,
            "HalfStorage" | "float16" | "half" => StorageDType::F16,
            "BFloat16Storage" | "bfloat16" => StorageDType::BF16,
            "LongStorage" | "int64" | "long" => StorageDType::I64,
            "IntStorage" | "int32" | "int" => StorageDType::I32,
            "ShortStorage" | "int16" | "short" => StorageDType::I16,
            "CharStorage" | "int8" => StorageDType::I8,
            "ByteStorage" | "UntypedStorage" | "uint8" => StorageDType::U8,
            "BoolStorage" | "bool" => StorageDType::Bool,
            _ => return None,
        })
    }
}

/// Byte order of the storage files (`<archive>/byteorder`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ByteOrder {
    /// `little` (what every x86/ARM machine writes; also the default when the entry is absent).
    Little,
    /// `big`.
    Big,
}

/// A tensor as the pickle describes it: a view into a storage entry.
#[derive(Debug, Clone, PartialEq)]
pub struct TensorRef {
    /// Storage key: the data lives in `<archive>/data/<key>`.
    pub storage_key: String,
    /// Element type of the storage (and of the tensor).
    pub dtype: StorageDType,
    /// Offset of element 0, in elements.
    pub storage_offset: usize,
    /// Shape.
    pub shape: Vec<usize>,
    /// Stride per axis, in elements.
    pub stride: Vec<usize>,
}

impl TensorRef {
    /// Number of elements (`None` on overflow).
    pub fn numel(&self) -> Option<usize> {
        self.shape.iter().try_fold(1usize, |n, &d| n.checked_mul(d))
    }

    /// Bytes of storage the view reaches (`None` on overflow).
    pub fn storage_bytes_needed(&self) -> Option<u64> {
        if self.shape.contains(&0) {
            return Some(0);
        }
        let mut last = self.storage_offset as u64;
        for (&size, &stride) in self.shape.iter().zip(&self.stride) {
            last = last.checked_add((size as u64 - 1).checked_mul(stride as u64)?)?;
        }
        last.checked_add(1)?.checked_mul(self.dtype.size() as u64)
    }

    /// Whether the view is a dense row-major block (so it can be copied in one piece).
    pub fn is_contiguous(&self) -> bool {
        let mut expected = 1usize;
        for (&size, &stride) in self.shape.iter().zip(&self.stride).rev() {
            if size != 1 && stride != expected {
                return false;
            }
            expected = expected.saturating_mul(size);
        }
        true
    }

    /// The tensor's values in row-major order, as `f32` (exact for f16/bf16, rounded to nearest
    /// for f64, as torch's `.float()` does).
    ///
    /// `storage` is the whole storage entry. Returns `None` when it is shorter than
    /// [`storage_bytes_needed`](Self::storage_bytes_needed), for non-float dtypes, and for
    /// expanded (stride-0) views holding more elements than the storage: no state dict has
    /// those, and refusing them bounds the allocation by the file size.
    pub fn to_f32(&self, storage: &[u8], order: ByteOrder) -> Option<Vec<f32>> {
        let size = self.dtype.size();
        let numel = self.numel()?;
        if (storage.len() as u64) < self.storage_bytes_needed()?
            || self.shape.len() != self.stride.len()
            || numel > storage.len() / size
        {
            return None;
        }
        let mut out = Vec::with_capacity(numel);
        if numel == 0 {
            return Some(out);
        }
        let read = element_reader(self.dtype, order)?;
        if self.is_contiguous() {
            let start = self.storage_offset * size;
            let bytes = storage.get(start..start + numel * size)?;
            out.extend(bytes.chunks_exact(size).map(read));
            return Some(out);
        }
        // Strided view: walk the multi-index in row-major order.
        let rank = self.shape.len();
        let mut index = vec![0usize; rank];
        let mut element = self.storage_offset;
        for _ in 0..numel {
            let at = element * size;
            out.push(read(storage.get(at..at + size)?));
            for axis in (0..rank).rev() {
                // Wrapping: the last step of an axis may overshoot; only in-bounds
                // positions are ever read.
                index[axis] += 1;
                element = element.wrapping_add(self.stride[axis]);
                if index[axis] < self.shape[axis] {
                    break;
                }
                element = element.wrapping_sub(self.stride[axis].wrapping_mul(self.shape[axis]));
                index[axis] = 0;
            }
        }
        Some(out)
    }
}

/// A function reading one element of `dtype` as `f32`; `None` for non-float types.
fn element_reader(dtype: StorageDType, order: ByteOrder) -> Option<fn(&[u8]) -> f32> {
    fn arr<const N: usize>(b: &[u8]) -> [u8; N] {
        let mut a = [0u8; N];
        a.copy_from_slice(&b[..N]);
        a
    }
    Some(match (dtype, order) {
        (StorageDType::F32, ByteOrder::Little) => |b| f32::from_le_bytes(arr(b)),
        (StorageDType::F32, ByteOrder::Big) => |b| f32::from_be_bytes(arr(b)),
        (StorageDType::F64, ByteOrder::Little) => |b| f64::from_le_bytes(arr(b)) as f32,
        (StorageDType::F64, ByteOrder::Big) => |b| f64::from_be_bytes(arr(b)) as f32,
        (StorageDType::F16, ByteOrder::Little) => |b| f16::from_le_bytes(arr(b)).to_f32(),
        (StorageDType::F16, ByteOrder::Big) => |b| f16::from_be_bytes(arr(b)).to_f32(),
        (StorageDType::BF16, ByteOrder::Little) => |b| bf16::from_le_bytes(arr(b)).to_f32(),
        (StorageDType::BF16, ByteOrder::Big) => |b| bf16::from_be_bytes(arr(b)).to_f32(),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f32_storage(values: &[f32]) -> Vec<u8> {
        values.iter().flat_map(|v| v.to_le_bytes()).collect()
    }

    fn view(offset: usize, shape: &[usize], stride: &[usize]) -> TensorRef {
        TensorRef {
            storage_key: "0".into(),
            dtype: StorageDType::F32,
            storage_offset: offset,
            shape: shape.to_vec(),
            stride: stride.to_vec(),
        }
    }

    #[test]
    fn reads_transposed_view_in_row_major_order() {
        let storage = f32_storage(&[0., 1., 2., 3., 4., 5.]);
        // A 2x3 matrix transposed to 3x2: element [i][j] = storage[j*3 + i].
        let t = view(0, &[3, 2], &[1, 3]);
        assert!(!t.is_contiguous());
        assert_eq!(
            t.to_f32(&storage, ByteOrder::Little).unwrap(),
            vec![0., 3., 1., 4., 2., 5.]
        );
    }

    #[test]
    fn honours_storage_offset_and_bounds() {
        let storage = f32_storage(&[9., 9., 1., 2.]);
        let t = view(2, &[2], &[1]);
        assert_eq!(t.storage_bytes_needed(), Some(16));
        assert_eq!(t.to_f32(&storage, ByteOrder::Little).unwrap(), vec![1., 2.]);
        let too_far = view(3, &[2], &[1]);
        assert_eq!(too_far.to_f32(&storage, ByteOrder::Little), None);
    }

    #[test]
    fn broadcast_and_empty_views() {
        let storage = f32_storage(&[7., 8., 9., 10.]);
        let t = view(0, &[2, 2], &[0, 1]);
        assert_eq!(
            t.to_f32(&storage, ByteOrder::Little).unwrap(),
            vec![7., 8., 7., 8.]
        );
        let larger_than_storage = view(0, &[4, 4], &[0, 1]);
        assert_eq!(
            larger_than_storage.to_f32(&storage, ByteOrder::Little),
            None
        );
        let empty = view(100, &[0, 3], &[3, 1]);
        assert_eq!(empty.storage_bytes_needed(), Some(0));
        assert_eq!(
            empty.to_f32(&[], ByteOrder::Little).unwrap(),
            Vec::<f32>::new()
        );
    }

    #[test]
    fn big_endian_half_storage() {
        let t = TensorRef {
            dtype: StorageDType::F16,
            ..view(0, &[2], &[1])
        };
        let storage: Vec<u8> = [f16::from_f32(1.5), f16::from_f32(-2.0)]
            .iter()
            .flat_map(|v| v.to_be_bytes())
            .collect();
        assert_eq!(t.to_f32(&storage, ByteOrder::Big).unwrap(), vec![1.5, -2.0]);
    }

    #[test]
    fn overflowing_views_are_rejected() {
        let t = view(usize::MAX, &[2], &[usize::MAX]);
        assert_eq!(t.storage_bytes_needed(), None);
        assert_eq!(t.to_f32(&[0; 8], ByteOrder::Little), None);
    }
}
