//! Runtime-sized tensors and the tape that is threaded through a forward pass. A tape that is
//! dropped silently loses its gradients, so every op of a forward pass runs inside
//! [`TapeThread::run`], which always takes the tape back.

use dfdx::prelude::*;

/// A 2-D tensor with runtime sizes and no tape.
pub type Mat<E, D> = Tensor<(usize, usize), E, D>;
/// A flat parameter tensor.
pub type Flat<E, D> = Tensor<(usize,), E, D>;

/// Moves one tape through a chain of ops so that none is lost .
pub struct TapeThread<T>(T);

impl<T> TapeThread<T> {
    pub fn new(tape: T) -> Self {
        TapeThread(tape)
    }
    pub fn into_tape(self) -> T {
        self.0
    }
    /// The tape itself, for ops that record their own backward pass (see `fused`).
    pub fn tape_mut(&mut self) -> &mut T {
        &mut self.0
    }
    /// Puts the tape on `t`, applies `f`, and takes the tape back from the result.
    pub fn run<S1: Shape, S2: Shape, E: Dtype, D: Device<E>>(
        &mut self,
        t: Tensor<S1, E, D>,
        f: impl FnOnce(Tensor<S1, E, D, T>) -> Tensor<S2, E, D, T>,
    ) -> Tensor<S2, E, D>
    where
        T: Tape<E, D>,
    {
        let out = f(t.put_tape(std::mem::take(&mut self.0)));
        let (out, tape) = out.split_tape();
        self.0 = tape;
        out
    }
}
