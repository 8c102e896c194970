//! Exporters turn a `Summary` into bytes and do no I/O; the caller writes them to stdout or a
//! file. One file per format. The cell formatters they share (mean ± std, intervals, the paired
//! difference or `n<3`), the note explaining the statistics, and the lines `results compare`
//! prints live here, and so does [`ExportError`], what a format cannot render. `Format` and
//! `Tables` parse with text errors for clap. `tidy` is the other kind of export: not a summary
//! but every evaluation of every run, one long table (`results export`).

mod csv;
mod json;
mod markdown;
mod table;
pub mod tidy;

use super::stats::{PairedDiff, Proportion};
use super::summarize::{GroupRow, Summary};

/// Which of the two tables to render.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Tables {
    Summary,
    Curves,
    Both,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Format {
    Table,
    #[serde(alias = "md")]
    Markdown,
    Csv,
    Json,
}

/// Why a summary could not be rendered.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("CSV holds one table: choose --table summary or --table curves")]
    CsvOneTable,
    #[error("cannot write the {table} table as CSV")]
    Csv {
        /// "summary" or "curves".
        table: &'static str,
        #[source]
        source: ::csv::Error,
    },
    #[error("cannot write the summary as JSON")]
    Json(#[source] serde_json::Error),
}

pub trait Exporter {
    fn render(&self, s: &Summary, tables: Tables) -> Result<Vec<u8>, ExportError>;
}

pub fn exporter_for(f: Format) -> Box<dyn Exporter> {
    match f {
        Format::Table => Box::new(table::TableExport),
        Format::Markdown => Box::new(markdown::MarkdownExport),
        Format::Csv => Box::new(csv::CsvExport),
        Format::Json => Box::new(json::JsonExport),
    }
}

/// `s` shortened to `n` characters, ending in "…" when cut.
pub fn cut(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        format!("{}…", s.chars().take(n - 1).collect::<String>())
    }
}

/// `labels` shortened to at most `n` characters each and still all different, for a chart
/// legend: a label that fits stays whole; a longer one keeps its start and its end around "…"
/// (labels of one sweep differ at the end, labels of two sweeps at the start); if two still
/// read the same, every label starts with its short key ("A lstm_hidd…h20").
pub fn distinct_cut(labels: &[String], n: usize) -> Vec<String> {
    let middle = |s: &str, n: usize| -> String {
        let chars: Vec<char> = s.chars().collect();
        if chars.len() <= n {
            return s.to_string();
        }
        let tail = (n.saturating_sub(1)) / 2;
        let head = n.saturating_sub(1) - tail;
        let mut out: String = chars[..head].iter().collect();
        out.push('…');
        out.extend(&chars[chars.len() - tail..]);
        out
    };
    let cut: Vec<String> = labels.iter().map(|l| middle(l, n)).collect();
    let distinct = cut.iter().collect::<std::collections::BTreeSet<_>>().len() == cut.len();
    if distinct {
        return cut;
    }
    labels
        .iter()
        .enumerate()
        .map(|(i, l)| {
            let k = short_key(i);
            let rest = middle(l, n.saturating_sub(k.len() + 1).max(3));
            format!("{k} {rest}")
        })
        .collect()
}

/// "0.9579" or "-".
pub(crate) fn num(v: Option<f64>, prec: usize) -> String {
    v.filter(|x| x.is_finite())
        .map_or("-".into(), |x| format!("{x:.prec$}"))
}

/// A group's best seed-mean ("0.9579", "-"), followed by `marks.0` when it is from before
/// divergence (every run of the group diverged; see [`BEFORE_DIVERGENCE_NOTE`]) or `marks.1`
/// when from before pruning (no run trained to the end; see [`BEFORE_PRUNING_NOTE`]).
pub(crate) fn best(g: &GroupRow, marks: (&str, &str)) -> String {
    match num(g.best, 4) {
        v if g.best_before_divergence && g.best.is_some() => format!("{v}{}", marks.0),
        v if g.best_before_pruning && g.best.is_some() => format!("{v}{}", marks.1),
        v => v,
    }
}

