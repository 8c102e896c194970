//! Errors in a grid file, located by file, line and column, with the key path and the offending
//! source line underlined.

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

/// A problem in a grid file: where, which key, what is wrong and what is allowed.
#[derive(Debug, Clone, PartialEq)]
pub struct GridError {
    pub path: PathBuf,
    pub line: usize,
    pub column: usize,
    /// Dotted key path, e.g. `grid.lr` or `variant[2].hidden` (empty for file-level problems).
    pub key: String,
    pub message: String,
    /// The source line and a caret marker under the span.
    pub snippet: Option<String>,
}

impl GridError {
    /// An error at byte range `span` of `text`.
    pub fn at(
        path: &Path,
        text: &str,
        span: Option<Range<usize>>,
        key: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        let (line, column, snippet) = match span {
            Some(span) => locate(text, span),
            None => (1, 1, None),
        };
        GridError {
            path: path.to_owned(),
            line,
            column,
            key: key.into(),
            message: message.into(),
            snippet,
        }
    }
}

/// 1-based line and column of `span.start`, and the line with `^^^` under the span.
fn locate(text: &str, span: Range<usize>) -> (usize, usize, Option<String>) {
    let start = span.start.min(text.len());
    let line_start = text[..start].rfind('\n').map_or(0, |i| i + 1);
    let line_end = text[start..].find('\n').map_or(text.len(), |i| start + i);
    let line = text[..start].matches('\n').count() + 1;
    let column = text[line_start..start].chars().count() + 1;
    let src = &text[line_start..line_end];
    let width = text[start..span.end.min(line_end).max(start)]
        .chars()
        .count()
        .max(1);
    let gutter = line.to_string().len();
    let snippet = format!(
        "{:gutter$} |\n{line} | {src}\n{:gutter$} | {}{}",
        "",
        "",
        " ".repeat(column - 1),
        "^".repeat(width)
    );
    (line, column, Some(snippet))
}

impl fmt::Display for GridError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{}: ", self.path.display())?;
        } else {
            write!(f, "{}:{}:{}: ", self.path.display(), self.line, self.column)?;
        }
        if !self.key.is_empty() {
            write!(f, "{}: ", self.key)?;
        }
        f.write_str(&self.message)?;
        if let Some(s) = &self.snippet {
            write!(f, "\n{s}")?;
        }
        Ok(())
    }
}

impl std::error::Error for GridError {}

pub use crate::trainer::config::keys::did_you_mean;

/// The integer `key` of table `table` (`[search]`, `[prune]`), if set: it must lie in
/// `lo..=hi`; the error names `table.key` and says what is allowed.
pub fn int_in(
    t: &toml::Table,
    table: &str,
    key: &str,
    (lo, hi): (i64, i64),
) -> Result<Option<u64>, (String, String)> {
    match t.get(key) {
        None => Ok(None),
        Some(toml::Value::Integer(i)) if (lo..=hi).contains(i) => Ok(Some(*i as u64)),
        Some(other) => Err((
            format!("{table}.{key}"),
            format!("expected an integer in {lo}..={hi}, got {other}"),
        )),
    }
}

/// Refuses a key of the inline table `t` that is not in `allowed`: "unknown `noun` `k` (did you
/// mean …?); `shape`" (the range, distribution and [search] tables).
pub fn only_keys(
    t: &toml::Table,
    allowed: &[&str],
    noun: &str,
    shape: &str,
) -> Result<(), (String, String)> {
    match t.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(k) => Err((
            k.clone(),
            format!("unknown {noun} `{k}`{}; {shape}", did_you_mean(k, allowed)),
        )),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locates_line_and_column_and_draws_the_span() {
        let text = "[sweep]\nname = \"x\"\nlr = 0.1\n";
        let e = GridError::at(
            Path::new("g.toml"),
            text,
            Some(24..27),
            "defaults.lr",
            "bad",
        );
        assert_eq!((e.line, e.column), (3, 6));
        assert_eq!(
            e.to_string(),
            "g.toml:3:6: defaults.lr: bad\n  |\n3 | lr = 0.1\n  |      ^^^"
        );
    }

    #[test]
    fn suggests_close_words_only() {
        assert_eq!(
            did_you_mean("hiden", &["hidden", "layers"]),
            " (did you mean `hidden`?)"
        );
        assert_eq!(
            did_you_mean("lsmt", &["rnn", "lstm", "gru"]),
            " (did you mean `lstm`?)"
        );
        assert_eq!(did_you_mean("banana", &["rnn", "lstm", "gru"]), "");
    }
}
