//! Choosing where to train. The training code is generic over dfdx's `Device`; this module
//! picks a concrete one at run time: `cpu`, `cuda` (only in builds with the `cuda` feature), or
//! `auto` = CUDA when built with it and a GPU answers, else the CPU.

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

#[cfg(feature = "cuda")]
mod cuda {
    use super::DeviceJob;
    use dfdx::prelude::Cuda;

    pub fn open() -> Result<Cuda, String> {
        // cudarc panics rather than erring on some driver problems; treat both as "no GPU".
        match std::panic::catch_unwind(|| Cuda::try_build(0, 0)) {
            Ok(Ok(dev)) => Ok(dev),
            Ok(Err(e)) => Err(format!("no usable CUDA device: {e:?}")),
            Err(_) => Err("no usable CUDA device: the CUDA driver could not be loaded".into()),
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

    pub fn open() -> Result<NoCuda, String> {
        Err("this build has no CUDA support; build with `--features cuda` for GPUs".into())
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
}
