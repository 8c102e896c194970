//! Choosing where to train. The training code is generic over dfdx's `Device`; this module
//! picks a concrete one at run time: `cpu`, `cuda` (only in builds with the `cuda` feature), or
//! `auto` = CUDA when built with it and a GPU answers, else the CPU.
//!
//! A `cuda` build loads the NVIDIA driver and the CUDA libraries only here, when a GPU is asked
//! for or probed (`cudalib.rs`), so it also starts and trains on machines without them. The
//! probe turns every way of not having a GPU into one sentence: no driver, a driver that sees
//! no GPU, missing NVRTC or cuBLAS, or NVRTC without the CUDA headers; cudarc's panics on
//! driver errors are caught without printing.

use dfdx::prelude::*;
use serde::Deserialize;

use crate::error::TrainError;
use crate::trainer::model::kernel::LayerKernel;

/// The device requested on the command line (`--device`): serde's names, `gpu` also meaning
/// `cuda`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DeviceRequest {
    #[default]
    Auto,
    Cpu,
    #[serde(alias = "gpu")]
    Cuda,
}

/// Work to run on whichever device was chosen.
pub trait DeviceJob {
    type Output;
    /// `name` is `cpu` or `cuda:0`; `note` explains the choice (e.g. a fallback).
    fn run<D: LayerKernel<f32>>(self, dev: D, name: &str, note: Option<&str>) -> Self::Output;
}

/// Whether this binary was built with CUDA support.
pub const CUDA_BUILT: bool = cfg!(feature = "cuda");

/// Picks the device and runs `job` on it.
pub fn dispatch<J: DeviceJob>(request: DeviceRequest, job: J) -> Result<J::Output, TrainError> {
    match request {
        DeviceRequest::Cpu => Ok(job.run(Cpu::default(), "cpu", None)),
        DeviceRequest::Cuda => match cuda::open() {
            Ok(dev) => Ok(cuda::run(dev, job, None)),
            Err(why) => Err(TrainError::Device(why)),
        },
        DeviceRequest::Auto => match cuda::open() {
            Ok(dev) => Ok(cuda::run(dev, job, Some("auto: a CUDA GPU answered"))),
            Err(why) => {
                let note = format!("auto: {why}");
                Ok(job.run(Cpu::default(), "cpu", Some(&note)))
            }
        },
    }
}

/// Refuses a request that cannot be met, before any work or output: `cuda` where this build
/// has no CUDA or no usable GPU answers (the same reason `dispatch` would give). `auto` and
/// `cpu` always pass.
pub fn check(request: DeviceRequest) -> Result<(), TrainError> {
    match request {
        DeviceRequest::Cuda => cuda::check().map_err(TrainError::Device),
        DeviceRequest::Auto | DeviceRequest::Cpu => Ok(()),
    }
}

/// Runs `f`, turning a panic into `Err(its message)` without the panic hook's output (no
/// message, no backtrace): cudarc `unwrap`s some driver errors. Other threads' panics are
/// reported as before.
#[cfg(any(test, feature = "cuda"))]
fn quietly<R>(f: impl FnOnce() -> R) -> Result<R, String> {
    use std::cell::Cell;
    thread_local!(static QUIET: Cell<bool> = const { Cell::new(false) });
    static HOOK: std::sync::Once = std::sync::Once::new();
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !QUIET.with(Cell::get) {
                previous(info)
            }
        }));
    });
    QUIET.with(|q| q.set(true));
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
    QUIET.with(|q| q.set(false));
    result.map_err(|payload| {
        payload
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_else(|| "a panic without a message".into())
    })
}

#[cfg(feature = "cuda")]
mod cuda {
    use std::sync::OnceLock;

    use super::{quietly, DeviceJob};
    use crate::trainer::backend::cudalib::{self, Lib};
    use cudarc::driver::result::{self as driver, DriverError};
    use dfdx::prelude::Cuda;

    /// Compiled by NVRTC when probing: dfdx's run-time kernels include the same header.
    const PROBE_KERNEL: &str = "#include \"cuda_fp16.h\"\n\
        extern \"C\" __global__ void rnnsweep_probe(float *x) { x[0] += 1.0f; }\n";

    /// Whether a GPU can be used, probed once per process. The libraries are loaded here, not
    /// at start-up (see `cudalib`): the NVIDIA driver, which must start and see a GPU; then
    /// NVRTC and cuBLAS; then NVRTC compiles a kernel that includes the CUDA headers, as dfdx
    /// does while training. Each failure is one sentence.
    pub fn check() -> Result<(), String> {
        static CHECKED: OnceLock<Result<(), String>> = OnceLock::new();
        CHECKED
            .get_or_init(|| quietly(probe).unwrap_or_else(|p| Err(format!("probe failed: {p}"))))
            .clone()
            .map_err(|why| format!("no usable CUDA device: {why}"))
    }

