//! The seam between the model and the devices: a [`LayerKernel`] runs one recurrent layer over
//! a whole sequence, given a [`LayerParams`] view of that layer's four tensors. The CPU's kernel
//! is the fused one (`fused/`); other devices run the layer with dfdx ops (`ops.rs`). Neither
//! knows the model's parameter list: `Model::layer_params` is the one place that does.

use dfdx::prelude::*;

use super::tape::{Flat, Mat, TapeThread};
use crate::trainer::config::{Activation, LayerKind};

/// One recurrent layer's parameters (PyTorch's layouts: weights row-major [gates·hidden, in])
/// and what the kernels need to know about it.
pub struct LayerParams<'a, E: Dtype, D: Device<E>> {
    /// 0 for the layer that reads the image rows (its input needs no gradient).
    pub layer: usize,
    pub cell: LayerKind,
    /// The RNN nonlinearity (tanh for LSTM and GRU, where it is not used).
    pub activation: Activation,
    pub hidden: usize,
    /// Input features: 28 for layer 0, `hidden` above.
    pub input: usize,
    /// The top layer, whose last step's state alone the model reads (the classifier's input).
    pub top: bool,
    pub w_ih: &'a Flat<E, D>,
    pub w_hh: &'a Flat<E, D>,
    pub b_ih: &'a Flat<E, D>,
    pub b_hh: &'a Flat<E, D>,
}

impl<E: Dtype, D: Device<E>> LayerParams<'_, E, D> {
    /// Rows of the weight matrices: gates × hidden.
    pub fn gate_rows(&self) -> usize {
        self.cell.gates() * self.hidden
    }

    /// W_ih viewed as its (gates·hidden, input) matrix (no copy, same tensor id).
    pub fn w_ih_mat(&self) -> Mat<E, D> {
        self.w_ih
            .clone()
            .reshape_like(&(self.gate_rows(), self.input))
    }

    /// W_hh viewed as its (gates·hidden, hidden) matrix (no copy, same tensor id).
    pub fn w_hh_mat(&self) -> Mat<E, D> {
        self.w_hh
            .clone()
            .reshape_like(&(self.gate_rows(), self.hidden))
    }
}

/// Devices that can run one recurrent layer over a whole sequence.
pub trait LayerKernel<E: Dtype>: Device<E> {
    /// The layer over all 28 steps: `x` is (28·batch, in) time-major; returns every step's
    /// hidden state, (28·batch, hidden) time-major, or for the top layer (`p.top`) the last
    /// step's, (batch, hidden), with its backward recorded on `tp`'s tape.
    fn recurrent_layer<T: Tape<E, Self> + Merge<NoneTape>>(
        p: &LayerParams<'_, E, Self>,
        x: Mat<E, Self>,
        batch: usize,
        tp: &mut TapeThread<T>,
    ) -> Mat<E, Self>;
}
