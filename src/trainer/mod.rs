//! Training one network on MNIST with dfdx: configuration, model, optimizers, the fit loop and
//! device selection. Knows nothing of sweeps, stores or reports: it takes a `TrainConfig` and
//! returns a `RunRecord`.

pub mod backend;
pub mod config;
pub mod denormal;
pub mod device;
pub mod dropout;
pub mod fake;
pub mod fit;
pub mod fused;
pub mod init;
pub mod kernel;
pub mod model;
pub mod ops;
pub mod optim;
pub mod presets;
pub mod record;
pub mod tape;
