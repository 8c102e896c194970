//! Drawing effects with plotters: effect charts and heatmaps are `chart::Drawable`, rendered as
//! SVG text or PNG bytes by `chart::to_svg` / `to_png` (no file I/O), in the look of `chart.rs`
//! (same size, fonts, colours, legend panel on the right).
//!
//! An effect chart has the setting on x: its values as ticks, on a log scale for log dims
//! (positions are log10 of the values, labelled with the values) and as evenly spaced categories
//! for words. Each line of the effect is one colour: a marker at the mean over seeds, a vertical
//! bar for the 95 % t interval, a line between the points of numeric axes, and the points of
//! several lines slightly dodged so their bars do not hide each other. Diverged, collapsed and
//! no-value runs are written at their point ("2 div", "1 col", "1 nv"), so are "k/n reached"
//! (time to target) and a NaN mean, with a cross on the x axis when the point has no finite mean.
//! Legend labels too long for the panel are wrapped, never cut.
//!
//! A heatmap crosses two settings: a cell per pair of values, coloured by the mean (viridis,
//! with a colour bar in the legend) and annotated with the mean, n and diverged/collapsed counts.

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use plotters::style::FontStyle;

use super::chart::{color, trim_float, Drawable, FONT, LEGEND_WIDTH};
use super::effects::{x_range, y_range, Effect, EffectMetric, EffectPoint, Heatmap, Scale};
use super::export::cut;

/// The colour of diverged/collapsed marks.
const MARK: RGBColor = RGBColor(170, 30, 30);

/// Most tick labels on the x axis; with more values every k-th is labelled.
const MAX_TICKS: usize = 12;

/// An axis value as a short tick label: three significant digits, in scientific notation below
/// 0.001 and from 100,000: "0.0001" → "1e-4", "0.000316227766017" → "3.16e-4",
/// "64" → "64", words unchanged.
pub fn tick_label(v: &str) -> String {
    let Ok(x) = v.parse::<f64>() else {
        return cut(v, 14);
    };
    if !x.is_finite() {
        return v.to_string();
    }
    let a = x.abs();
    if a == 0.0 || (1e-3..1e5).contains(&a) {
        // Three significant digits.
        let d = (2 - a.log10().floor() as i32).clamp(0, 6) as usize;
        let s = format!("{x:.d$}");
        if s.contains('.') {
            s.trim_end_matches('0').trim_end_matches('.').to_string()
        } else {
            s
        }
    } else {
        let s = format!("{x:.2e}");
        let (m, e) = s.split_once('e').expect("scientific format");
        let m = m.trim_end_matches('0').trim_end_matches('.');
        format!("{m}e{e}")
    }
}

/// "1/2 reached" (time to target, always), "NaN" (a non-finite mean), "2 div", "1 col",
/// "1 nv" (no value), joined by ", "; None when there is nothing to say.
pub fn marks(p: &EffectPoint) -> Option<String> {
    let mut v = Vec::new();
    if let Some(r) = p.reached {
        v.push(format!("{}/{} reached", r.k, r.n));
    }
    if let Some(m) = p.stats.mean.filter(|m| !m.is_finite()) {
        v.push(if m.is_nan() {
            "NaN".into()
        } else {
            m.to_string()
        });
    }
    if p.no_value > 0 {
        v.push(format!("{} nv", p.no_value));
    }
    if p.diverged > 0 {
        v.push(format!("{} div", p.diverged));
    }
    if p.collapsed > 0 {
        v.push(format!("{} col", p.collapsed));
    }
    (!v.is_empty()).then(|| v.join(", "))
}

/// `label` in lines of at most `width` characters, broken after ", " where it can (a part
/// longer than `width` is a line of its own, whole), so that no two labels look the same.
pub fn wrap(label: &str, width: usize) -> Vec<String> {
    let mut lines: Vec<String> = Vec::new();
    for part in label.split_inclusive(", ") {
        match lines.last_mut() {
            Some(l) if l.chars().count() + part.trim_end().chars().count() <= width => {
                l.push_str(part)
            }
            _ => lines.push(part.to_string()),
        }
    }
    lines.iter().map(|l| l.trim_end().to_string()).collect()
}

