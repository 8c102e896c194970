//! A model's parameter list, from its config alone: every tensor's PyTorch name and shape in
//! `named_parameters()` order ([`param_layout`]), and what is counted from it. The model
//! (`mod.rs`) and its initial values (`init.rs`) both read it, so the dependency points one
//! way: `mod.rs` uses `init.rs`, and both use this.

use serde::Serialize;

use crate::data::CLASSES;
use crate::trainer::config::ModelConfig;

/// Name and PyTorch shape of one parameter tensor.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ParamInfo {
    pub name: String,
    pub shape: Vec<usize>,
}

impl ParamInfo {
    pub fn numel(&self) -> usize {
        self.shape.iter().product()
    }
}

/// Tensors per recurrent layer: W_ih, W_hh, b_ih, b_hh, in that order.
pub const PER_LAYER: usize = 4;

/// Input features of layer `l`: what one step of the image holds (28 pixels of a row or column,
/// or 1 pixel), or the layer below's state.
pub(super) fn layer_input(cfg: &ModelConfig, l: usize) -> usize {
    if l == 0 {
        cfg.input.features()
    } else {
        cfg.hidden
    }
}

/// Parameter names and shapes for a config, in PyTorch's `named_parameters()` order
/// ([`PER_LAYER`] per layer, then the head's weight and bias).
pub fn param_layout(cfg: &ModelConfig) -> Vec<ParamInfo> {
    let g = cfg.cell.gates() * cfg.hidden;
    let h = cfg.hidden;
    let mut v = Vec::with_capacity(PER_LAYER * cfg.layers + 2);
    let p = |name: String, shape: Vec<usize>| ParamInfo { name, shape };
    for l in 0..cfg.layers {
        let input = layer_input(cfg, l);
        v.push(p(format!("rnn.weight_ih_l{l}"), vec![g, input]));
        v.push(p(format!("rnn.weight_hh_l{l}"), vec![g, h]));
        v.push(p(format!("rnn.bias_ih_l{l}"), vec![g]));
        v.push(p(format!("rnn.bias_hh_l{l}"), vec![g]));
    }
    v.push(p("fc.weight".into(), vec![CLASSES, h]));
    v.push(p("fc.bias".into(), vec![CLASSES]));
    v
}

/// Total number of trainable scalars.
pub fn param_count(cfg: &ModelConfig) -> usize {
    param_layout(cfg).iter().map(ParamInfo::numel).sum()
}
