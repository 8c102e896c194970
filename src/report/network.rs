//! The picture of a network as configured, for `describe --svg/--png` and the report's Networks
//! section. [`Diagram::of`] lays a model config out as a column of blocks, read top to bottom:
//! the input (data set, how an image becomes a sequence), each recurrent layer (kind, sizes,
//! activation or gates, init scheme), dropout between layers, the read-out of the last step, the
//! linear head and the logits, with the tensor shapes (batch first, as PyTorch's
//! `batch_first=True`) on the arrows between them. Each block's parameter count is summed from
//! the model's own parameter list (`trainer::model::layout::param_layout`) and the total is
//! `param_count`, so the picture cannot disagree with `describe` or the model. Laying out is
//! pure and unit-tested; drawing it with plotters gives SVG text or PNG bytes (text in the
//! embedded DejaVu Sans, as every chart) and does no I/O. [`report_networks`] gives the report
//! one picture per distinct network of its variants, from the loaded runs' configs.

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use plotters::style::FontStyle;

use super::chart::{to_png_sized, to_svg_sized, ChartError, Drawable, FONT};
use super::load::Loaded;
use super::summarize::{group_key, Summary};
use crate::data::{Dataset, CLASSES, SIDE};
use crate::trainer::config::{InitScheme, InputMode, LayerKind, ModelConfig, TrainConfig};
use crate::trainer::model::layout::{param_count, param_layout, ParamInfo, PER_LAYER};

/// What a block of the diagram is; it picks the block's colours.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BlockKind {
    Input,
    Recurrent,
    Dropout,
    Readout,
    Head,
    Output,
}

/// One box of the diagram: a bold first line, detail lines under it, and its parameter count
/// (None for blocks without parameters).
#[derive(Clone, Debug, PartialEq)]
pub struct Block {
    pub kind: BlockKind,
    pub title: String,
    pub lines: Vec<String>,
    pub params: Option<usize>,
}

/// A network laid out as blocks joined by arrows; `edges[i]` is the shape of the tensor that
/// flows from `blocks[i]` to `blocks[i + 1]`.
#[derive(Clone, Debug, PartialEq)]
pub struct Diagram {
    pub title: String,
    pub blocks: Vec<Block>,
    pub edges: Vec<String>,
    /// Parameters of the whole model (`layout::param_count`).
    pub total: usize,
    /// Parameter tensors of the whole model.
    pub tensors: usize,
}

/// Groups digits in threes: 34210 → "34,210".
pub fn thousands(n: usize) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// "[400, 28]"
fn shape(t: &ParamInfo) -> String {
    let dims: Vec<String> = t.shape.iter().map(|d| d.to_string()).collect();
    format!("[{}]", dims.join(", "))
}

fn numel(tensors: &[ParamInfo]) -> usize {
    tensors.iter().map(ParamInfo::numel).sum()
}

/// "B × 28 × 100": a batch-first shape with B for the batch.
fn batch_shape(dims: &[usize]) -> String {
    let mut s = String::from("B");
    for d in dims {
        s.push_str(&format!(" × {d}"));
    }
    s
}

