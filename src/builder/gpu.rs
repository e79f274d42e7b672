//! Whether `--device gpu` can use CUDA, decided before Burn touches the GPU.
//!
//! burn-cuda (cubecl) panics when the CUDA driver or NVRTC is missing or the device fails to
//! initialise. The probe checks each of these itself (driver library, NVRTC library, `cuInit`,
//! the device number, free memory, then one tiny Burn operation under `catch_unwind`), and
//! [`decide_device`] turns its answer into a CPU fallback with a clear message.

use crate::builder::Device;

/// Below this much free GPU memory the run falls back to the CPU: the weights of a full-width
/// model (about 60 MiB in f16) plus one fp16 tile of activations need about a gigabyte.
pub const MIN_FREE_GPU_BYTES: u64 = 1 << 30;

/// What a successful CUDA probe found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CudaReport {
    /// Free device memory in bytes.
    pub free_bytes: u64,
    /// Total device memory in bytes.
    pub total_bytes: u64,
}

/// Why CUDA cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CudaUnusable {
    /// The binary was built without the `cuda` feature.
    #[error("this build has no GPU support (build with --features cuda)")]
    NotBuilt,
    /// `libcuda.so` could not be loaded.
    #[error(
        "no CUDA driver found (libcuda.so could not be loaded; is the NVIDIA driver installed?)"
    )]
    NoDriver,
    /// `libnvrtc.so` could not be loaded (Burn compiles its GPU kernels with NVRTC).
    #[error(
        "NVRTC not found (libnvrtc.so could not be loaded; install the CUDA toolkit's runtime \
         compiler or add its lib folder to LD_LIBRARY_PATH)"
    )]
    NoNvrtc,
    /// `cuInit` or a driver query failed.
    #[error("the CUDA driver failed to initialise: {0}")]
    DriverInit(String),
    /// The requested GPU number does not exist.
    #[error("GPU {index} requested but {count} CUDA device(s) found")]
    NoSuchDevice {
        /// Requested device number.
        index: usize,
        /// Devices present.
        count: usize,
    },
    /// Creating a context or the first Burn operation on the device failed.
    #[error("GPU {index} could not be used: {message}")]
    DeviceInit {
        /// Device number.
        index: usize,
        /// What failed.
        message: String,
    },
    /// Too little free memory for even one tile.
    #[error(
        "GPU {index} has only {} MiB free ({} MiB needed)",
        free_bytes >> 20,
        needed_bytes >> 20
    )]
    OutOfMemory {
        /// Device number.
        index: usize,
        /// Free bytes found.
        free_bytes: u64,
        /// Bytes needed.
        needed_bytes: u64,
    },
}

/// Where the networks will run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeviceDecision {
    /// On the CPU; `fallback` says why when a GPU was requested.
    Cpu {
        /// The warning to print when the GPU was requested but cannot be used.
        fallback: Option<String>,
    },
    /// On CUDA device `index`.
    Cuda {
        /// Device number.
        index: usize,
        /// Free memory at probe time.
        free_bytes: u64,
    },
}

/// Decides where to run `requested`: the CPU stays the CPU; a GPU is used only when `probe`
/// (called with the GPU number) reports a usable device with at least
/// [`MIN_FREE_GPU_BYTES`] free, else the CPU with a message saying why.
pub fn decide_device(
    requested: Device,
    probe: impl FnOnce(usize) -> Result<CudaReport, CudaUnusable>,
) -> DeviceDecision {
    let index = match requested {
        Device::Cpu => return DeviceDecision::Cpu { fallback: None },
        Device::Gpu(index) => index,
    };
    let checked = probe(index).and_then(|report| {
        if report.free_bytes < MIN_FREE_GPU_BYTES {
            Err(CudaUnusable::OutOfMemory {
                index,
                free_bytes: report.free_bytes,
                needed_bytes: MIN_FREE_GPU_BYTES,
            })
        } else {
            Ok(report)
        }
    });
    match checked {
        Ok(report) => DeviceDecision::Cuda {
            index,
            free_bytes: report.free_bytes,
        },
        Err(why) => DeviceDecision::Cpu {
            fallback: Some(format!(
                "--device gpu:{index} requested but CUDA is not usable: {why}; running on the CPU"
            )),
        },
    }
}

