//! The recurrent classifier: `layers` stacked RNN/LSTM/GRU cells read the 28 image rows as time
//! steps, and a linear head maps the top layer's last hidden state to 10 logits.
//!
//! dfdx 0.13 has no recurrent layers, so the cells are written with tensor ops on dfdx's tape.
//! Parameters are flat 1-D tensors with runtime sizes, in PyTorch's order, shapes and
//! initialisation (`rnn.weight_ih_l0`, `rnn.weight_hh_l0`, `rnn.bias_ih_l0`, `rnn.bias_hh_l0`, …,
//! `fc.weight`, `fc.bias`); the forward pass views them as matrices (reshape, permute and
//! broadcast keep the tensor id, so gradients land on the flat parameter).
//!
//! Each layer runs on the device's [`LayerKernel`] (fused on the CPU, dfdx ops elsewhere), given
//! the [`LayerParams`] view that [`Model::layer_params`] makes: the one place that knows where a
//! layer's tensors sit in the parameter list. One tape is threaded through the whole forward
//! pass by [`TapeThread`].
//!
//! Weights are saved as safetensors with PyTorch's names; loading them back (or loading given
//! values) checks every tensor's name and shape against the config and fails with a
//! [`ModelLoadError`] naming the first that does not fit.

pub mod dropout;
pub mod flops;
pub mod fused;
pub mod init;
pub mod kernel;
pub mod layout;
pub mod ops;
pub mod tape;

use dfdx::prelude::*;

use crate::data::sequence::Reading;
use crate::data::CLASSES;
use crate::trainer::config::{LayerKind, ModelConfig};
use crate::trainer::record::RunStatus;

use kernel::{LayerKernel, LayerParams};
use layout::{layer_input, param_layout, ParamInfo, PER_LAYER};
use tape::{Flat, Mat, TapeThread};

/// Parameter values that do not fit the model config, or bytes that are not safetensors.
#[derive(Debug, thiserror::Error)]
pub enum ModelLoadError {
    #[error("expected {expected} parameter tensors, got {got}")]
    TensorCount { expected: usize, got: usize },
    #[error("{name} has {got} values, expected {expected}")]
    ValueCount {
        name: String,
        got: usize,
        expected: usize,
    },
    #[error("not a safetensors file")]
    NotSafetensors(#[source] safetensors::SafeTensorError),
    #[error("missing tensor {name}")]
    MissingTensor { name: String },
    #[error("{name} is {dtype:?} {shape:?}, expected F32 {expected:?}")]
    WrongTensor {
        name: String,
        dtype: safetensors::Dtype,
        shape: Vec<usize>,
        expected: Vec<usize>,
    },
}

/// Bytes the CPU's fused layers keep per training sample for back-propagation through all the
/// steps of `cfg`'s input, with `elem` bytes per value (4 for f32): the sum over layers of
/// [`fused::saved_values_per_step`] times the steps.
pub fn saved_bytes_per_sample(cfg: &ModelConfig, elem: usize) -> usize {
    (0..cfg.layers)
        .map(|l| fused::saved_values_per_step(cfg.cell, layer_input(cfg, l), cfg.hidden))
        .sum::<usize>()
        * cfg.input.steps()
        * elem
}

/// PyTorch's module repr of the network, e.g. `LSTM(28, 64, batch_first=True)` + `Linear(64, 10)`.
pub fn torch_repr(cfg: &ModelConfig) -> String {
    let name = match cfg.cell {
        LayerKind::Rnn => "RNN",
        LayerKind::Lstm => "LSTM",
        LayerKind::Gru => "GRU",
    };
    let mut args = format!("{}, {}", cfg.input.features(), cfg.hidden);
    if cfg.layers > 1 {
        args.push_str(&format!(", num_layers={}", cfg.layers));
    }
    if cfg.cell == LayerKind::Rnn {
        args.push_str(&format!(", nonlinearity='{}'", cfg.rnn_activation()));
    }
    // nn.RNN's extra_repr puts dropout after batch_first.
    let dropout = cfg
        .dropout
        .filter(|&p| p > 0.0)
        .map(|p| format!(", dropout={p}"))
        .unwrap_or_default();
    format!(
        "Classifier(\n  (rnn): {name}({args}, batch_first=True{dropout})\n  (fc): Linear(in_features={}, out_features={CLASSES}, bias=True)\n)",
        cfg.hidden
    )
}

/// The network's parameters on device `D` with element type `E` (f32 for training, f64 in
/// gradient checks).
#[derive(Clone, Debug)]
pub struct Model<E: Dtype, D: Device<E>> {
    pub config: ModelConfig,
    pub params: Vec<Flat<E, D>>,
    pub layout: Vec<ParamInfo>,
    /// How the model reads an image, made once from `config` (a permuted order is a shuffle:
    /// not to be redone for every batch).
    reading: Reading,
}

impl<E: Dtype, D: Device<E>> Model<E, D> {
    /// How this model reads an image (see `data::sequence`).
    pub fn reading(&self) -> &Reading {
        &self.reading
    }

