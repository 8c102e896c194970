//! Drawing a `series::Panel` with plotters, as SVG text or PNG bytes (no file I/O). One chart:
//! a line per group (mean over seeds) with a shaded band (min–max over seeds), epochs on x, the
//! metric on y, a title, axis labels and a legend panel on the right. Text is laid out with the
//! embedded DejaVu Sans, so the output does not depend on the fonts installed. A chart that
//! cannot be drawn or encoded is a [`ChartError`] naming its title. [`ChartFormat`] says which
//! of the two encodings to make (`results curves --format`).

use std::sync::Once;

use image::ImageEncoder;
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::{register_font, FontStyle, Palette, Palette99};

use super::export::distinct_cut;
use super::series::Panel;
use super::summarize::Metric;

/// Chart size in pixels.
pub const SIZE: (u32, u32) = (960, 540);
pub(crate) const LEGEND_WIDTH: u32 = 270;
pub(crate) const FONT: &str = "sans-serif";

pub(crate) fn fonts() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // Both are valid TrueType fonts shipped inside the dejavu crate.
        let _ = register_font(FONT, FontStyle::Normal, dejavu::sans::regular());
        let _ = register_font(FONT, FontStyle::Bold, dejavu::sans::bold());
    });
}

/// The sweeps' folder names, e.g. ["activation", "lr"], for titles.
pub fn sweep_names(dirs: &[std::path::PathBuf]) -> Vec<String> {
    dirs.iter()
        .map(|d| {
            d.file_name().map_or_else(
                || d.display().to_string(),
                |f| f.to_string_lossy().into_owned(),
            )
        })
        .collect()
}

/// "Test accuracy", "Train loss", ...
pub fn metric_title(m: Metric) -> &'static str {
    match m {
        Metric::TestAcc => "Test accuracy",
        Metric::TestLoss => "Test loss",
        Metric::TrainAcc => "Train accuracy",
        Metric::TrainLoss => "Train loss",
    }
}

/// Tableau 10: distinct, readable on white, and kind to colour-blind readers.
const TABLEAU10: [(u8, u8, u8); 10] = [
    (78, 121, 167),
    (242, 142, 43),
    (225, 87, 89),
    (118, 183, 178),
    (89, 161, 79),
    (237, 201, 72),
    (176, 122, 161),
    (255, 157, 167),
    (156, 117, 95),
    (186, 176, 172),
];

/// The colour of the i-th group, shared by the line, its band and its legend entry: Tableau 10,
/// then plotters' 99-colour palette for larger sweeps.
pub fn color(i: usize) -> RGBColor {
    let (r, g, b) = match TABLEAU10.get(i) {
        Some(&c) => c,
        None => Palette99::COLORS[(i - TABLEAU10.len()) % Palette99::COLORS.len()],
    };
    RGBColor(r, g, b)
}

/// A chart that could not be made; both name the chart by its title.
#[derive(Debug, thiserror::Error)]
pub enum ChartError {
    /// plotters failed (its error type depends on the backend, hence the box).
    #[error("cannot draw the chart {title:?}")]
    Draw {
        title: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("cannot encode the chart {title:?} as PNG")]
    Png {
        title: String,
        #[source]
        source: image::ImageError,
    },
}

pub(crate) fn draw_error<E: std::error::Error + Send + Sync + 'static>(
    title: &str,
) -> impl FnOnce(E) -> ChartError + '_ {
    move |e| ChartError::Draw {
        title: title.to_string(),
        source: Box::new(e),
    }
}

/// Which files `results curves` writes per chart: SVG, PNG or both.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChartFormat {
    Svg,
    Png,
    Both,
}

impl ChartFormat {
    /// Every accepted spelling, in declaration order.
    pub const ALL: &'static [&'static str] = &["svg", "png", "both"];

    pub fn as_str(self) -> &'static str {
        match self {
            ChartFormat::Svg => "svg",
            ChartFormat::Png => "png",
            ChartFormat::Both => "both",
        }
    }

    /// Whether an SVG file is wanted.
    pub fn svg(self) -> bool {
        self != ChartFormat::Png
    }

    /// Whether a PNG file is wanted.
    pub fn png(self) -> bool {
        self != ChartFormat::Svg
    }
}