/// Probes CUDA device `index` (driver, NVRTC, device, free memory, one Burn kernel) without
/// letting a missing library or a failing driver panic.
#[cfg(feature = "cuda")]
pub fn probe_cuda(index: usize) -> Result<CudaReport, CudaUnusable> {
    use std::panic::{catch_unwind, AssertUnwindSafe};
    // A panic inside cudarc or cubecl is an answer here, not a crash: keep its message off
    // the terminal while probing.
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let result = catch_unwind(AssertUnwindSafe(|| probe_cuda_unguarded(index)));
    std::panic::set_hook(hook);
    match result {
        Ok(result) => result,
        Err(panic) => Err(CudaUnusable::DeviceInit {
            index,
            message: crate::models::panic_message(panic.as_ref()),
        }),
    }
}

#[cfg(feature = "cuda")]
fn probe_cuda_unguarded(index: usize) -> Result<CudaReport, CudaUnusable> {
    use burn::tensor::{Tensor, TensorData};

    let report = super::cuda_driver::probe_driver(index)?;
    // One kernel through Burn: NVRTC compiles it, the runtime launches it, the result comes
    // back. This is where an unsupported GPU or a broken toolkit shows.
    let device = burn_cuda::CudaDevice { index };
    let x = Tensor::<burn_cuda::Cuda, 1>::from_data(TensorData::from([1.0f32, 2.0]), &device);
    let y = (x + 1.0).into_data().convert::<f32>();
    if y.as_slice::<f32>().ok() != Some(&[2.0, 3.0][..]) {
        return Err(CudaUnusable::DeviceInit {
            index,
            message: format!("a test kernel returned {y:?} instead of [2, 3]"),
        });
    }
    Ok(report)
}

/// Points cubecl's on-disk caches (compiled PTX and autotune results) at `dir`, unless a
/// `cubecl.toml` or the environment already chose one. Without this the PTX is not cached at all
/// and the autotune results land in whichever Cargo project the working directory is in, so
/// every run would compile and tune the network's kernels again (minutes on a fresh machine).
/// cubecl creates the folder when it first writes. Must run before the first CUDA operation
/// (the probe's included); later calls do nothing.
#[cfg(feature = "cuda")]
pub fn configure_kernel_caches(dir: &std::path::Path) {
    use cubecl::config::cache::CacheConfig;
    use cubecl::config::{CubeClRuntimeConfig, RuntimeConfig};
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let mut config = CubeClRuntimeConfig::from_current_dir().override_from_env();
        if config.compilation.cache.is_none() {
            config.compilation.cache = Some(CacheConfig::File(dir.to_path_buf()));
        }
        if matches!(config.autotune.cache, CacheConfig::Target) {
            config.autotune.cache = CacheConfig::File(dir.to_path_buf());
        }
        // `set` panics when cubecl has read its configuration already (a second Segmenter in
        // the same process): the first one's caches stay.
        let hook = std::panic::take_hook();
        std::panic::set_hook(Box::new(|_| {}));
        let _ = std::panic::catch_unwind(|| CubeClRuntimeConfig::set(config));
        std::panic::set_hook(hook);
    });
}

/// Whether `dir` holds no kernel cache yet (missing or empty): the run about to start will
/// compile and tune every kernel, which took minutes on one CPU core on an H200.
pub fn kernel_cache_is_empty(dir: &std::path::Path) -> bool {
    std::fs::read_dir(dir).map_or(true, |mut entries| entries.next().is_none())
}

