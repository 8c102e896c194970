//! rnnsweep: hyperparameter sweeps of recurrent networks (RNN, LSTM, GRU) on sequence-MNIST.
//!
//! Data flows one way:
//!
//! ```text
//! grid (TOML file) ─► plan (cells with stable ids) ─► runner (workers, leases) ─► trainer
//!                                                        │    (model, kernels, fit loop)
//!                                          data (MNIST) ─┘            │ RunRecord
//!                                                                     ▼
//!                      report (tables, charts, HTML) ◄─ reads only ─ store (results folder)
//! ```
//!
//! `cluster` adds shards and the Slurm script; `commands` wires each command to these stages.
//! Only `cli.rs` (in the binary) sees clap; the library modules take typed values.

pub mod cluster;
pub mod commands;
pub mod data;
pub mod error;
pub mod fsutil;
pub mod grid;
pub mod plan;
pub mod report;
pub mod runner;
pub mod store;
pub mod trainer;