impl std::fmt::Display for ChartFormat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A chart that plotters can draw on any backend: the curves' [`Panel`], and the effect
/// charts and heatmaps of `effect_chart`. [`to_svg`] and [`to_png`] render any of them.
pub trait Drawable {
    fn draw_on<DB: DrawingBackend>(
        &self,
        root: &DrawingArea<DB, Shift>,
        title: &str,
    ) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>>;
}

/// `chart` as an SVG document of [`SIZE`].
pub fn to_svg(chart: &impl Drawable, title: &str) -> Result<String, ChartError> {
    to_svg_sized(chart, title, SIZE)
}

/// `chart` as a PNG image of [`SIZE`].
pub fn to_png(chart: &impl Drawable, title: &str) -> Result<Vec<u8>, ChartError> {
    to_png_sized(chart, title, SIZE)
}

/// `chart` as an SVG document of `size` pixels (a picture whose height follows its content,
/// such as `network`'s diagrams).
pub fn to_svg_sized(
    chart: &impl Drawable,
    title: &str,
    size: (u32, u32),
) -> Result<String, ChartError> {
    fonts();
    let mut out = String::new();
    {
        let root = SVGBackend::with_string(&mut out, size).into_drawing_area();
        chart.draw_on(&root, title).map_err(draw_error(title))?;
    }
    Ok(out)
}

/// `chart` as a PNG image of `size` pixels.
pub fn to_png_sized(
    chart: &impl Drawable,
    title: &str,
    size: (u32, u32),
) -> Result<Vec<u8>, ChartError> {
    fonts();
    let (w, h) = size;
    let mut rgb = vec![0u8; (w * h * 3) as usize];
    {
        let root = BitMapBackend::with_buffer(&mut rgb, size).into_drawing_area();
        chart.draw_on(&root, title).map_err(draw_error(title))?;
    }
    encode_png(&rgb, size, title)
}

impl Drawable for Panel {
    fn draw_on<DB: DrawingBackend>(
        &self,
        root: &DrawingArea<DB, Shift>,
        title: &str,
    ) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
        draw(root, self, title)
    }
}

/// An RGB buffer of `size` as PNG bytes.
fn encode_png(rgb: &[u8], size: (u32, u32), title: &str) -> Result<Vec<u8>, ChartError> {
    let (w, h) = size;
    let mut bytes = Vec::new();
    image::codecs::png::PngEncoder::new(&mut bytes)
        .write_image(rgb, w, h, image::ColorType::Rgb8)
        .map_err(|source| ChartError::Png {
            title: title.to_string(),
            source,
        })?;
    Ok(bytes)
}

fn draw<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    p: &Panel,
    title: &str,
) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    root.fill(&WHITE)?;
    let (w, _) = root.dim_in_pixel();
    let (plot, legend) = root.split_horizontally(w - LEGEND_WIDTH);
    let (x0, x1) = p.x_range();
    let (y0, y1) = p.y;
    let clamp = |v: f64| v.clamp(y0, y1);
    let mut chart = ChartBuilder::on(&plot)
        .caption(title, (FONT, 20).into_font().style(FontStyle::Bold))
        .margin(14)
        .x_label_area_size(44)
        .y_label_area_size(60)
        .build_cartesian_2d(x0..x1, y0..y1)?;
    chart
        .configure_mesh()
        .x_desc("epoch")
        .y_desc(metric_title(p.metric))
        .axis_desc_style((FONT, 15))
        .label_style((FONT, 13))
        .light_line_style(WHITE)
        .bold_line_style(RGBColor(225, 225, 225))
        .x_label_formatter(&|x| trim_float(*x))
        .y_label_formatter(&|y| trim_float(*y))
        .draw()?;
    for (i, s) in p.series.iter().enumerate() {
        let c = color(i);
        if s.points.iter().any(|q| q.n > 1) {
            let mut band: Vec<(f64, f64)> = s.points.iter().map(|q| (q.x, clamp(q.hi))).collect();
            band.extend(s.points.iter().rev().map(|q| (q.x, clamp(q.lo))));
            chart.draw_series(std::iter::once(Polygon::new(band, c.mix(0.18).filled())))?;
        }
        chart.draw_series(LineSeries::new(
            s.points.iter().map(|q| (q.x, clamp(q.mean))),
            c.stroke_width(2),
        ))?;
        chart.draw_series(
            s.points
                .iter()
                .map(|q| Circle::new((q.x, clamp(q.mean)), 2, c.filled())),
        )?;
    }

    // Legend: how to read the chart, then one swatch and label per group.
    let small = (FONT, 13).into_font();
    let mut y = 44;
    legend.draw(&Text::new("line: mean over seeds", (8, y), small.clone()))?;
    y += 17;
    legend.draw(&Text::new(
        "band: min–max over seeds",
        (8, y),
        small.clone(),
    ))?;
    y += 17;
    if p.clipped {
        legend.draw(&Text::new(
            format!("loss cut at {y1:.2}"),
            (8, y),
            small.clone(),
        ))?;
        y += 17;
    }
    y += 10;
    let (_, h) = legend.dim_in_pixel();
    let room = ((h as i32 - y - 20) / 18).max(1) as usize;
    let labels: Vec<String> = p.series.iter().map(|s| s.label.clone()).collect();
    for (i, name) in distinct_cut(&labels, 30).iter().enumerate() {
        if i + 1 == room && p.series.len() > room {
            legend.draw(&Text::new(
                format!("… and {} more", p.series.len() - i),
                (8, y),
                small.clone(),
            ))?;
            break;
        }
        let c = color(i);
        legend.draw(&Rectangle::new([(8, y + 2), (26, y + 12)], c.filled()))?;
        legend.draw(&Text::new(name.as_str(), (32, y), small.clone()))?;
        y += 18;
    }
    root.present()
}

