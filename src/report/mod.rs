//! Reports, read only from the disk: loading sweeps into polars frames (`load`), summarizing
//! them (`summarize`, pure frame → values), statistics (`stats`), exporters that turn a summary
//! into bytes (`export`), chart series (`series`, pure), drawing them (`chart`, SVG/PNG),
//! effects of one setting on a metric (`effects`, pure; drawn by `effect_chart`; the report's
//! effect charts and what `results effects` shares with them in `effect_figures`), and the
//! self-contained HTML report (`html`); a run's hyperparameters by grid key (`hyper`); the
//! pruning audit that replays successive halving on stored curves (`prune_replay`); the
//! picture of a configured network (`network`: laid out from the model config, drawn as
//! SVG/PNG), for `describe` and the report.

pub mod chart;
pub mod effect_chart;
pub mod effect_figures;
pub mod effects;
pub mod export;
pub mod html;
pub mod hyper;
pub mod load;
pub mod network;
pub mod prune_replay;
pub mod series;
pub mod stats;
pub mod summarize;