/// The probe of a build without the `cuda` feature.
#[cfg(not(feature = "cuda"))]
pub fn probe_cuda(_index: usize) -> Result<CudaReport, CudaUnusable> {
    Err(CudaUnusable::NotBuilt)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(free_gib: u64) -> impl FnOnce(usize) -> Result<CudaReport, CudaUnusable> {
        move |_| {
            Ok(CudaReport {
                free_bytes: free_gib << 30,
                total_bytes: 80 << 30,
            })
        }
    }

    #[test]
    fn a_missing_or_empty_kernel_cache_is_empty() {
        let dir = std::env::temp_dir().join(format!("totalseg-kcache-{}", std::process::id()));
        assert!(kernel_cache_is_empty(&dir));
        std::fs::create_dir_all(&dir).expect("temp dir");
        assert!(kernel_cache_is_empty(&dir));
        std::fs::write(dir.join("ptx"), b"x").expect("temp file");
        assert!(!kernel_cache_is_empty(&dir));
        std::fs::remove_dir_all(&dir).expect("clean up");
    }

    #[test]
    fn cpu_never_probes() {
        let decision = decide_device(Device::Cpu, |_| panic!("the CPU must not probe CUDA"));
        assert_eq!(decision, DeviceDecision::Cpu { fallback: None });
    }

    #[test]
    fn a_usable_gpu_is_used_with_its_free_memory() {
        let decision = decide_device(Device::Gpu(1), ok(70));
        assert_eq!(
            decision,
            DeviceDecision::Cuda {
                index: 1,
                free_bytes: 70 << 30
            }
        );
    }

    #[test]
    fn the_probe_gets_the_requested_gpu_number() {
        let mut seen = None;
        let _ = decide_device(Device::Gpu(3), |i| {
            seen = Some(i);
            Err(CudaUnusable::NoSuchDevice { index: i, count: 1 })
        });
        assert_eq!(seen, Some(3));
    }

    #[test]
    fn every_unusable_reason_falls_back_to_the_cpu_with_its_cause() {
        let reasons = [
            (CudaUnusable::NotBuilt, "--features cuda"),
            (CudaUnusable::NoDriver, "libcuda.so"),
            (CudaUnusable::NoNvrtc, "libnvrtc.so"),
            (
                CudaUnusable::DriverInit("CUDA_ERROR_NO_DEVICE".into()),
                "CUDA_ERROR_NO_DEVICE",
            ),
            (
                CudaUnusable::NoSuchDevice { index: 0, count: 0 },
                "0 CUDA device(s)",
            ),
            (
                CudaUnusable::DeviceInit {
                    index: 0,
                    message: "CUDA_ERROR_OUT_OF_MEMORY".into(),
                },
                "CUDA_ERROR_OUT_OF_MEMORY",
            ),
        ];
        for (reason, cause) in reasons {
            let decision = decide_device(Device::Gpu(0), move |_| Err(reason));
            match decision {
                DeviceDecision::Cpu {
                    fallback: Some(message),
                } => {
                    assert!(message.contains(cause), "{message}");
                    assert!(message.contains("running on the CPU"), "{message}");
                    assert!(message.contains("gpu:0"), "{message}");
                }
                other => panic!("expected a CPU fallback, got {other:?}"),
            }
        }
    }

    #[test]
    fn too_little_free_memory_falls_back() {
        let decision = decide_device(Device::Gpu(0), |_| {
            Ok(CudaReport {
                free_bytes: 300 << 20,
                total_bytes: 80 << 30,
            })
        });
        match decision {
            DeviceDecision::Cpu {
                fallback: Some(message),
            } => assert!(message.contains("300 MiB free"), "{message}"),
            other => panic!("expected a CPU fallback, got {other:?}"),
        }
        assert!(matches!(
            decide_device(Device::Gpu(0), ok(1)),
            DeviceDecision::Cuda { .. }
        ));
    }

    #[cfg(not(feature = "cuda"))]
    #[test]
    fn a_build_without_cuda_reports_it() {
        assert_eq!(probe_cuda(0), Err(CudaUnusable::NotBuilt));
    }
}