/// The horizontal offset of line `i` of `n` so that their bars do not overlap: lines spread over
/// 4 % of the x range (none for a single line).
pub fn dodge(i: usize, n: usize, width: f64) -> f64 {
    if n <= 1 {
        return 0.0;
    }
    let step = 0.04 * width / (n - 1) as f64;
    (i as f64 - (n - 1) as f64 / 2.0) * step
}

impl Drawable for Effect {
    fn draw_on<DB: DrawingBackend>(
        &self,
        root: &DrawingArea<DB, Shift>,
        title: &str,
    ) -> DrawResult<DB> {
        draw_effect(root, self, title)
    }
}

impl Drawable for Heatmap {
    fn draw_on<DB: DrawingBackend>(
        &self,
        root: &DrawingArea<DB, Shift>,
        title: &str,
    ) -> DrawResult<DB> {
        draw_heatmap(root, self, title)
    }
}

type DrawResult<DB> = Result<(), DrawingAreaErrorKind<<DB as DrawingBackend>::ErrorType>>;

fn draw_effect<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    e: &Effect,
    title: &str,
) -> DrawResult<DB> {
    root.fill(&WHITE)?;
    let (w, _) = root.dim_in_pixel();
    let (plot, legend) = root.split_horizontally(w - LEGEND_WIDTH);
    let (x0, x1) = x_range(e);
    let (y0, y1) = y_range(e);
    let target = e.target.unwrap_or(f64::NAN);
    let x_desc = match e.scale {
        Scale::Log => format!("{} (log scale)", e.axis),
        _ => e.axis.clone(),
    };
    let mut chart = ChartBuilder::on(&plot)
        .caption(title, (FONT, 20).into_font().style(FontStyle::Bold))
        .margin(14)
        .x_label_area_size(44)
        .y_label_area_size(60)
        .build_cartesian_2d(x0..x1, y0..y1)?;
    chart
        .configure_mesh()
        .x_labels(0)
        .disable_x_mesh()
        .x_desc(x_desc)
        .y_desc(e.metric.title(target))
        .axis_desc_style((FONT, 15))
        .label_style((FONT, 13))
        .light_line_style(WHITE)
        .bold_line_style(RGBColor(225, 225, 225))
        .y_label_formatter(&|y| trim_float(*y))
        .draw()?;

    // Ticks: a light vertical line and the value under the axis, at every value.
    let dim = e.dim();
    let every = e.values.len().div_ceil(MAX_TICKS).max(1);
    let tick = (FONT, 13)
        .into_font()
        .color(&BLACK)
        .pos(Pos::new(HPos::Center, VPos::Top));
    for (i, v) in e.values.iter().enumerate() {
        let Some(x) = dim.pos(v) else { continue };
        chart.draw_series(std::iter::once(PathElement::new(
            vec![(x, y0), (x, y1)],
            RGBColor(235, 235, 235),
        )))?;
        if i % every == 0 {
            let (px, py) = chart.backend_coord(&(x, y0));
            root.draw(&Text::new(tick_label(v), (px, py + 6), tick.clone()))?;
        }
    }

    let clamp = |v: f64| v.clamp(y0, y1);
    let n = e.series.len();
    let cap = 0.006 * (x1 - x0);
    let mark_font = (FONT, 11).into_font().color(&MARK);
    for (i, s) in e.series.iter().enumerate() {
        let c = color(i);
        let dx = dodge(i, n, x1 - x0);
        let means: Vec<(f64, f64)> = s
            .points
            .iter()
            .filter_map(|p| {
                p.stats
                    .mean
                    .filter(|m| m.is_finite())
                    .map(|m| (p.pos + dx, clamp(m)))
            })
            .collect();
        if e.scale != Scale::Categorical && means.len() > 1 {
            chart.draw_series(LineSeries::new(means.iter().copied(), c.stroke_width(2)))?;
        }
        for p in &s.points {
            let x = p.pos + dx;
            if let Some(ci) = p
                .stats
                .ci
                .filter(|c| c.low.is_finite() && c.high.is_finite())
            {
                let (lo, hi) = (clamp(ci.low), clamp(ci.high));
                chart.draw_series([
                    PathElement::new(vec![(x, lo), (x, hi)], c.stroke_width(2)),
                    PathElement::new(vec![(x - cap, lo), (x + cap, lo)], c.stroke_width(2)),
                    PathElement::new(vec![(x - cap, hi), (x + cap, hi)], c.stroke_width(2)),
                ])?;
            }
            let mean = p.stats.mean.filter(|m| m.is_finite());
            if let Some(m) = mean {
                chart.draw_series(std::iter::once(Circle::new((x, clamp(m)), 4, c.filled())))?;
            }
            if let Some(text) = marks(p) {
                // At the point, or on the x axis with a cross when no run counts.
                let y = match mean {
                    Some(m) => clamp(m),
                    None => {
                        let y = y0 + 0.03 * (y1 - y0);
                        chart.draw_series(std::iter::once(Cross::new(
                            (x, y),
                            5,
                            MARK.stroke_width(2),
                        )))?;
                        y
                    }
                };
                // Above the point for even lines, below for odd ones, so that the marks of
                // lines meeting at one x do not print over each other.
                let (px, py) = chart.backend_coord(&(x, y));
                let dy = if i % 2 == 0 { -14 } else { 5 };
                root.draw(&Text::new(text, (px + 7, py + dy), mark_font.clone()))?;
            }
        }
    }

    // Legend: how to read the chart, then one swatch and label per line.
    let small = (FONT, 13).into_font();
    let mut y = 44;
    let how: &[&str] = match e.metric {
        EffectMetric::SamplesPerSec => &[
            "point: mean over seeds",
            "bar: 95% t interval (n ≥ 2)",
            "“2 div”, “1 col”: diverged,",
            "  collapsed runs (in the mean)",
            "“1 nv”: runs without a value",
        ],
        EffectMetric::TimeToTarget => &[
            "point: mean over the runs that",
            "  reached the target",
            "“k/n reached”: of the completed,",
            "  not collapsed runs; × : none",
            "“div”, “col”: not in k or n",
        ],
        _ => &[
            "point: mean over seeds",
            "bar: 95% t interval (n ≥ 2)",
            "“2 div”, “1 col”, “1 nv”: diverged,",
            "  collapsed, no-value runs",
            "  (not in the mean)",
        ],
    };
    for &line in how {
        legend.draw(&Text::new(line, (8, y), small.clone()))?;
        y += 17;
    }
    y += 10;
    let (_, h) = legend.dim_in_pixel();
    let room = ((h as i32 - y - 20) / 18).max(1) as usize;
    for (i, s) in e.series.iter().enumerate() {
        if i + 1 == room && n > room {
            legend.draw(&Text::new(
                format!("… and {} more", n - i),
                (8, y),
                small.clone(),
            ))?;
            break;
        }
        legend.draw(&Rectangle::new(
            [(8, y + 2), (26, y + 12)],
            color(i).filled(),
        ))?;
        let lines = wrap(&s.label, 30);
        for (k, l) in lines.iter().enumerate() {
            legend.draw(&Text::new(
                l.clone(),
                (32, y + 15 * k as i32),
                small.clone(),
            ))?;
        }
        y += 18 + 15 * (lines.len() as i32 - 1);
    }
    root.present()
}