/// Under a table with a best value from before pruning: what it means.
pub(crate) const BEFORE_PRUNING_NOTE: &str = "before pruning: no run of the variant trained to \
     the end (successive halving stopped them at a rung), so its best is over the curves up to \
     there; it is not comparable with the bests of variants that trained to the end.";

/// Whether any group's best is from before pruning.
pub(crate) fn any_before_pruning(s: &Summary) -> bool {
    s.groups
        .iter()
        .any(|g| g.best_before_pruning && g.best.is_some())
}

/// Under a table with a best value from before divergence: what it means.
pub(crate) const BEFORE_DIVERGENCE_NOTE: &str = "before divergence: every run of the variant \
     diverged, so its best is the best seed-mean of the evaluations before the runs diverged \
     (over the seeds still running at each point); it is not comparable with the bests of \
     variants that trained to the end.";

/// Whether any group's best is from before divergence.
pub(crate) fn any_before_divergence(s: &Summary) -> bool {
    s.groups
        .iter()
        .any(|g| g.best_before_divergence && g.best.is_some())
}

/// A group's final test accuracy as "mean{sep}std" ("mean" alone for one run: its std is
/// undefined), or "-" when no seed completed.
pub(crate) fn mean_std(g: &GroupRow, sep: &str) -> String {
    match (g.test_acc_mean, g.test_acc_std) {
        (Some(m), Some(sd)) => format!("{m:.4}{sep}{sd:.4}"),
        (Some(m), None) => format!("{m:.4}"),
        _ => "-".into(),
    }
}

/// The t interval of the final test accuracy as "0.9252–0.9748", or "-" below 2 runs.
pub(crate) fn acc_ci(g: &GroupRow) -> String {
    g.test_acc_ci
        .map_or("-".into(), |c| format!("{:.4}–{:.4}", c.low, c.high))
}

/// The divergence rate's Wilson interval in percent: "6.1–79.2%", or "-" with no run.
pub(crate) fn wilson_pct(p: &Proportion) -> String {
    p.interval.map_or("-".into(), |c| {
        format!("{:.1}–{:.1}%", 100.0 * c.low, 100.0 * c.high)
    })
}

/// Diverged runs as "k/n (low–high%)", the interval being Wilson's 95 %.
pub(crate) fn divergence(g: &GroupRow) -> String {
    let p = &g.divergence;
    match p.interval {
        Some(_) => format!("{}/{} ({})", p.k, p.n, wilson_pct(p)),
        None => format!("{}/{}", p.k, p.n),
    }
}

/// The evaluation point as text: "e2 it1000"; "e2" or "it1000" when only one is known (a group
/// whose runs reach that point at different steps or epochs), "-" for none.
pub(crate) fn point(epoch: Option<i64>, iteration: Option<i64>) -> String {
    match (epoch, iteration) {
        (Some(e), Some(i)) => format!("e{e} it{i}"),
        (Some(e), None) => format!("e{e}"),
        (None, Some(i)) => format!("it{i}"),
        (None, None) => "-".into(),
    }
}

/// An optional coordinate of a curve-table row: the number or "-".
pub(crate) fn coord(v: Option<i64>) -> String {
    v.map_or("-".into(), |x| x.to_string())
}

/// The short key of the `i`-th group (summary order): A … Z, then AA, AB …
pub(crate) fn short_key(i: usize) -> String {
    let mut n = i;
    let mut key = Vec::new();
    loop {
        key.push(b'A' + (n % 26) as u8);
        if n < 26 {
            break;
        }
        n = n / 26 - 1;
    }
    key.reverse();
    String::from_utf8(key).expect("ASCII")
}

/// What a column `width` characters wide shows for groups `groups` (indices in summary order)
/// with `labels`: the labels when every one fits, else every group's short key, never a cut
/// label (two cut labels can read the same). The bool says whether keys are used, so a legend
/// (see [`legend`]) must follow the table.
pub(crate) fn fitted(labels: &[String], groups: &[usize], width: usize) -> (Vec<String>, bool) {
    if labels.iter().all(|l| l.chars().count() <= width) {
        (labels.to_vec(), false)
    } else {
        (groups.iter().map(|&g| short_key(g)).collect(), true)
    }
}