    fn probe() -> Result<(), String> {
        cudalib::load(Lib::Cuda)
            .map_err(|why| format!("the NVIDIA driver is not installed ({why})"))?;
        driver::init().map_err(|e| format!("the NVIDIA driver did not start ({})", said(&e)))?;
        let count = driver::device::get_count()
            .map_err(|e| format!("the NVIDIA driver cannot count GPUs ({})", said(&e)))?;
        if count < 1 {
            return Err("the NVIDIA driver sees no GPU".into());
        }
        for lib in [Lib::Nvrtc, Lib::Cublas] {
            cudalib::load(lib).map_err(|why| {
                format!(
                    "{} could not be loaded ({why}); install the CUDA toolkit's libraries (or \
                     the pip wheels nvidia-cuda-nvrtc-cu12 and nvidia-cublas-cu12) and put \
                     their folder on LD_LIBRARY_PATH",
                    lib.what()
                )
            })?;
        }
        let options = cudarc::nvrtc::CompileOptions {
            arch: cudalib::build_arch(),
            ..Default::default()
        };
        cudarc::nvrtc::compile_ptx_with_opts(PROBE_KERNEL, options).map_err(|e| {
            format!(
                "NVRTC cannot compile dfdx's kernels ({}); they need the CUDA headers \
                 (cuda_fp16.h): set RNNSWEEP_CUDA_INCLUDE to their folder, or CUDA_HOME",
                compile_said(&e)
            )
        })?;
        Ok(())
    }

    /// The driver's name and text for an error, e.g. `CUDA_ERROR_NO_DEVICE: no CUDA-capable
    /// device is detected`.
    fn said(e: &DriverError) -> String {
        match (e.error_name(), e.error_string()) {
            (Ok(name), Ok(text)) => {
                format!("{}: {}", name.to_string_lossy(), text.to_string_lossy())
            }
            _ => format!("{:?}", e.0),
        }
    }

    /// The first error line of NVRTC's log, or the error itself.
    fn compile_said(e: &cudarc::nvrtc::CompileError) -> String {
        if let cudarc::nvrtc::CompileError::CompileError { log, .. } = e {
            let log = log.to_string_lossy();
            if let Some(line) = log.lines().find(|l| l.contains("error")) {
                return line.trim().to_string();
            }
        }
        format!("{e:?}")
    }

    pub fn open() -> Result<Cuda, String> {
        check()?;
        match quietly(|| Cuda::try_build(0, 0)) {
            Ok(Ok(dev)) => Ok(dev),
            Ok(Err(e)) => Err(format!("no usable CUDA device: {e:?}")),
            Err(panic) => Err(format!("no usable CUDA device: cudarc failed: {panic}")),
        }
    }

    pub fn run<J: DeviceJob>(dev: Cuda, job: J, note: Option<&str>) -> J::Output {
        job.run(dev, "cuda:0", note)
    }
}

#[cfg(not(feature = "cuda"))]
mod cuda {
    use super::DeviceJob;

    /// Uninhabited: without the feature there is no CUDA device to hold.
    pub enum NoCuda {}

    const NO_CUDA: &str = "this build has no CUDA support; build with `--features cuda` for GPUs";

    pub fn check() -> Result<(), String> {
        Err(NO_CUDA.into())
    }

    pub fn open() -> Result<NoCuda, String> {
        Err(NO_CUDA.into())
    }

    pub fn run<J: DeviceJob>(dev: NoCuda, _job: J, _note: Option<&str>) -> J::Output {
        match dev {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_words_and_gpu_for_cuda() {
        for (text, want) in [
            ("auto", DeviceRequest::Auto),
            ("cpu", DeviceRequest::Cpu),
            ("cuda", DeviceRequest::Cuda),
            ("gpu", DeviceRequest::Cuda),
        ] {
            let got: DeviceRequest = serde_json::from_str(&format!("\"{text}\"")).unwrap();
            assert_eq!(got, want, "{text}");
        }
        assert!(serde_json::from_str::<DeviceRequest>("\"tpu\"").is_err());
    }

    #[test]
    fn a_panic_becomes_its_message() {
        assert_eq!(quietly(|| 7), Ok(7));
        let got = quietly(|| -> u8 { panic!("driver said {}", 100) });
        assert_eq!(got, Err("driver said 100".to_string()));
        assert_eq!(
            quietly(|| std::panic::panic_any(5u8)),
            Err::<(), _>("a panic without a message".into())
        );
    }

    #[test]
    fn cpu_and_auto_always_pass_the_check() {
        assert!(check(DeviceRequest::Cpu).is_ok());
        assert!(check(DeviceRequest::Auto).is_ok());
        if !CUDA_BUILT {
            let err = check(DeviceRequest::Cuda).unwrap_err().to_string();
            assert!(err.contains("no CUDA support"), "{err}");
        }
    }
}