/// Viridis, five stops.
const VIRIDIS: [(f64, f64, f64); 5] = [
    (68.0, 1.0, 84.0),
    (59.0, 82.0, 139.0),
    (33.0, 145.0, 140.0),
    (94.0, 201.0, 98.0),
    (253.0, 231.0, 37.0),
];

/// The viridis colour at t in [0, 1] (clamped; NaN is the lowest colour).
pub fn viridis(t: f64) -> RGBColor {
    let t = if t.is_nan() { 0.0 } else { t.clamp(0.0, 1.0) };
    let f = t * (VIRIDIS.len() - 1) as f64;
    let i = (f.floor() as usize).min(VIRIDIS.len() - 2);
    let u = f - i as f64;
    let (a, b) = (VIRIDIS[i], VIRIDIS[i + 1]);
    let mix = |p: f64, q: f64| (p + (q - p) * u).round() as u8;
    RGBColor(mix(a.0, b.0), mix(a.1, b.1), mix(a.2, b.2))
}

/// The smallest and largest finite cell mean of a heatmap.
pub fn heat_range(h: &Heatmap) -> Option<(f64, f64)> {
    let means = h
        .cells
        .iter()
        .flatten()
        .flatten()
        .filter_map(|p| p.stats.mean)
        .filter(|m| m.is_finite());
    let mut r: Option<(f64, f64)> = None;
    for m in means {
        r = Some(match r {
            None => (m, m),
            Some((lo, hi)) => (if m < lo { m } else { lo }, if m > hi { m } else { hi }),
        });
    }
    r
}