impl Diagram {
    /// The diagram of `cfg` reading `dataset` (the config is normalized first, as the model
    /// builds it).
    pub fn of(cfg: &ModelConfig, dataset: Dataset) -> Diagram {
        let cfg = cfg.clone().normalized();
        let layout = param_layout(&cfg);
        let (steps, features, h) = (cfg.input.steps(), cfg.input.features(), cfg.hidden);
        let mut blocks = Vec::new();
        let mut edges = Vec::new();

        let reading = match cfg.input {
            InputMode::Rows => format!("read row by row: {steps} steps of {features} pixels"),
            InputMode::Columns => {
                format!("read column by column: {steps} steps of {features} pixels")
            }
            InputMode::Pixels => format!("read pixel by pixel: {steps} steps of {features} pixel"),
            InputMode::Permuted => format!(
                "permuted pixels (seed {}): {steps} steps of {features} pixel",
                cfg.permutation_seed.unwrap_or(0)
            ),
        };
        blocks.push(Block {
            kind: BlockKind::Input,
            title: format!("Input: {} image, {SIDE} × {SIDE}", dataset.title()),
            lines: vec![reading, "pixels scaled to [0, 1]".into()],
            params: None,
        });
        edges.push(batch_shape(&[steps, features]));

        let kind = match cfg.cell {
            LayerKind::Rnn => "RNN",
            LayerKind::Lstm => "LSTM",
            LayerKind::Gru => "GRU",
        };
        for l in 0..cfg.layers {
            let tensors = &layout[PER_LAYER * l..PER_LAYER * (l + 1)];
            let input = tensors[0].shape[1];
            let mut lines = vec![match cfg.cell {
                LayerKind::Rnn => format!(
                    "h_t = {}(W_ih x_t + W_hh h_t−1 + b_ih + b_hh)",
                    cfg.rnn_activation()
                ),
                LayerKind::Lstm => "gates i, f, g, o; c_t and h_t, h_0 = c_0 = 0".into(),
                LayerKind::Gru => "gates r, z, n; h_0 = 0".into(),
            }];
            lines.push(format!(
                "W_ih {} · W_hh {} · b_ih, b_hh {}",
                shape(&tensors[0]),
                shape(&tensors[1]),
                shape(&tensors[2])
            ));
            lines.push(init_line(&cfg, h));
            blocks.push(Block {
                kind: BlockKind::Recurrent,
                title: format!("{kind} layer {l}: {input} → {h}"),
                lines,
                params: Some(numel(tensors)),
            });
            edges.push(batch_shape(&[steps, h]));
            if let Some(p) = cfg.dropout.filter(|_| l + 1 < cfg.layers) {
                blocks.push(Block {
                    kind: BlockKind::Dropout,
                    title: format!("Dropout p = {p}"),
                    lines: vec!["on layer outputs, in training only".into()],
                    params: None,
                });
                edges.push(batch_shape(&[steps, h]));
            }
        }

        blocks.push(Block {
            kind: BlockKind::Readout,
            title: "Last step".into(),
            lines: vec![format!(
                "h_{steps} of layer {}: output[:, −1, :]",
                cfg.layers - 1
            )],
            params: None,
        });
        edges.push(batch_shape(&[h]));

        let head = &layout[PER_LAYER * cfg.layers..];
        blocks.push(Block {
            kind: BlockKind::Head,
            title: format!("Linear: {h} → {CLASSES}"),
            lines: vec![format!(
                "weight {} · bias {}",
                shape(&head[0]),
                shape(&head[1])
            )],
            params: Some(numel(head)),
        });
        edges.push(batch_shape(&[CLASSES]));

        blocks.push(Block {
            kind: BlockKind::Output,
            title: format!("{CLASSES} logits: {} classes", dataset.title()),
            lines: vec!["cross-entropy in training, argmax to predict".into()],
            params: None,
        });

        let layers = if cfg.layers == 1 {
            String::new()
        } else {
            format!(", {} layers", cfg.layers)
        };
        let cell = match cfg.cell {
            LayerKind::Rnn => format!("RNN ({})", cfg.rnn_activation()),
            _ => kind.to_string(),
        };
        Diagram {
            title: format!("{cell}, hidden {h}{layers} on {}", dataset.title()),
            blocks,
            edges,
            total: param_count(&cfg),
            tensors: layout.len(),
        }
    }

    /// The picture's size in pixels: a fixed width, the height its blocks need.
    pub fn size(&self) -> (u32, u32) {
        let mut y = TOP;
        for (i, b) in self.blocks.iter().enumerate() {
            y += block_height(b);
            if i + 1 < self.blocks.len() {
                y += GAP;
            }
        }
        (WIDTH, (y + FOOTER) as u32)
    }

    /// The diagram as an SVG document.
    pub fn svg(&self) -> Result<String, ChartError> {
        to_svg_sized(self, &self.title, self.size())
    }

    /// The diagram as a PNG image.
    pub fn png(&self) -> Result<Vec<u8>, ChartError> {
        to_png_sized(self, &self.title, self.size())
    }
}

/// A network of the report: its diagram as SVG and the groups (indices into
/// `Summary::groups`) whose runs train it.
#[derive(Clone, Debug)]
pub struct NetworkFigure {
    /// The page anchor: `network-0`, `network-1` … in order of first use.
    pub id: String,
    pub title: String,
    pub svg: String,
    pub groups: Vec<usize>,
    pub parameters: usize,
}