/// 0.5 → "0.5", 2 → "2", 0.30000000000000004 → "0.3".
pub(crate) fn trim_float(x: f64) -> String {
    let s = format!("{x:.3}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s == "-0" {
        "0".into()
    } else {
        s.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::series::{aggregate, Obs};

    fn panel() -> Panel {
        let labels = vec!["Model A".to_string(), "LSTM h64".to_string()];
        let obs: Vec<Obs> = (0..3)
            .flat_map(|seed| {
                (0..=4).flat_map(move |e| {
                    (0..2).map(move |g| Obs {
                        group: g,
                        iteration: e * 100,
                        x: e as f64,
                        value: 0.1 + 0.2 * e as f64 * (0.8 + 0.1 * g as f64) + 0.01 * seed as f64,
                    })
                })
            })
            .collect();
        aggregate(Metric::TestAcc, &labels, &obs)
    }

    #[test]
    fn chart_formats_parse_print_and_choose_the_files() {
        for word in ChartFormat::ALL {
            let f: ChartFormat = serde_json::from_str(&format!("\"{word}\"")).unwrap();
            assert_eq!(f.to_string(), *word);
        }
        let wants = |f: ChartFormat| (f.svg(), f.png());
        assert_eq!(wants(ChartFormat::Svg), (true, false));
        assert_eq!(wants(ChartFormat::Png), (false, true));
        assert_eq!(wants(ChartFormat::Both), (true, true));
        assert!(serde_json::from_str::<ChartFormat>("\"pdf\"").is_err());
    }

    #[test]
    fn svg_has_title_axes_legend_and_a_path_per_series() {
        let s = to_svg(&panel(), "Test accuracy — demo").unwrap();
        assert!(s.starts_with("<svg"), "{}", &s[..60]);
        for text in [
            "Test accuracy — demo",
            "epoch",
            "Model A",
            "LSTM h64",
            "min–max",
        ] {
            assert!(s.contains(text), "missing {text:?}");
        }
        // Two bands (polygons) and two lines (polylines).
        assert_eq!(s.matches("<polygon").count(), 2);
        assert!(s.matches("<polyline").count() >= 2);
    }

    #[test]
    fn png_is_a_png_of_the_chart_size_with_ink() {
        let b = to_png(&panel(), "demo").unwrap();
        assert_eq!(&b[..8], b"\x89PNG\r\n\x1a\n");
        let img = image::load_from_memory(&b).unwrap().to_rgb8();
        assert_eq!(img.dimensions(), SIZE);
        let coloured = img
            .pixels()
            .filter(|p| p.0.iter().max().unwrap() - p.0.iter().min().unwrap() > 60)
            .count();
        assert!(coloured > 500, "only {coloured} coloured pixels");
    }

    #[test]
    fn trims_axis_numbers() {
        assert_eq!(trim_float(0.5), "0.5");
        assert_eq!(trim_float(2.0), "2");
        assert_eq!(trim_float(0.1 + 0.2), "0.3");
        assert_eq!(trim_float(-0.0001), "0");
    }
}
