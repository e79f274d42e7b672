//! The floating-point precision a network runs in.

use burn::tensor::DType;

/// Element type of the network's convolutions and activations, chosen at load time.
///
/// InstanceNorm statistics (and the norm's affine parameters) are always computed in f32,
/// whatever the precision; this mirrors PyTorch autocast, which nnU-Net uses on GPUs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Precision {
    /// 32-bit floats (exact parity with PyTorch on CPU).
    #[default]
    F32,
    /// IEEE half precision (what nnU-Net uses on CUDA through autocast).
    F16,
    /// bfloat16, where the backend supports it.
    BF16,
}

impl Precision {
    /// The Burn dtype tensors are stored in at this precision.
    pub fn dtype(self) -> DType {
        match self {
            Precision::F32 => DType::F32,
            Precision::F16 => DType::F16,
            Precision::BF16 => DType::BF16,
        }
    }
}

impl std::fmt::Display for Precision {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Precision::F32 => "f32",
            Precision::F16 => "f16",
            Precision::BF16 => "bf16",
        })
    }
}

impl std::str::FromStr for Precision {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "f32" | "fp32" | "float32" => Ok(Precision::F32),
            "f16" | "fp16" | "float16" | "half" => Ok(Precision::F16),
            "bf16" | "bfloat16" => Ok(Precision::BF16),
            other => Err(format!(
                "unknown precision `{other}` (expected f32, f16 or bf16)"
            )),
        }
    }
}