/// Why the report's networks could not be drawn.
#[derive(Debug, thiserror::Error)]
pub enum NetworksError {
    #[error("cannot match the runs to their variants")]
    Polars(#[from] polars::prelude::PolarsError),
    #[error(transparent)]
    Chart(#[from] ChartError),
}

/// One figure per distinct network (model config and data set) among the summary's groups, in
/// summary order, read from the loaded runs' configs (the disk, never a model): a sweep of
/// learning rates has one picture for all its variants, a sweep of hidden sizes one per size.
/// A group whose runs differ in their network (a coarse `--by`) is in several figures.
pub fn report_networks(loaded: &Loaded, s: &Summary) -> Result<Vec<NetworkFigure>, NetworksError> {
    let group_of: std::collections::BTreeMap<_, usize> = s
        .groups
        .iter()
        .enumerate()
        .map(|(i, g)| (g.key.clone(), i))
        .collect();
    let ids = loaded.runs.column("id")?.str()?;
    // Per group, its runs' networks (model as JSON text, the key; then the config), in run order.
    let mut per_group: Vec<Vec<(String, &TrainConfig)>> = vec![Vec::new(); s.groups.len()];
    for r in 0..loaded.runs.height() {
        let key = group_key(&loaded.runs, &s.by, r)?;
        let (Some(&g), Some(cfg)) = (
            group_of.get(&key),
            ids.get(r).and_then(|id| loaded.configs.get(id)),
        ) else {
            continue;
        };
        let model = serde_json::to_string(&(cfg.model.clone().normalized(), cfg.dataset))
            .expect("a config serializes");
        if !per_group[g].iter().any(|(m, _)| *m == model) {
            per_group[g].push((model, cfg));
        }
    }
    let mut figures: Vec<(String, NetworkFigure)> = Vec::new();
    for (g, nets) in per_group.into_iter().enumerate() {
        for (model, cfg) in nets {
            if let Some((_, f)) = figures.iter_mut().find(|(m, _)| *m == model) {
                f.groups.push(g);
                continue;
            }
            let d = Diagram::of(&cfg.model, cfg.dataset);
            let f = NetworkFigure {
                id: format!("network-{}", figures.len()),
                svg: d.svg()?,
                title: d.title,
                groups: vec![g],
                parameters: d.total,
            };
            figures.push((model, f));
        }
    }
    Ok(figures.into_iter().map(|(_, f)| f).collect())
}

/// How a layer's weights start: PyTorch's uniform init, or the scheme the config names.
fn init_line(cfg: &ModelConfig, h: usize) -> String {
    let mut s = match cfg.init {
        InitScheme::Pytorch => format!("init: PyTorch, all U(−1/√{h}, 1/√{h})"),
        InitScheme::Orthogonal => "init: orthogonal W_hh blocks, rest PyTorch's".into(),
        InitScheme::Identity => format!(
            "init: identity (IRNN), W_hh = {}·I, recurrent b = 0",
            cfg.init_scale.unwrap_or(1.0)
        ),
    };
    if let Some(b) = cfg.forget_bias {
        s.push_str(&format!("; forget bias {b}"));
    }
    s
}

/// Picture width and the geometry of the column of blocks (pixels).
const WIDTH: u32 = 520;
const TOP: i32 = 58;
const GAP: i32 = 34;
const FOOTER: i32 = 44;
const BOX_X0: i32 = 16;
const BOX_X1: i32 = 372;
const LEDGER_X: i32 = WIDTH as i32 - 16;
const TITLE_LINE: i32 = 18;
const LINE: i32 = 16;
const PAD: i32 = 8;
/// Text and arrows.
const INK: RGBColor = RGBColor(34, 34, 34);
const GREY: RGBColor = RGBColor(90, 90, 90);

fn block_height(b: &Block) -> i32 {
    PAD + TITLE_LINE + LINE * b.lines.len() as i32 + PAD - 2
}

/// Fill and border of a block.
fn colours(k: BlockKind) -> (RGBColor, RGBColor) {
    match k {
        BlockKind::Input | BlockKind::Output => (RGBColor(244, 244, 244), RGBColor(150, 150, 150)),
        BlockKind::Recurrent => (RGBColor(225, 235, 245), RGBColor(78, 121, 167)),
        BlockKind::Dropout => (RGBColor(252, 246, 222), RGBColor(200, 160, 40)),
        BlockKind::Readout => (RGBColor(232, 244, 242), RGBColor(118, 183, 178)),
        BlockKind::Head => (RGBColor(253, 236, 218), RGBColor(242, 142, 43)),
    }
}

impl Drawable for Diagram {
    fn draw_on<DB: DrawingBackend>(
        &self,
        root: &DrawingArea<DB, Shift>,
        title: &str,
    ) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
        root.fill(&WHITE)?;
        let grey = GREY;
        let bold = (FONT, 15).into_font().style(FontStyle::Bold).color(&INK);
        let head = (FONT, 13).into_font().style(FontStyle::Bold).color(&INK);
        let small = (FONT, 12).into_font().color(&GREY);
        let right = |f: TextStyle<'static>| f.pos(Pos::new(HPos::Right, VPos::Top));
        root.draw(&Text::new(title.to_string(), (BOX_X0, 12), bold))?;
        root.draw(&Text::new(
            "parameters",
            (LEDGER_X, TOP - 20),
            right(small.clone()),
        ))?;

        let cx = (BOX_X0 + BOX_X1) / 2;
        let mut y = TOP;
        for (i, b) in self.blocks.iter().enumerate() {
            let h = block_height(b);
            let (fill, border) = colours(b.kind);
            root.draw(&Rectangle::new(
                [(BOX_X0, y), (BOX_X1, y + h)],
                fill.filled(),
            ))?;
            root.draw(&Rectangle::new(
                [(BOX_X0, y), (BOX_X1, y + h)],
                border.stroke_width(1),
            ))?;
            root.draw(&Text::new(
                b.title.clone(),
                (BOX_X0 + 10, y + PAD),
                head.clone(),
            ))?;
            for (k, line) in b.lines.iter().enumerate() {
                root.draw(&Text::new(
                    line.clone(),
                    (BOX_X0 + 10, y + PAD + TITLE_LINE + LINE * k as i32),
                    small.clone(),
                ))?;
            }
            if let Some(n) = b.params {
                root.draw(&Text::new(
                    thousands(n),
                    (LEDGER_X, y + PAD),
                    right(head.clone()),
                ))?;
            }
            y += h;
            if let Some(edge) = self.edges.get(i) {
                let (y0, y1) = (y, y + GAP);
                root.draw(&PathElement::new(
                    vec![(cx, y0), (cx, y1 - 6)],
                    grey.stroke_width(2),
                ))?;
                root.draw(&Polygon::new(
                    vec![(cx - 5, y1 - 8), (cx + 5, y1 - 8), (cx, y1)],
                    grey.filled(),
                ))?;
                root.draw(&Text::new(
                    edge.clone(),
                    (cx + 12, y0 + GAP / 2 - 7),
                    small.clone(),
                ))?;
                y = y1;
            }
        }
        y += 14;
        root.draw(&PathElement::new(
            vec![(BOX_X1 + 16, y - 6), (LEDGER_X, y - 6)],
            grey.stroke_width(1),
        ))?;
        root.draw(&Text::new(
            format!("total, {} parameter tensors", self.tensors),
            (BOX_X0, y),
            small.clone(),
        ))?;
        root.draw(&Text::new(
            thousands(self.total),
            (LEDGER_X, y),
            right(head),
        ))?;
        root.present()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trainer::config::Activation;

    fn model(cell: LayerKind, hidden: usize, layers: usize) -> ModelConfig {
        ModelConfig {
            cell,
            hidden,
            layers,
            ..ModelConfig::default()
        }
    }

    /// Model B (RNN relu h100, 2 layers): the blocks in order, the shapes on the edges and the
    /// counts of the layout (34,210 in all, as `describe` prints).
    #[test]
    fn model_b_is_laid_out_with_shapes_and_counts() {
        let mut cfg = model(LayerKind::Rnn, 100, 2);
        cfg.activation = Some(Activation::Relu);
        let d = Diagram::of(&cfg, Dataset::Mnist);
        assert_eq!(d.title, "RNN (relu), hidden 100, 2 layers on MNIST");
        let titles: Vec<&str> = d.blocks.iter().map(|b| b.title.as_str()).collect();
        assert_eq!(
            titles,
            [
                "Input: MNIST image, 28 × 28",
                "RNN layer 0: 28 → 100",
                "RNN layer 1: 100 → 100",
                "Last step",
                "Linear: 100 → 10",
                "10 logits: MNIST classes",
            ]
        );
        assert_eq!(
            d.edges,
            [
                "B × 28 × 28",
                "B × 28 × 100",
                "B × 28 × 100",
                "B × 100",
                "B × 10"
            ]
        );
        let params: Vec<Option<usize>> = d.blocks.iter().map(|b| b.params).collect();
        // 100·28 + 100·100 + 2·100; 100·100 + 100·100 + 2·100; 10·100 + 10.
        assert_eq!(
            params,
            [None, Some(13_000), Some(20_200), None, Some(1_010), None]
        );
        assert_eq!((d.total, d.tensors), (34_210, 10));
        assert_eq!(d.total, params.iter().flatten().sum::<usize>());
        assert_eq!(
            d.blocks[1].lines[0],
            "h_t = relu(W_ih x_t + W_hh h_t−1 + b_ih + b_hh)"
        );
        assert_eq!(
            d.blocks[2].lines[1],
            "W_ih [100, 100] · W_hh [100, 100] · b_ih, b_hh [100]"
        );
        assert_eq!(
            d.blocks[1].lines[2],
            "init: PyTorch, all U(−1/√100, 1/√100)"
        );
        assert_eq!(d.blocks[3].lines[0], "h_28 of layer 1: output[:, −1, :]");
    }

    /// Input modes, dropout between layers (not after the last), the init schemes and the
    /// data set all show; every block count sums to the model's.
    #[test]
    fn reading_dropout_init_and_data_set_show() {
        let mut cfg = model(LayerKind::Lstm, 64, 3);
        cfg.dropout = Some(0.3);
        cfg.init = InitScheme::Orthogonal;
        cfg.forget_bias = Some(1.0);
        cfg.input = InputMode::Permuted;
        cfg.permutation_seed = Some(7);
        let d = Diagram::of(&cfg, Dataset::FashionMnist);
        let kinds: Vec<BlockKind> = d.blocks.iter().map(|b| b.kind).collect();
        use BlockKind::*;
        assert_eq!(
            kinds,
            [Input, Recurrent, Dropout, Recurrent, Dropout, Recurrent, Readout, Head, Output]
        );
        assert_eq!(d.edges.len(), d.blocks.len() - 1);
        assert_eq!(d.edges[0], "B × 784 × 1");
        assert_eq!(d.blocks[2].title, "Dropout p = 0.3");
        assert_eq!(
            d.blocks[0].lines[0],
            "permuted pixels (seed 7): 784 steps of 1 pixel"
        );
        assert_eq!(d.blocks[0].title, "Input: Fashion-MNIST image, 28 × 28");
        assert_eq!(d.blocks[1].title, "LSTM layer 0: 1 → 64");
        assert_eq!(
            d.blocks[1].lines[2],
            "init: orthogonal W_hh blocks, rest PyTorch's; forget bias 1"
        );
        assert_eq!(
            d.blocks[1].lines[1],
            "W_ih [256, 1] · W_hh [256, 64] · b_ih, b_hh [256]"
        );
        assert_eq!(d.total, param_count(&cfg));
        assert_eq!(
            d.total,
            d.blocks.iter().filter_map(|b| b.params).sum::<usize>()
        );

        let mut irnn = model(LayerKind::Rnn, 128, 1);
        irnn.init = InitScheme::Identity;
        irnn.init_scale = Some(0.5);
        irnn.input = InputMode::Pixels;
        let d = Diagram::of(&irnn, Dataset::Mnist);
        assert_eq!(d.title, "RNN (tanh), hidden 128 on MNIST");
        assert_eq!(
            d.blocks[1].lines[2],
            "init: identity (IRNN), W_hh = 0.5·I, recurrent b = 0"
        );
        assert_eq!(
            d.blocks[0].lines[0],
            "read pixel by pixel: 784 steps of 1 pixel"
        );
        let gru = Diagram::of(&model(LayerKind::Gru, 64, 1), Dataset::Mnist);
        assert_eq!(gru.blocks[1].lines[0], "gates r, z, n; h_0 = 0");
        assert_eq!(gru.total, param_count(&model(LayerKind::Gru, 64, 1)));
    }

    #[test]
    fn svg_and_png_draw_every_block() {
        let d = Diagram::of(&model(LayerKind::Lstm, 64, 2), Dataset::Mnist);
        let (w, h) = d.size();
        let svg = d.svg().unwrap();
        assert!(svg.starts_with("<svg"), "{}", &svg[..60]);
        assert!(svg.contains(&format!("width=\"{w}\" height=\"{h}\"")));
        assert_eq!(svg.matches("<rect").count() - 1, 2 * d.blocks.len());
        for text in [
            "LSTM layer 1: 64 → 64",
            "B × 28 × 64",
            "Linear: 64 → 10",
            "parameters",
        ] {
            assert!(svg.contains(text), "missing {text:?}");
        }
        assert!(svg.contains(&thousands(d.total)));
        let png = d.png().unwrap();
        let img = image::load_from_memory(&png).unwrap().to_rgb8();
        assert_eq!(img.dimensions(), (w, h));
        let dark = img
            .pixels()
            .filter(|p| p.0.iter().all(|&c| c < 100))
            .count();
        assert!(dark > 1000, "only {dark} dark pixels: no text drawn");
    }

    #[test]
    fn thousands_are_grouped() {
        assert_eq!(thousands(1_234_567), "1,234,567");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(0), "0");
    }
}
