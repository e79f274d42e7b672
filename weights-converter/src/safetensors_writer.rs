//! Streaming safetensors writer: the header is known from the tensor shapes before any data
//! is read, so each tensor is read, converted and written in turn and only one is in memory.

use std::io::Write;

use half::f16;
use half::slice::HalfFloatSliceExt;

/// dtype of the written tensors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OutputDType {
    /// 32-bit float (the default; bit-exact copy of nnU-Net's fp32 weights).
    #[default]
    F32,
    /// 16-bit float, rounded to nearest even (as torch's `.half()`).
    F16,
}

impl OutputDType {
    /// Bytes per element.
    pub fn size(self) -> usize {
        match self {
            OutputDType::F32 => 4,
            OutputDType::F16 => 2,
        }
    }

    /// The safetensors dtype tag (`F32` / `F16`).
    pub fn safetensors_tag(self) -> &'static str {
        match self {
            OutputDType::F32 => "F32",
            OutputDType::F16 => "F16",
        }
    }

    /// The name used on the command line and in `model.json` (`f32` / `f16`).
    pub fn name(self) -> &'static str {
        match self {
            OutputDType::F32 => "f32",
            OutputDType::F16 => "f16",
        }
    }
}

impl std::str::FromStr for OutputDType {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "f32" | "float32" => Ok(OutputDType::F32),
            "f16" | "float16" | "half" => Ok(OutputDType::F16),
            other => Err(format!("unknown dtype {other:?} (expected f32 or f16)")),
        }
    }
}

/// A tensor that will be written: its output name and shape.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedTensor {
    /// Output name.
    pub name: String,
    /// Shape.
    pub shape: Vec<usize>,
}

/// The safetensors header (8-byte little-endian length + JSON padded with spaces to a
/// multiple of 8), for `tensors` laid out back to back in the given order.
pub fn header_bytes(
    tensors: &[PlannedTensor],
    dtype: OutputDType,
    metadata: &[(&str, &str)],
) -> Vec<u8> {
    let json_str = |s: &str| serde_json::Value::from(s).to_string();
    let mut json = String::from("{\"__metadata__\":{");
    for (i, (key, value)) in metadata.iter().enumerate() {
        if i > 0 {
            json.push(',');
        }
        json.push_str(&format!("{}:{}", json_str(key), json_str(value)));
    }
    json.push('}');
    let mut offset = 0usize;
    for t in tensors {
        let bytes = t.shape.iter().product::<usize>() * dtype.size();
        let shape: Vec<String> = t.shape.iter().map(usize::to_string).collect();
        json.push_str(&format!(
            ",{}:{{\"dtype\":\"{}\",\"shape\":[{}],\"data_offsets\":[{},{}]}}",
            json_str(&t.name),
            dtype.safetensors_tag(),
            shape.join(","),
            offset,
            offset + bytes
        ));
        offset += bytes;
    }
    json.push('}');
    while !json.len().is_multiple_of(8) {
        json.push(' ');
    }
    let mut out = Vec::with_capacity(8 + json.len());
    out.extend_from_slice(&(json.len() as u64).to_le_bytes());
    out.extend_from_slice(json.as_bytes());
    out
}

/// Appends `values` in `dtype`, little-endian.
pub fn encode_values(values: &[f32], dtype: OutputDType, out: &mut Vec<u8>) {
    out.clear();
    match dtype {
        OutputDType::F32 => {
            out.reserve(values.len() * 4);
            for v in values {
                out.extend_from_slice(&v.to_le_bytes());
            }
        }
        OutputDType::F16 => {
            let mut halves = vec![f16::ZERO; values.len()];
            halves.convert_from_f32_slice(values);
            out.reserve(values.len() * 2);
            for h in halves {
                out.extend_from_slice(&h.to_le_bytes());
            }
        }
    }
}

/// Writes a safetensors file to `out`: the header for `tensors`, then for each tensor in
/// order the values `fetch(i)` returns (which must have the planned element count).
pub fn write_safetensors<W: Write, E>(
    out: &mut W,
    tensors: &[PlannedTensor],
    dtype: OutputDType,
    metadata: &[(&str, &str)],
    mut fetch: impl FnMut(usize) -> Result<Vec<f32>, E>,
    io_error: impl Fn(std::io::Error) -> E,
) -> Result<u64, E> {
    let header = header_bytes(tensors, dtype, metadata);
    out.write_all(&header).map_err(&io_error)?;
    let mut written = header.len() as u64;
    let mut buffer = Vec::new();
    for (i, _) in tensors.iter().enumerate() {
        let values = fetch(i)?;
        encode_values(&values, dtype, &mut buffer);
        out.write_all(&buffer).map_err(&io_error)?;
        written += buffer.len() as u64;
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_is_aligned_and_contiguous() {
        let tensors = [
            PlannedTensor {
                name: "a\"b".into(),
                shape: vec![2, 3],
            },
            PlannedTensor {
                name: "c".into(),
                shape: vec![],
            },
        ];
        let header = header_bytes(&tensors, OutputDType::F16, &[("format", "x")]);
        let n = u64::from_le_bytes(header[..8].try_into().unwrap()) as usize;
        assert_eq!(n % 8, 0);
        assert_eq!(header.len(), 8 + n);
        let json: serde_json::Value = serde_json::from_slice(&header[8..]).unwrap();
        assert_eq!(json["a\"b"]["data_offsets"], serde_json::json!([0, 12]));
        assert_eq!(json["c"]["data_offsets"], serde_json::json!([12, 14]));
        assert_eq!(json["__metadata__"]["format"], "x");
    }

    #[test]
    fn f16_rounds_to_nearest_even() {
        let mut out = Vec::new();
        // 1 + 2^-11 lies exactly between two f16 values: ties to even (1.0).
        encode_values(
            &[1.0 + f32::powi(2.0, -11), 65520.0],
            OutputDType::F16,
            &mut out,
        );
        assert_eq!(out, [0x00, 0x3c, 0x00, 0x7c]);
    }
}