    /// PyTorch's initialisation: U(-1/√hidden, 1/√hidden) for every recurrent weight and bias,
    /// U(-1/√in, 1/√in) for the head (in = hidden), then the config's init scheme (see
    /// [`init`]). Values are drawn on the host from ChaCha8 streams seeded by `seed`, so they do
    /// not depend on the device.
    pub fn init(config: &ModelConfig, seed: u64, dev: &D) -> Self {
        let config = config.clone().normalized();
        let layout = param_layout(&config);
        let params = init::initial_values(&config, seed)
            .into_iter()
            .map(|v| {
                let n = v.len();
                let v: Vec<E> = v.into_iter().map(|x| E::from_f64(x).unwrap()).collect();
                dev.tensor_from_vec(v, (n,))
            })
            .collect();
        Model {
            reading: config.reading(),
            config,
            params,
            layout,
        }
    }

    /// Builds a model from given parameter values (PyTorch order and shapes).
    pub fn from_values(
        config: &ModelConfig,
        values: &[Vec<E>],
        dev: &D,
    ) -> Result<Self, ModelLoadError> {
        let config = config.clone().normalized();
        let layout = param_layout(&config);
        if values.len() != layout.len() {
            return Err(ModelLoadError::TensorCount {
                expected: layout.len(),
                got: values.len(),
            });
        }
        let mut params = Vec::with_capacity(layout.len());
        for (p, v) in layout.iter().zip(values) {
            if v.len() != p.numel() {
                return Err(ModelLoadError::ValueCount {
                    name: p.name.clone(),
                    got: v.len(),
                    expected: p.numel(),
                });
            }
            params.push(dev.tensor_from_vec(v.clone(), (v.len(),)));
        }
        Ok(Model {
            reading: config.reading(),
            config,
            params,
            layout,
        })
    }

    /// Parameter values copied to the host, in layout order.
    pub fn values(&self) -> Vec<Vec<E>> {
        self.params.iter().map(|p| p.as_vec()).collect()
    }

    /// The weights worth keeping after a run: those of a completed run whose every parameter is
    /// finite (training stops at the first non-finite one, so a completed run's are; this is
    /// the last guard), as [`Model::to_safetensors`]. None for every other run.
    pub fn final_weights(&self, status: &RunStatus) -> Option<Vec<u8>> {
        let finite = || {
            self.values()
                .iter()
                .flatten()
                .all(|x| x.to_f64().is_some_and(f64::is_finite))
        };
        (*status == RunStatus::Completed && finite()).then(|| self.to_safetensors())
    }

