//! The whole summary as JSON: counts (with every failed, corrupt, diverged and collapsed run),
//! groups with their keys and statistics (intervals as `{low, high, level, method}`, null where
//! undefined: below 2 runs for the accuracy, below 3 shared seeds for the paired difference),
//! and the curves.

use super::{ExportError, Exporter, Tables};
use crate::report::summarize::Summary;

pub struct JsonExport;

impl Exporter for JsonExport {
    fn render(&self, s: &Summary, tables: Tables) -> Result<Vec<u8>, ExportError> {
        let mut v = serde_json::to_value(s).map_err(ExportError::Json)?;
        match tables {
            Tables::Summary => {
                v.as_object_mut().expect("object").remove("curves");
            }
            Tables::Curves => {
                v.as_object_mut().expect("object").remove("groups");
            }
            Tables::Both => {}
        }
        let mut out = serde_json::to_vec_pretty(&v).map_err(ExportError::Json)?;
        out.push(b'\n');
        Ok(out)
    }
}