/// The legend under a table that shows short keys: one "A  label" line per group, wrapped to
/// `width` characters.
pub(crate) fn legend(labels: &[String], groups: &[usize], width: usize) -> Vec<String> {
    let keys: Vec<String> = groups.iter().map(|&g| short_key(g)).collect();
    let w = keys.iter().map(|k| k.len()).max().unwrap_or(1);
    let mut out = Vec::new();
    for (k, l) in keys.iter().zip(labels) {
        let lines = wrap(l, width.saturating_sub(w + 2).max(10), 0);
        if lines.is_empty() {
            out.push(k.clone());
        }
        for (i, line) in lines.iter().enumerate() {
            let head = if i == 0 { k.clone() } else { String::new() };
            out.push(format!("{head:<w$}  {line}"));
        }
    }
    out
}

/// The paired difference vs the best group in percentage points, e.g. "-1.20 [-2.05,-0.41]":
/// "best" for the best group, "-" for a group without a completed run (all diverged or
/// pruned), "n<3" when fewer than 3 seeds are shared (no interval then; the mean difference is
/// in the CSV and JSON). With `detail`, the method and n follow:
/// "-1.20 [-2.05,-0.41] (t, n=5)".
pub(crate) fn vs_best(g: &GroupRow, first: bool, prec: usize, detail: bool) -> String {
    if first {
        return "best".into();
    }
    if g.test_acc_n == 0 {
        // No completed run (all diverged or pruned): there is nothing to pair.
        return "-".into();
    }
    match &g.vs_best {
        Some(PairedDiff {
            n,
            mean_diff,
            interval: Some(c),
            ..
        }) => {
            let mut s = format!(
                "{:+.prec$} [{:+.prec$},{:+.prec$}]",
                100.0 * mean_diff,
                100.0 * c.low,
                100.0 * c.high
            );
            if detail {
                s.push_str(&format!(" ({}, n={n})", c.method.name()));
            }
            s
        }
        _ => "n<3".into(),
    }
}

/// What the statistics columns mean, one sentence each (under every table).
pub(crate) const STATS_NOTE: [&str; 4] = [
    "test acc: final test accuracy of completed runs (collapsed ones included), mean ± sample \
     std over n runs; 95% CI: mean ± t(0.975, n−1)·std/√n, none for n < 2.",
    "diverged: k of n runs loaded, with the 95% Wilson score interval of the rate.",
    "collapsed: completed runs predicting one class for ≥ 99% of the test images.",
    "vs best: final test accuracy minus the best variant's, paired on the seeds both \
     completed, in percentage points with a 95% interval (t for 3–9 shared seeds, bootstrap \
     for 10 or more; n<3: fewer than 3 shared seeds, no interval). A zero-width interval means \
     every shared seed gave the same difference.",
];

/// One variant's statistics on a line, for `results compare`: "LSTM h64: final test acc
/// 0.9500 ± 0.0100 (n=3, 95% t CI 0.9252–0.9748); diverged 0/3 (95% Wilson 0.0–56.1%);
/// 0 collapsed".
pub fn group_line(g: &GroupRow) -> String {
    let ci = g.test_acc_ci.map_or(String::new(), |c| {
        format!(", 95% t CI {:.4}–{:.4}", c.low, c.high)
    });
    format!(
        "{}: final test acc {} (n={}{ci}); diverged {}/{} (95% Wilson {}); {} collapsed",
        g.label,
        mean_std(g, " ± "),
        g.test_acc_n,
        g.divergence.k,
        g.divergence.n,
        wilson_pct(&g.divergence),
        g.collapsed
    )
}