    /// The parameters as a safetensors file (f32, little-endian) with PyTorch's names and
    /// shapes, so `model.load_state_dict(safetensors.torch.load_file(...))` accepts it. The model
    /// config is stored in the metadata under `rnnsweep.model`.
    pub fn to_safetensors(&self) -> Vec<u8> {
        let bufs: Vec<Vec<u8>> = self
            .values()
            .iter()
            .map(|v| {
                v.iter()
                    .flat_map(|x| (x.to_f32().expect("finite or not, an f32")).to_le_bytes())
                    .collect()
            })
            .collect();
        let views = self.layout.iter().zip(&bufs).map(|(p, b)| {
            (
                p.name.clone(),
                safetensors::tensor::TensorView::new(safetensors::Dtype::F32, p.shape.clone(), b)
                    .expect("sizes match"),
            )
        });
        let meta = std::collections::HashMap::from([(
            "rnnsweep.model".to_string(),
            serde_json::to_string(&self.config).expect("configs serialize"),
        )]);
        safetensors::serialize(views, Some(meta)).expect("serializing in memory")
    }

    /// Reads parameters written by [`Model::to_safetensors`] (or by PyTorch with the same names).
    pub fn from_safetensors(
        config: &ModelConfig,
        bytes: &[u8],
        dev: &D,
    ) -> Result<Self, ModelLoadError> {
        let st =
            safetensors::SafeTensors::deserialize(bytes).map_err(ModelLoadError::NotSafetensors)?;
        let layout = param_layout(&config.clone().normalized());
        let mut values = Vec::with_capacity(layout.len());
        for p in &layout {
            let t = st
                .tensor(&p.name)
                .map_err(|_| ModelLoadError::MissingTensor {
                    name: p.name.clone(),
                })?;
            if t.dtype() != safetensors::Dtype::F32 || t.shape() != p.shape.as_slice() {
                return Err(ModelLoadError::WrongTensor {
                    name: p.name.clone(),
                    dtype: t.dtype(),
                    shape: t.shape().to_vec(),
                    expected: p.shape.clone(),
                });
            }
            values.push(
                t.data()
                    .chunks_exact(4)
                    .map(|c| {
                        E::from_f32(f32::from_le_bytes(c.try_into().expect("4 bytes")))
                            .expect("f32 fits")
                    })
                    .collect(),
            );
        }
        Model::from_values(config, &values, dev)
    }

    /// Layer `l`'s four tensors and shape, for the kernels.
    pub fn layer_params(&self, l: usize) -> LayerParams<'_, E, D> {
        let base = PER_LAYER * l;
        let cfg = &self.config;
        LayerParams {
            layer: l,
            cell: cfg.cell,
            activation: cfg.rnn_activation(),
            hidden: cfg.hidden,
            input: layer_input(cfg, l),
            top: l + 1 == cfg.layers,
            w_ih: &self.params[base],
            w_hh: &self.params[base + 1],
            b_ih: &self.params[base + 2],
            b_hh: &self.params[base + 3],
        }
    }

    /// Parameter `i` viewed as a (rows, cols) matrix (no copy, same tensor id).
    fn mat(&self, i: usize) -> Mat<E, D> {
        let s = &self.layout[i].shape;
        self.params[i].clone().reshape_like(&(s[0], s[1]))
    }

    /// Parameter `i` (a weight of shape [out, in]) viewed transposed as (in, out), for `x · Wᵀ`.
    fn mat_t(&self, i: usize) -> Mat<E, D> {
        self.mat(i).permute::<_, Axes2<1, 0>>()
    }

    /// Logits for a batch computed with dfdx tensor ops only (one op per gate and step). Every
    /// device can run it; the CPU uses the fused layers of [`Model::forward`] instead, and the
    /// tests check that both agree. Arguments and result as for `forward`.
    pub fn forward_ops<T: Tape<E, D> + Merge<NoneTape>>(
        &self,
        x: Mat<E, D>,
        batch: usize,
        tape: T,
    ) -> (Mat<E, D>, T) {
        self.forward_ops_masked(x, batch, tape, &[])
    }

