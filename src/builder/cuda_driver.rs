//! The few CUDA driver calls the GPU probe needs, through `dlopen` so that a machine without
//! the NVIDIA driver gets an error value instead of a loader failure or a panic (cudarc, under
//! burn-cuda, panics when it cannot find `libcuda.so`). Compiled in every build, so the "no
//! driver" answer is tested on machines without a GPU.

use std::ffi::{c_char, c_int, c_uint, c_void, CStr, CString};

use super::gpu::{CudaReport, CudaUnusable};

const RTLD_NOW: c_int = 2;

extern "C" {
    fn dlopen(filename: *const c_char, flag: c_int) -> *mut c_void;
    fn dlsym(handle: *mut c_void, symbol: *const c_char) -> *mut c_void;
    fn dlclose(handle: *mut c_void) -> c_int;
}

/// Names the driver library goes by.
pub const DRIVER_LIBRARIES: &[&str] = &["libcuda.so.1", "libcuda.so"];

/// Names NVRTC goes by (unversioned, then the CUDA 13, 12 and 11 sonames).
pub const NVRTC_LIBRARIES: &[&str] = &[
    "libnvrtc.so",
    "libnvrtc.so.13",
    "libnvrtc.so.12",
    "libnvrtc.so.11.2",
    "libnvrtc.so.11.1",
    "libnvrtc.so.11.0",
];

/// A loaded shared library (never unloaded: the driver must stay mapped while CUDA runs).
struct Library(*mut c_void);

impl Library {
    /// The first of `names` that loads.
    fn open_any(names: &[&str]) -> Option<Library> {
        names.iter().find_map(|name| {
            let name = CString::new(*name).ok()?;
            // SAFETY: dlopen with a valid C string; a null result means "not found".
            let handle = unsafe { dlopen(name.as_ptr(), RTLD_NOW) };
            (!handle.is_null()).then_some(Library(handle))
        })
    }

    fn symbol(&self, name: &str) -> Result<*mut c_void, CudaUnusable> {
        let c_name = CString::new(name)
            .map_err(|_| CudaUnusable::DriverInit(format!("bad symbol name {name}")))?;
        // SAFETY: the handle came from dlopen and is never closed.
        let symbol = unsafe { dlsym(self.0, c_name.as_ptr()) };
        if symbol.is_null() {
            Err(CudaUnusable::DriverInit(format!(
                "the CUDA driver has no {name} (driver too old?)"
            )))
        } else {
            Ok(symbol)
        }
    }
}

/// Whether one of `names` can be loaded (the library is unloaded again).
pub fn library_present(names: &[&str]) -> bool {
    match Library::open_any(names) {
        Some(library) => {
            // SAFETY: closing the handle we just opened; nothing from it was used.
            unsafe { dlclose(library.0) };
            true
        }
        None => false,
    }
}

type CuResult = c_int;
type CuInit = unsafe extern "C" fn(c_uint) -> CuResult;
type CuDeviceGetCount = unsafe extern "C" fn(*mut c_int) -> CuResult;
type CuDeviceGet = unsafe extern "C" fn(*mut c_int, c_int) -> CuResult;
type CuPrimaryCtxRetain = unsafe extern "C" fn(*mut *mut c_void, c_int) -> CuResult;
type CuPrimaryCtxRelease = unsafe extern "C" fn(c_int) -> CuResult;
type CuCtxPushCurrent = unsafe extern "C" fn(*mut c_void) -> CuResult;
type CuCtxPopCurrent = unsafe extern "C" fn(*mut *mut c_void) -> CuResult;
type CuMemGetInfo = unsafe extern "C" fn(*mut usize, *mut usize) -> CuResult;
type CuGetErrorName = unsafe extern "C" fn(CuResult, *mut *const c_char) -> CuResult;

/// The driver entry points the probe uses.
struct Driver {
    library: Library,
}

impl Driver {
    fn load() -> Result<Driver, CudaUnusable> {
        Library::open_any(DRIVER_LIBRARIES)
            .map(|library| Driver { library })
            .ok_or(CudaUnusable::NoDriver)
    }

    /// `Err` with the driver's error name unless `code` is `CUDA_SUCCESS`.
    fn check(&self, code: CuResult, call: &str) -> Result<(), String> {
        if code == 0 {
            return Ok(());
        }
        let mut name: *const c_char = std::ptr::null();
        let named = self
            .library
            .symbol("cuGetErrorName")
            .ok()
            .map(|f| {
                // SAFETY: cuGetErrorName has this signature; it writes a static string.
                let f: CuGetErrorName = unsafe { std::mem::transmute(f) };
                unsafe { f(code, &mut name) }
            })
            .filter(|&r| r == 0 && !name.is_null())
            // SAFETY: the driver returned a NUL-terminated static string.
            .map(|_| {
                unsafe { CStr::from_ptr(name) }
                    .to_string_lossy()
                    .into_owned()
            });
        Err(format!(
            "{call} failed: {}",
            named.unwrap_or(format!("error {code}"))
        ))
    }

