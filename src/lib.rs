//! rnnsweep: hyperparameter sweeps of recurrent networks (RNN, LSTM, GRU) on sequence-MNIST.
//!
//! Data flows one way:
//!
//! ```text
//! data (MNIST files) ──┐
//!                      ▼
//! trainer::TrainConfig ─► trainer (dfdx: model, optimizers, fit loop) ─► RunRecord ─► metrics CSV / JSON
//! ```
//!
//! Only `cli.rs` (in the binary) sees clap; the library modules take typed values.

pub mod cluster;
pub mod commands;
pub mod data;
pub mod error;
pub mod fsutil;
pub mod plan;
pub mod report;
pub mod runner;
pub mod spec;
pub mod store;
pub mod trainer;
