//! Reports, read only from the disk: loading sweeps into polars frames (`load`), summarizing
//! them (`summarize`, pure frame → values), statistics (`stats`), and exporters that turn a
//! summary into bytes (`export`).

pub mod export;
pub mod load;
pub mod stats;
pub mod summarize;