/// The paired difference a − b for `results compare`, in percentage points, with its interval
/// and how it was computed, or why there is none.
pub fn diff_line(a: &GroupRow, b: &GroupRow, d: Option<&PairedDiff>) -> String {
    let Some(d) = d else {
        return format!(
            "{} and {} share no seed with a completed run (seeds: {:?} vs {:?}); nothing to compare",
            a.label,
            b.label,
            a.by_seed.keys().collect::<Vec<_>>(),
            b.by_seed.keys().collect::<Vec<_>>()
        );
    };
    let head = format!(
        "{} − {}: {:+.2} pp final test accuracy over {} shared seed{}",
        a.label,
        b.label,
        100.0 * d.mean_diff,
        d.n,
        if d.n == 1 { "" } else { "s" }
    );
    match d.interval {
        None => format!("{head}; no interval: n<3 (fewer than 3 shared seeds)"),
        Some(c) => {
            let how = match c.method {
                super::stats::Method::Bootstrap => format!(
                    "paired bootstrap, {} resamples",
                    super::stats::BOOTSTRAP_RESAMPLES
                ),
                m => format!("paired {}", m.name()),
            };
            let same = if c.low == c.high {
                "; zero width: every shared seed gave the same difference"
            } else {
                ""
            };
            format!(
                "{head} (95% {how} interval {:+.2} .. {:+.2} pp{same})",
                100.0 * c.low,
                100.0 * c.high
            )
        }
    }
}