    /// [`Model::forward_ops`] with dropout masks between the layers (see
    /// [`Model::forward_masked`]).
    pub fn forward_ops_masked<T: Tape<E, D> + Merge<NoneTape>>(
        &self,
        x: Mat<E, D>,
        batch: usize,
        tape: T,
        masks: &[Vec<E>],
    ) -> (Mat<E, D>, T) {
        self.assert_input_shape(&x, batch);
        let mut tp = TapeThread::new(tape);
        let top = self.config.layers - 1;
        let mut input = x;
        for l in 0..top {
            input = ops::layer_stacked(&self.layer_params(l), input, batch, &mut tp);
            input = Self::dropout(input, masks.get(l), &mut tp);
        }
        let h = ops::layer(&self.layer_params(top), input, batch, &mut tp)
            .pop()
            .expect("a layer returns one state per step, and there is at least one step");
        let logits = self.head(h, &mut tp);
        (logits, tp.into_tape())
    }

    /// Panics unless `x` is a batch of `batch` sequences as this model reads them:
    /// (steps·batch, features), time-major.
    fn assert_input_shape(&self, x: &Mat<E, D>, batch: usize) {
        let input = self.config.input;
        assert_eq!(
            *x.shape(),
            (input.steps() * batch, input.features()),
            "input must be (steps·batch, features) for {input}"
        );
    }

    /// A layer's output sequence times its dropout mask (nothing without one).
    fn dropout<T: Tape<E, D> + Merge<NoneTape>>(
        hs: Mat<E, D>,
        mask: Option<&Vec<E>>,
        tp: &mut TapeThread<T>,
    ) -> Mat<E, D> {
        match mask {
            None => hs,
            Some(m) => {
                let shape = *hs.shape();
                assert_eq!(m.len(), shape.0 * shape.1, "a mask per output value");
                let mask = hs.device().tensor_from_vec(m.clone(), shape);
                tp.run(hs, |hs| hs * mask)
            }
        }
    }

    /// The linear head on the top layer's last hidden state, (batch, hidden) -> (batch, 10).
    fn head<T: Tape<E, D> + Merge<NoneTape>>(
        &self,
        h: Mat<E, D>,
        tp: &mut TapeThread<T>,
    ) -> Mat<E, D> {
        let n = self.layout.len();
        let w = self.mat_t(n - 2);
        let b = self.params[n - 1].clone();
        tp.run(h, |h| {
            let out = h.matmul(w);
            let shape = *out.shape();
            out + b.broadcast_like::<_, Axis<0>>(&shape)
        })
    }
}

impl<E: Dtype, D: LayerKernel<E>> Model<E, D> {
    /// Logits for a batch. `x` is time-major: rows `t*batch .. (t+1)*batch` hold time step `t`
    /// (image row t) of every sample, 28 features each, so `x` is (28·batch, 28).
    /// Returns (batch, 10) logits and the tape (with every op recorded when `T` is `OwnedTape`).
    /// Each layer runs as one op of the device's [`LayerKernel`] (fused on the CPU).
    pub fn forward<T: Tape<E, D> + Merge<NoneTape>>(
        &self,
        x: Mat<E, D>,
        batch: usize,
        tape: T,
    ) -> (Mat<E, D>, T) {
        self.forward_masked(x, batch, tape, &[])
    }

    /// [`Model::forward`] in training with dropout: `masks[l]` (values 0 or 1/(1 − p), one per
    /// output value, time-major as the layer's output) multiplies layer l's output sequence
    /// before layer l + 1 reads it. No masks: no dropout.
    pub fn forward_masked<T: Tape<E, D> + Merge<NoneTape>>(
        &self,
        x: Mat<E, D>,
        batch: usize,
        tape: T,
        masks: &[Vec<E>],
    ) -> (Mat<E, D>, T) {
        self.assert_input_shape(&x, batch);
        let mut tp = TapeThread::new(tape);
        let mut input = x;
        for l in 0..self.config.layers {
            input = D::recurrent_layer(&self.layer_params(l), input, batch, &mut tp);
            if l + 1 < self.config.layers {
                input = Self::dropout(input, masks.get(l), &mut tp);
            }
        }
        // The top layer returned its last step's state alone.
        let logits = self.head(input, &mut tp);
        (logits, tp.into_tape())
    }
}