fn draw_heatmap<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    h: &Heatmap,
    title: &str,
) -> DrawResult<DB> {
    root.fill(&WHITE)?;
    let (w, _) = root.dim_in_pixel();
    let (plot, legend) = root.split_horizontally(w - LEGEND_WIDTH);
    let (nx, ny) = (h.xs.len().max(1) as f64, h.ys.len().max(1) as f64);
    let mut chart = ChartBuilder::on(&plot)
        .caption(title, (FONT, 20).into_font().style(FontStyle::Bold))
        .margin(14)
        .x_label_area_size(44)
        .y_label_area_size(110)
        .build_cartesian_2d(0.0..nx, 0.0..ny)?;
    chart
        .configure_mesh()
        .x_labels(0)
        .y_labels(0)
        .disable_mesh()
        .x_desc(h.x.as_str())
        .y_desc(h.y.as_str())
        .axis_desc_style((FONT, 15))
        .draw()?;
    let range = heat_range(h);
    let t_of = |m: f64| match range {
        Some((lo, hi)) if hi > lo => (m - lo) / (hi - lo),
        _ => 0.5,
    };
    let d = h.metric.decimals();
    let center = Pos::new(HPos::Center, VPos::Center);
    for (r, row) in h.cells.iter().enumerate() {
        for (c, cell) in row.iter().enumerate() {
            let (x, y) = (c as f64, r as f64);
            let mean = cell
                .as_ref()
                .and_then(|p| p.stats.mean)
                .filter(|m| m.is_finite());
            let fill = mean.map_or(RGBColor(225, 225, 225), |m| viridis(t_of(m)));
            chart.draw_series(std::iter::once(Rectangle::new(
                [(x, y), (x + 1.0, y + 1.0)],
                fill.filled(),
            )))?;
            chart.draw_series(std::iter::once(Rectangle::new(
                [(x, y), (x + 1.0, y + 1.0)],
                WHITE.stroke_width(2),
            )))?;
            let ink = match mean {
                Some(m) if t_of(m) < 0.6 => WHITE,
                _ => BLACK,
            };
            let mut lines = match cell {
                None if h.not_shown > 0 => vec!["none shown".to_string()],
                None => vec!["no runs".to_string()],
                Some(p) => vec![
                    mean.map_or("–".to_string(), |m| format!("{m:.d$}")),
                    match p.reached {
                        Some(_) => String::new(),
                        None => format!("n={}", p.stats.n),
                    },
                ],
            };
            lines.retain(|l| !l.is_empty());
            if let Some(m) = cell.as_ref().and_then(marks) {
                lines.push(m);
            }
            let (px, py) = chart.backend_coord(&(x + 0.5, y + 0.5));
            let top = py - 9 * (lines.len() as i32 - 1);
            for (k, l) in lines.iter().enumerate() {
                let size = if k == 0 { 15 } else { 12 };
                let style = (FONT, size).into_font().color(&ink).pos(center);
                root.draw(&Text::new(l.clone(), (px, top + 18 * k as i32), style))?;
            }
        }
    }
    // Tick labels at the cell centres.
    let tick = (FONT, 13).into_font().color(&BLACK);
    for (c, v) in h.xs.iter().enumerate() {
        let (px, py) = chart.backend_coord(&(c as f64 + 0.5, 0.0));
        let style = tick.clone().pos(Pos::new(HPos::Center, VPos::Top));
        root.draw(&Text::new(tick_label(v), (px, py + 6), style))?;
    }
    for (r, v) in h.ys.iter().enumerate() {
        let (px, py) = chart.backend_coord(&(0.0, r as f64 + 0.5));
        let style = tick.clone().pos(Pos::new(HPos::Right, VPos::Center));
        root.draw(&Text::new(tick_label(v), (px - 6, py), style))?;
    }
    if h.not_shown > 0 {
        let (px, py) = chart.backend_coord(&(0.0, 0.0));
        root.draw(&Text::new(
            format!(
                "{} runs not shown (no value of {} or {})",
                h.not_shown, h.x, h.y
            ),
            (px, py + 26),
            (FONT, 12).into_font().color(&MARK),
        ))?;
    }

    // Legend: what a cell says, then the colour bar from the lowest to the highest mean.
    let small = (FONT, 13).into_font();
    let target = h.target.unwrap_or(f64::NAN);
    let mut y = 44;
    for line in [
        "colour and number: the mean".to_string(),
        format!("  {}", cut(&h.metric.title(target).to_lowercase(), 30)),
        "  over the runs that count".to_string(),
        "n: runs in the mean; k/n reached".to_string(),
        "div / col / nv: diverged / collapsed".to_string(),
        "  / no-value runs".to_string(),
    ] {
        legend.draw(&Text::new(line, (8, y), small.clone()))?;
        y += 17;
    }
    if let Some((lo, hi)) = range {
        y += 12;
        let steps = 40;
        for k in 0..steps {
            let t = 1.0 - k as f64 / (steps - 1) as f64;
            legend.draw(&Rectangle::new(
                [(12, y + 4 * k), (36, y + 4 * k + 4)],
                viridis(t).filled(),
            ))?;
        }
        legend.draw(&Text::new(format!("{hi:.d$}"), (44, y), small.clone()))?;
        legend.draw(&Text::new(
            format!("{lo:.d$}"),
            (44, y + 4 * steps - 12),
            small.clone(),
        ))?;
    }
    root.present()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::chart::{to_png, to_svg};
    use crate::report::effects::tests::sample_runs;
    use crate::report::effects::{dims, effect, heatmap, EffectMetric};

    #[test]
    fn tick_labels_are_short() {
        assert_eq!(tick_label("0.0001"), "1e-4");
        assert_eq!(tick_label("0.001"), "0.001");
        assert_eq!(tick_label("0.000316227766017"), "3.16e-4");
        assert_eq!(tick_label("0.00316227766017"), "0.00316");
        assert_eq!(tick_label("0.1"), "0.1");
        assert_eq!(tick_label("64"), "64");
        assert_eq!(tick_label("256"), "256");
        assert_eq!(tick_label("0.5"), "0.5");
        assert_eq!(tick_label("LSTM h64"), "LSTM h64");
        assert_eq!(tick_label("1000000"), "1e6");
    }

    #[test]
    fn dodge_spreads_lines_symmetrically() {
        assert_eq!(dodge(0, 1, 10.0), 0.0);
        assert_eq!(
            (dodge(0, 3, 10.0), dodge(1, 3, 10.0), dodge(2, 3, 10.0)),
            (-0.2, 0.0, 0.2)
        );
    }

    #[test]
    fn viridis_ends_and_middle() {
        assert_eq!(viridis(0.0), RGBColor(68, 1, 84));
        assert_eq!(viridis(1.0), RGBColor(253, 231, 37));
        assert_eq!(viridis(0.5), RGBColor(33, 145, 140));
        assert_eq!(viridis(f64::NAN), RGBColor(68, 1, 84));
        assert_eq!(viridis(7.0), RGBColor(253, 231, 37));
    }

    #[test]
    fn effect_svg_has_ticks_bars_marks_and_legend() {
        let runs = sample_runs();
        let d = dims(&crate::report::effects::tests::candidates(), &runs);
        let e = effect(&d, "lr", &runs, EffectMetric::FinalTestAcc, 0.9);
        let s = to_svg(&e, "Final test accuracy vs lr").unwrap();
        assert!(s.starts_with("<svg"));
        for text in [
            "Final test accuracy vs lr",
            "lr (log scale)",
            "0.001",
            "0.01",
            "0.1",
            "hidden=32",
            "hidden=64",
            "1 div",
            "95% t interval",
        ] {
            assert!(s.contains(text), "missing {text:?}");
        }
        // Two lines on a numeric axis: two polylines of points (plus bars and ticks as paths).
        assert!(
            s.matches("<circle").count() >= 5,
            "{}",
            s.matches("<circle").count()
        );
        let p = to_png(&e, "demo").unwrap();
        assert_eq!(&p[..8], b"\x89PNG\r\n\x1a\n");
    }

    #[test]
    fn time_to_target_charts_say_k_of_n_reached_at_every_point() {
        let runs = sample_runs();
        let d = dims(&crate::report::effects::tests::candidates(), &runs);
        let e = effect(&d, "lr", &runs, EffectMetric::TimeToTarget, 0.9);
        for p in e.series.iter().flat_map(|s| &s.points) {
            let r = p.reached.unwrap();
            assert!(
                marks(p)
                    .unwrap()
                    .starts_with(&format!("{}/{} reached", r.k, r.n)),
                "{p:?}"
            );
        }
        let s = to_svg(&e, "ttt").unwrap();
        // hidden=32 lr=0.1: the completed run never reached 0.9 (the diverged one is left out);
        // hidden=64 lr=0.1: both diverged.
        for text in ["2/2 reached", "0/1 reached, 1 div", "0/0 reached, 2 div"] {
            assert!(s.contains(text), "missing {text:?}");
        }
        let h = heatmap(&d, &runs, EffectMetric::TimeToTarget, 0.9).unwrap();
        let s = to_svg(&h, "ttt").unwrap();
        assert!(
            s.contains("2/2 reached") && s.contains("0/1 reached"),
            "{s}"
        );
    }

    #[test]
    fn nan_means_and_no_value_runs_are_marked() {
        let mut runs = sample_runs();
        runs[0].final_test_acc = Some(f64::NAN);
        let mut none = runs[11].clone();
        none.final_test_acc = None;
        runs.push(none);
        let d = dims(&crate::report::effects::tests::candidates(), &runs);
        let e = effect(&d, "lr", &runs, EffectMetric::FinalTestAcc, 0.9);
        assert_eq!(marks(&e.series[0].points[0]).as_deref(), Some("NaN"));
        assert_eq!(marks(&e.series[2].points[0]).as_deref(), Some("1 nv"));
        let s = to_svg(&e, "nan").unwrap();
        assert!(s.contains("\nNaN\n") && s.contains("1 nv"), "{s}");
    }

    #[test]
    fn legend_labels_wrap_and_stay_whole() {
        assert_eq!(wrap("hidden=64", 30), ["hidden=64"]);
        let l = "a_long_shared_variant_name, hidden=64, lr=0.001, batch=32";
        let w = wrap(l, 30);
        assert_eq!(
            w,
            [
                "a_long_shared_variant_name,",
                "hidden=64, lr=0.001, batch=32"
            ]
        );
        assert_eq!(w.join(" "), l);
    }

    #[test]
    fn heatmap_svg_annotates_every_cell() {
        let runs = sample_runs();
        let d = dims(&crate::report::effects::tests::candidates(), &runs);
        let h = heatmap(&d, &runs, EffectMetric::FinalTestAcc, 0.9).unwrap();
        let s = to_svg(&h, "heat").unwrap();
        assert!(
            s.contains("n=2") && s.contains("n=0") && s.contains("1 div"),
            "{s}"
        );
        assert!(
            s.contains("no runs"),
            "the missing pair is said to have no runs"
        );
        let p = to_png(&h, "heat").unwrap();
        assert_eq!(&p[..8], b"\x89PNG\r\n\x1a\n");
    }
}