/// `text` broken at spaces into lines of at most `width` characters (a longer word stays whole),
/// continuation lines indented by `indent` spaces.
pub(crate) fn wrap(text: &str, width: usize, indent: usize) -> Vec<String> {
    let mut lines = Vec::new();
    let mut line = String::new();
    for word in text.split_whitespace() {
        let len = line.chars().count();
        if len > 0 && len + 1 + word.chars().count() > width {
            lines.push(std::mem::take(&mut line));
        }
        if line.is_empty() {
            if !lines.is_empty() {
                line.push_str(&" ".repeat(indent));
            }
        } else {
            line.push(' ');
        }
        line.push_str(word);
    }
    if !line.is_empty() {
        lines.push(line);
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::stats::{paired_diff, proportion};

    fn group(label: &str, by_seed: &[(u64, f64)]) -> GroupRow {
        GroupRow {
            label: label.into(),
            key: Default::default(),
            runs: by_seed.len(),
            diverged: 0,
            divergence: proportion(0, by_seed.len()),
            collapsed: 0,
            test_acc_n: by_seed.len(),
            test_acc_mean: None,
            test_acc_std: None,
            test_acc_ci: None,
            train_acc_mean: None,
            best: None,
            best_epoch: None,
            best_iteration: None,
            best_before_divergence: false,
            pruned: 0,
            best_before_pruning: false,
            parameters: 0,
            seconds_per_epoch: 0.0,
            samples_per_sec: 0.0,
            vs_best: None,
            by_seed: by_seed.iter().copied().collect(),
        }
    }

    /// A constant paired difference (0.5 on each of 3 seeds, exact in binary) is shown as the
    /// zero-width interval it is, and said to be one.
    #[test]
    fn constant_difference_is_shown_with_zero_width() {
        let a = group("A", &[(0, 1.0), (1, 0.75), (2, 0.5)]);
        let mut b = group("B", &[(0, 0.5), (1, 0.25), (2, 0.0)]);
        let d = paired_diff(&[1.0, 0.75, 0.5], &[0.5, 0.25, 0.0]);
        assert_eq!(
            diff_line(&a, &b, d.as_ref()),
            "A − B: +50.00 pp final test accuracy over 3 shared seeds (95% paired t interval \
             +50.00 .. +50.00 pp; zero width: every shared seed gave the same difference)"
        );
        b.vs_best = paired_diff(&[0.5, 0.25, 0.0], &[1.0, 0.75, 0.5]);
        assert_eq!(vs_best(&b, false, 1, false), "-50.0 [-50.0,-50.0]");
        assert_eq!(
            vs_best(&b, false, 2, true),
            "-50.00 [-50.00,-50.00] (t, n=3)"
        );
        assert_eq!(vs_best(&b, true, 1, false), "best");
        b.vs_best = paired_diff(&[0.5, 0.25], &[1.0, 0.75]);
        assert_eq!(vs_best(&b, false, 1, true), "n<3");
        b.vs_best = None;
        assert_eq!(vs_best(&b, false, 1, true), "n<3");
        b.test_acc_n = 0;
        assert_eq!(vs_best(&b, false, 1, true), "-");
        assert_eq!(
            diff_line(&a, &group("C", &[(7, 0.5)]), None),
            "A and C share no seed with a completed run (seeds: [0, 1, 2] vs [7]); nothing to compare"
        );
    }

    #[test]
    fn accuracy_cells_without_enough_runs() {
        let mut g = group("A", &[(0, 0.9)]);
        g.test_acc_mean = Some(0.9);
        assert_eq!(
            (mean_std(&g, " ± "), acc_ci(&g)),
            ("0.9000".into(), "-".into())
        );
        g.divergence = proportion(2, 5);
        assert_eq!(wilson_pct(&g.divergence), "11.8–76.9%");
        g.divergence = proportion(0, 0);
        assert_eq!(divergence(&g), "0/0");
    }

    #[test]
    fn short_keys_count_like_spreadsheet_columns() {
        let k: Vec<String> = [0, 1, 25, 26, 27, 51, 52, 701, 702]
            .iter()
            .map(|&i| short_key(i))
            .collect();
        assert_eq!(k, ["A", "B", "Z", "AA", "AB", "AZ", "BA", "ZZ", "AAA"]);
    }

    #[test]
    fn labels_that_do_not_fit_become_keys_with_a_legend() {
        let labels = vec![
            "LSTM h20".to_string(),
            "a_rather_long_sweep/LSTM h64".into(),
        ];
        assert_eq!(fitted(&labels, &[3, 4], 30), (labels.clone(), false));
        assert_eq!(
            fitted(&labels, &[3, 4], 16),
            (vec!["D".to_string(), "E".into()], true)
        );
        assert_eq!(
            legend(&labels, &[3, 4], 100),
            ["D  LSTM h20", "E  a_rather_long_sweep/LSTM h64"]
        );
        assert_eq!(
            legend(&labels[1..], &[30], 20),
            ["AE  a_rather_long_sweep/LSTM", "    h64"]
        );
    }

    #[test]
    fn legend_labels_stay_distinct_when_shortened() {
        let l = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let two = l(&[
            "lstm_hidden_size_comparison_long_name/LSTM h20",
            "lstm_hidden_size_comparison_long_name/LSTM h64",
        ]);
        assert_eq!(
            distinct_cut(&two, 30),
            [
                "lstm_hidden_siz…_name/LSTM h20",
                "lstm_hidden_siz…_name/LSTM h64"
            ]
        );
        assert_eq!(
            distinct_cut(&l(&["LSTM h20", "GRU"]), 30),
            ["LSTM h20", "GRU"]
        );
        // Equal at both ends, different in the middle: keys.
        let mid = l(&["aaaaaaaaaa_X_bbbbbbbbbb", "aaaaaaaaaa_Y_bbbbbbbbbb"]);
        assert_eq!(distinct_cut(&mid, 12), ["A aaaaa…bbbb", "B aaaaa…bbbb"]);
        for s in distinct_cut(&two, 30) {
            assert!(s.chars().count() <= 30);
        }
    }

    #[test]
    fn points_show_what_is_known() {
        assert_eq!(point(Some(2), Some(1876)), "e2 it1876");
        assert_eq!(point(Some(2), None), "e2");
        assert_eq!(point(None, Some(500)), "it500");
        assert_eq!(point(None, None), "-");
    }

    #[test]
    fn wrap_breaks_at_spaces_within_the_width() {
        assert_eq!(
            wrap("aa bb cc dd", 5, 2),
            vec!["aa bb".to_string(), "  cc".into(), "  dd".into()]
        );
        assert_eq!(wrap("abcdefgh ij", 4, 0), vec!["abcdefgh", "ij"]);
        assert!(wrap("", 10, 0).is_empty());
    }
}
