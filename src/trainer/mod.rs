//! Training one network on MNIST with dfdx: configuration, model, optimizers and the fit loop.
//! Knows nothing of sweeps, stores or reports; it takes a `TrainConfig` and returns a `RunRecord`.

pub mod config;
pub mod model;