    /// `cuInit` and the number of devices.
    fn device_count(&self) -> Result<usize, CudaUnusable> {
        // SAFETY: the symbols have the driver API's documented signatures.
        let init: CuInit = unsafe { std::mem::transmute(self.library.symbol("cuInit")?) };
        let get_count: CuDeviceGetCount =
            unsafe { std::mem::transmute(self.library.symbol("cuDeviceGetCount")?) };
        self.check(unsafe { init(0) }, "cuInit")
            .map_err(CudaUnusable::DriverInit)?;
        let mut count: c_int = 0;
        self.check(unsafe { get_count(&mut count) }, "cuDeviceGetCount")
            .map_err(CudaUnusable::DriverInit)?;
        Ok(count.max(0) as usize)
    }

    /// Free and total memory of device `index`, through its primary context.
    fn memory(&self, index: usize) -> Result<(u64, u64), CudaUnusable> {
        let fail = |message: String| CudaUnusable::DeviceInit { index, message };
        // SAFETY: the symbols have the driver API's documented signatures.
        let (device_get, retain, release, push, pop, mem_info) = unsafe {
            (
                std::mem::transmute::<*mut c_void, CuDeviceGet>(
                    self.library.symbol("cuDeviceGet")?,
                ),
                std::mem::transmute::<*mut c_void, CuPrimaryCtxRetain>(
                    self.library.symbol("cuDevicePrimaryCtxRetain")?,
                ),
                std::mem::transmute::<*mut c_void, CuPrimaryCtxRelease>(
                    self.library.symbol("cuDevicePrimaryCtxRelease_v2")?,
                ),
                std::mem::transmute::<*mut c_void, CuCtxPushCurrent>(
                    self.library.symbol("cuCtxPushCurrent_v2")?,
                ),
                std::mem::transmute::<*mut c_void, CuCtxPopCurrent>(
                    self.library.symbol("cuCtxPopCurrent_v2")?,
                ),
                std::mem::transmute::<*mut c_void, CuMemGetInfo>(
                    self.library.symbol("cuMemGetInfo_v2")?,
                ),
            )
        };
        let ordinal = c_int::try_from(index).map_err(|_| fail("device number too large".into()))?;
        let mut device: c_int = 0;
        self.check(unsafe { device_get(&mut device, ordinal) }, "cuDeviceGet")
            .map_err(fail)?;
        let mut context: *mut c_void = std::ptr::null_mut();
        self.check(
            unsafe { retain(&mut context, device) },
            "cuDevicePrimaryCtxRetain",
        )
        .map_err(fail)?;
        let pushed = self.check(unsafe { push(context) }, "cuCtxPushCurrent");
        let (mut free, mut total) = (0usize, 0usize);
        let queried = pushed.and_then(|()| {
            let r = self.check(unsafe { mem_info(&mut free, &mut total) }, "cuMemGetInfo");
            let mut popped: *mut c_void = std::ptr::null_mut();
            // SAFETY: pops the context pushed above.
            unsafe { pop(&mut popped) };
            r
        });
        // SAFETY: balances the retain above (the primary context stays alive for Burn).
        unsafe { release(device) };
        queried.map_err(fail)?;
        Ok((free as u64, total as u64))
    }
}

/// Checks the driver library, NVRTC, `cuInit`, the device number and the free memory of CUDA
/// device `index`, in that order; the first failure is the answer.
pub fn probe_driver(index: usize) -> Result<CudaReport, CudaUnusable> {
    let driver = Driver::load()?;
    if !library_present(NVRTC_LIBRARIES) {
        return Err(CudaUnusable::NoNvrtc);
    }
    let count = driver.device_count()?;
    if index >= count {
        return Err(CudaUnusable::NoSuchDevice { index, count });
    }
    let (free_bytes, total_bytes) = driver.memory(index)?;
    Ok(CudaReport {
        free_bytes,
        total_bytes,
    })
}

/// Free memory of CUDA device `index` now; `None` when it cannot be read.
pub fn free_bytes(index: usize) -> Option<u64> {
    let driver = Driver::load().ok()?;
    driver.memory(index).ok().map(|(free, _)| free)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_library_that_does_not_exist_is_absent() {
        assert!(!library_present(&["libtotalseg-no-such-library.so.7"]));
    }

    #[test]
    fn a_library_that_exists_is_present() {
        // The C library is on every Linux machine this builds on.
        assert!(library_present(&["libc.so.6"]));
    }

    #[test]
    fn without_a_driver_the_probe_says_so() {
        // On a machine with the driver the probe goes further; the no-driver answer is only
        // checkable where the driver is missing.
        if !library_present(DRIVER_LIBRARIES) {
            assert_eq!(probe_driver(0), Err(CudaUnusable::NoDriver));
            assert_eq!(free_bytes(0), None);
        }
    }
}
