//! The floating-point work of one training sample, counted from the model's shapes: what
//! `bench` divides by time to give GFLOP/s.
//!
//! Only the matrix products are counted (2 FLOPs per multiply-add), the convention of GEMM
//! benchmarks and of PyTorch's FLOP counter; gate nonlinearities, biases and the loss are left
//! out (a few percent at these sizes). With `I` the layer's input features, `H` the hidden size,
//! `G = gates·H` the stacked gate rows (1, 3 or 4 gates for rnn, gru, lstm), `T` the time steps
//! and `C` = 10 classes, per sample:
//!
//! - forward, each layer and step: `x·W_ihᵀ` and `h·W_hhᵀ`, `2·G·(I + H)`;
//! - backward, each layer and step: the weight gradients `dW_ih`, `dW_hh` (`2·G·(I + H)`), the
//!   gradient of the previous state (`2·G·H`) and of the layer's input (`2·G·I`), except in the
//!   first layer, whose input is the data and needs none (as in PyTorch);
//! - the head (`Linear(H, C)`): `2·H·C` forward, `4·H·C` backward (weight and input gradients).
//!
//! Total: `Σ_layers T·(6·G·(I + H) − [first layer] 2·G·I) + 6·H·C`.

use crate::data::CLASSES;
use crate::trainer::config::ModelConfig;

use super::layout::layer_input;

/// FLOPs of one training sample's forward and backward pass (the module doc has the formula).
pub fn train_flops_per_sample(cfg: &ModelConfig) -> f64 {
    let steps = cfg.input.steps() as f64;
    let h = cfg.hidden as f64;
    let g = (cfg.cell.gates() * cfg.hidden) as f64;
    let layers: f64 = (0..cfg.layers)
        .map(|l| {
            let i = layer_input(cfg, l) as f64;
            let input_grad = if l == 0 { 0.0 } else { 2.0 * g * i };
            steps * (4.0 * g * (i + h) + 2.0 * g * h + input_grad)
        })
        .sum();
    layers + 6.0 * h * CLASSES as f64
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trainer::config::presets::preset;
    use crate::trainer::config::InputMode;

    #[test]
    fn counts_match_hand_worked_recipes() {
        // lstm_h64: G = 256, I = 28, H = 64, T = 28, one layer.
        // Per step 4·256·92 + 2·256·64 = 94208 + 32768 = 126976; × 28 = 3555328; head 3840.
        let lstm = preset("lstm_h64").unwrap().model;
        assert_eq!(train_flops_per_sample(&lstm), 3_559_168.0);
        // model_b: rnn h100, 2 layers. Layer 0: 4·100·128 + 2·100·100 = 71200 per step;
        // layer 1: 4·100·200 + 2·100·100 + 2·100·100 = 120000; (71200 + 120000)·28 = 5353600;
        // head 6000.
        let b = preset("model_b").unwrap().model;
        assert_eq!(train_flops_per_sample(&b), 5_359_600.0);
        // Pixels: I = 1, T = 784 (lstm h64): per step 4·256·65 + 2·256·64 = 99328.
        let mut px = lstm.clone();
        px.input = InputMode::Pixels;
        assert_eq!(train_flops_per_sample(&px), 99_328.0 * 784.0 + 3840.0);
    }
}
