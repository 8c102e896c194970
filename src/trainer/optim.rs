//! SGD (with optional momentum), Adam and RMSprop with PyTorch's semantics, applied tensor by
//! tensor to runtime-sized parameters (dfdx's own optimizers need compile-time shapes, and its
//! RMSprop differs from PyTorch's: eps inside the square root, square average starting at 1).
//!
//! PyTorch, for gradient g at step t (1-based):
//! - SGD: buf = g (first step), buf = μ·buf + g afterwards; p -= lr·buf (buf = g when μ = 0).
//! - Adam: m = β1·m + (1−β1)·g; v = β2·v + (1−β2)·g²; p -= (lr / (1−β1ᵗ)) · m / (√v / √(1−β2ᵗ) + ε).
//! - RMSprop: v = α·v + (1−α)·g² (v starts at 0); p -= lr · g / (√v + ε).
//!
//! On the CPU the update runs as one loop per parameter over host copies (state kept in f64),
//! instead of about ten tensor ops per parameter and step; other devices use the tensor ops.
//! The tests run both paths and check they agree.

use dfdx::prelude::*;

use super::config::{OptimConfig, OptimKind};
use super::record::NonFiniteKind;
use super::tape::Flat;

/// Per-parameter optimizer state.
#[derive(Clone, Debug)]
enum Slot<E: Dtype, D: Device<E>> {
    Empty,
    Momentum(Flat<E, D>),
    Adam {
        m: Flat<E, D>,
        v: Flat<E, D>,
    },
    Square(Flat<E, D>),
    /// Host-side state: momentum buffer / first moment / square average, and Adam's second
    /// moment (empty for the others).
    Host(Vec<f64>, Vec<f64>),
}

/// An optimizer over a list of flat parameter tensors.
#[derive(Clone, Debug)]
pub struct Optimizer<E: Dtype, D: Device<E>> {
    cfg: OptimConfig,
    step: u64,
    slots: Vec<Slot<E, D>>,
}

impl<E: Dtype, D: Device<E>> Optimizer<E, D> {
    pub fn new(cfg: &OptimConfig, n_params: usize) -> Self {
        Optimizer {
            cfg: cfg.clone(),
            step: 0,
            slots: (0..n_params).map(|_| Slot::Empty).collect(),
        }
    }

    /// Steps taken so far.
    pub fn steps(&self) -> u64 {
        self.step
    }

    /// Applies one update to every parameter from its gradient in `grads`: on host copies for
    /// the CPU, with tensor ops elsewhere. Returns the first non-finite tensor found, if any:
    /// every gradient is checked before anything is updated (a non-finite gradient leaves the
    /// parameters untouched), then every parameter after its update.
    pub fn update(
        &mut self,
        params: &mut [Flat<E, D>],
        grads: &Gradients<E, D>,
    ) -> Option<(NonFiniteKind, usize)>
    where
        D: 'static,
    {
        if std::any::TypeId::of::<D>() == std::any::TypeId::of::<Cpu>() {
            self.update_host(params, grads)
        } else {
            self.update_tensors(params, grads)
        }
    }

    /// The update as one loop per parameter over host copies (any device; used for the CPU).
    /// Returns the first non-finite tensor, as [`Optimizer::update`] does.
    pub fn update_host(
        &mut self,
        params: &mut [Flat<E, D>],
        grads: &Gradients<E, D>,
    ) -> Option<(NonFiniteKind, usize)> {
        assert_eq!(params.len(), self.slots.len());
        let f = |x: E| x.to_f64().expect("an f64");
        let all_g: Vec<Vec<f64>> = params
            .iter()
            .map(|p| grads.get(p).as_vec().into_iter().map(f).collect())
            .collect();
        if let Some(i) = all_g.iter().position(|g| !all_finite(g)) {
            return Some((NonFiniteKind::Gradient, i));
        }
        self.step += 1;
        let (lr, mu, t) = (self.cfg.lr, self.cfg.momentum, self.step as i32);
        let mut bad_param = None;
        for (i, ((p, slot), g)) in params
            .iter_mut()
            .zip(self.slots.iter_mut())
            .zip(all_g)
            .enumerate()
        {
            let mut pv: Vec<f64> = p.as_vec().into_iter().map(f).collect();
            let n = pv.len();
            if !matches!(slot, Slot::Host(..)) {
                let second = if self.cfg.kind == OptimKind::Adam {
                    n
                } else {
                    0
                };
                *slot = Slot::Host(vec![0.0; n], vec![0.0; second]);
            }
            let Slot::Host(a, b) = slot else {
                unreachable!("set just above")
            };
            match self.cfg.kind {
                OptimKind::Sgd if mu == 0.0 => {
                    for (p, g) in pv.iter_mut().zip(&g) {
                        *p -= lr * g;
                    }
                }
                OptimKind::Sgd => {
                    for ((p, g), buf) in pv.iter_mut().zip(&g).zip(a.iter_mut()) {
                        *buf = if t == 1 { *g } else { mu * *buf + g };
                        *p -= lr * *buf;
                    }
                }
                OptimKind::Adam => {
                    let (b1, b2) = OptimConfig::ADAM_BETAS;
                    let bc1 = 1.0 - b1.powi(t);
                    let bc2_sqrt = (1.0 - b2.powi(t)).sqrt();
                    for (((p, g), m), v) in
                        pv.iter_mut().zip(&g).zip(a.iter_mut()).zip(b.iter_mut())
                    {
                        *m = *m * b1 + g * (1.0 - b1);
                        *v = *v * b2 + g * g * (1.0 - b2);
                        let denom = v.sqrt() / bc2_sqrt + OptimConfig::ADAM_EPS;
                        *p -= *m / denom * (lr / bc1);
                    }
                }
                OptimKind::Rmsprop => {
                    let alpha = OptimConfig::RMSPROP_ALPHA;
                    for ((p, g), v) in pv.iter_mut().zip(&g).zip(a.iter_mut()) {
                        *v = *v * alpha + g * g * (1.0 - alpha);
                        *p -= g / (v.sqrt() + OptimConfig::RMSPROP_EPS) * lr;
                    }
                }
            }
            let back: Vec<E> = pv
                .into_iter()
                .map(|x| E::from_f64(x).expect("fits the element type"))
                .collect();
            // Checked after the cast: an f64 value beyond f32's range becomes inf here.
            if bad_param.is_none() && !back.iter().all(|x| f(*x).is_finite()) {
                bad_param = Some(i);
            }
            p.copy_from(&back);
        }
        bad_param.map(|i| (NonFiniteKind::Parameter, i))
    }

    /// The update with tensor ops (every device). Returns the first non-finite tensor, as
    /// [`Optimizer::update`] does (each check copies the tensor to the host).
    pub fn update_tensors(
        &mut self,
        params: &mut [Flat<E, D>],
        grads: &Gradients<E, D>,
    ) -> Option<(NonFiniteKind, usize)> {
        assert_eq!(params.len(), self.slots.len());
        let finite = |t: &Flat<E, D>| {
            t.as_vec()
                .iter()
                .all(|x| x.to_f64().is_some_and(f64::is_finite))
        };
        if let Some(i) = params.iter().position(|p| !finite(&grads.get(p))) {
            return Some((NonFiniteKind::Gradient, i));
        }
        self.step += 1;
        let e = |x: f64| E::from_f64(x).expect("scalar fits the element type");
        let lr = self.cfg.lr;
        let t = self.step as i32;
        for (p, slot) in params.iter_mut().zip(self.slots.iter_mut()) {
            let g = grads.get(&*p);
            let delta = match self.cfg.kind {
                OptimKind::Sgd if self.cfg.momentum == 0.0 => g * e(lr),
                OptimKind::Sgd => {
                    let buf = match std::mem::replace(slot, Slot::Empty) {
                        Slot::Momentum(b) => b * e(self.cfg.momentum) + g,
                        _ => g,
                    };
                    *slot = Slot::Momentum(buf.clone());
                    buf * e(lr)
                }
                OptimKind::Adam => {
                    let (b1, b2) = OptimConfig::ADAM_BETAS;
                    let (m, v) = match std::mem::replace(slot, Slot::Empty) {
                        Slot::Adam { m, v } => (m, v),
                        _ => (
                            g.device().zeros_like(g.shape()),
                            g.device().zeros_like(g.shape()),
                        ),
                    };
                    let m = m * e(b1) + g.clone() * e(1.0 - b1);
                    let v = v * e(b2) + g.square() * e(1.0 - b2);
                    let bc1 = 1.0 - b1.powi(t);
                    let bc2_sqrt = (1.0 - b2.powi(t)).sqrt();
                    let denom = v.clone().sqrt() / e(bc2_sqrt) + e(OptimConfig::ADAM_EPS);
                    let delta = m.clone() / denom * e(lr / bc1);
                    *slot = Slot::Adam { m, v };
                    delta
                }
                OptimKind::Rmsprop => {
                    let alpha = OptimConfig::RMSPROP_ALPHA;
                    let v = match std::mem::replace(slot, Slot::Empty) {
                        Slot::Square(v) => v,
                        _ => g.device().zeros_like(g.shape()),
                    };
                    let v = v * e(alpha) + g.clone().square() * e(1.0 - alpha);
                    let avg = v.clone().sqrt() + e(OptimConfig::RMSPROP_EPS);
                    *slot = Slot::Square(v);
                    g / avg * e(lr)
                }
            };
            *p = p.clone() - delta;
        }
        params
            .iter()
            .position(|p| !finite(p))
            .map(|i| (NonFiniteKind::Parameter, i))
    }
}

/// Whether every value is finite (no NaN, no ±inf).
fn all_finite(v: &[f64]) -> bool {
    v.iter().all(|x| x.is_finite())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs `steps` updates of a 2-element parameter under fixed gradients with both update
    /// paths, checks they agree, and returns the values.
    fn run(cfg: OptimConfig, init: [f64; 2], grads_seq: &[[f64; 2]]) -> Vec<f64> {
        let dev = Cpu::default();
        let mut out = Vec::new();
        for host in [true, false] {
            let mut params = vec![dev.tensor_from_vec(init.to_vec(), (2,))];
            let mut opt = Optimizer::<f64, Cpu>::new(&cfg, 1);
            for g in grads_seq {
                // loss = sum(p * g) has gradient g.
                let gt = dev.tensor_from_vec(g.to_vec(), (2,));
                let loss = (params[0].leaky_trace() * gt).sum();
                let grads = loss.backward();
                if host {
                    opt.update_host(&mut params, &grads);
                } else {
                    opt.update_tensors(&mut params, &grads);
                }
            }
            out.push(params[0].as_vec());
        }
        close(&out[0], &out[1]);
        out.swap_remove(0)
    }

    fn close(a: &[f64], b: &[f64]) {
        for (x, y) in a.iter().zip(b) {
            assert!((x - y).abs() < 1e-12, "{a:?} vs {b:?}");
        }
    }

    fn cfg(kind: OptimKind, lr: f64, momentum: f64) -> OptimConfig {
        OptimConfig { kind, lr, momentum }
    }

    #[test]
    fn sgd_plain() {
        let got = run(
            cfg(OptimKind::Sgd, 0.1, 0.0),
            [1.0, -2.0],
            &[[0.5, -1.0], [0.5, -1.0]],
        );
        close(&got, &[1.0 - 0.1, -2.0 + 0.2]);
    }

    #[test]
    fn sgd_momentum_starts_buffer_at_first_gradient() {
        // buf1 = g = 1; p = 1 - 0.1 = 0.9. buf2 = 0.9*1 + 2 = 2.9; p = 0.9 - 0.29 = 0.61.
        let got = run(
            cfg(OptimKind::Sgd, 0.1, 0.9),
            [1.0, 0.0],
            &[[1.0, 0.0], [2.0, 0.0]],
        );
        close(&got, &[0.61, 0.0]);
    }

    #[test]
    fn adam_first_steps_by_hand() {
        // Step 1: m̂ = g, v̂ = g², so the update is lr·g/(|g| + ε) ≈ lr·sign(g).
        let got = run(cfg(OptimKind::Adam, 0.01, 0.0), [1.0, 1.0], &[[0.5, -2.0]]);
        let u0 = 0.01 * 0.5 / (0.5 + 1e-8);
        let u1 = 0.01 * -2.0 / (2.0 + 1e-8);
        close(&got, &[1.0 - u0, 1.0 - u1]);
        // Step 2 with g1 = 1, g2 = 3 on one coordinate, written out.
        let got = run(
            cfg(OptimKind::Adam, 0.01, 0.0),
            [0.0, 0.0],
            &[[1.0, 0.0], [3.0, 0.0]],
        );
        let p1 = -0.01 * 1.0 / (1.0 + 1e-8);
        let m2: f64 = 0.9 * 0.1 * 1.0 + 0.1 * 3.0; // m1 = 0.1
        let v2: f64 = 0.999 * 0.001 * 1.0 + 0.001 * 9.0; // v1 = 0.001
        let denom = v2.sqrt() / (1.0 - 0.999f64.powi(2)).sqrt() + 1e-8;
        let p2 = p1 - 0.01 / (1.0 - 0.9f64.powi(2)) * m2 / denom;
        close(&got, &[p2, 0.0]);
    }

    #[test]
    fn rmsprop_is_pytorch_not_dfdx() {
        // v1 = 0.01·g² (starts at 0), update = lr·g/(√v1 + ε) = lr·g/(0.1|g| + ε) ≈ 10·lr·sign(g).
        let got = run(
            cfg(OptimKind::Rmsprop, 3e-4, 0.0),
            [0.0, 0.0],
            &[[2.0, -0.5]],
        );
        close(
            &got,
            &[-3e-4 * 2.0 / (0.2 + 1e-8), 3e-4 * 0.5 / (0.05 + 1e-8)],
        );
        // Second step: v2 = 0.99·v1 + 0.01·g2².
        let got = run(
            cfg(OptimKind::Rmsprop, 1e-3, 0.0),
            [0.0, 0.0],
            &[[1.0, 0.0], [2.0, 0.0]],
        );
        let p1 = -1e-3 / (0.1 + 1e-8);
        let v2: f64 = 0.99 * 0.01 + 0.01 * 4.0;
        close(&got, &[p1 - 1e-3 * 2.0 / (v2.sqrt() + 1e-8), 0.0]);
    }

    /// A non-finite gradient is found before anything is updated (parameters untouched); a
    /// parameter that overflows in the update is found after it; both on either update path.
    #[test]
    fn non_finite_gradients_and_parameters_are_reported() {
        let dev = Cpu::default();
        let cfg = OptimConfig {
            kind: OptimKind::Sgd,
            lr: 1.0,
            momentum: 0.0,
        };
        for host in [true, false] {
            let step = |p0: [f32; 2], p1: [f32; 2], g1: [f32; 2]| {
                let mut params = vec![
                    dev.tensor_from_vec(p0.to_vec(), (2,)),
                    dev.tensor_from_vec(p1.to_vec(), (2,)),
                ];
                let loss = (params[0].leaky_trace() * dev.tensor_from_vec(vec![1.0f32, 1.0], (2,)))
                    .sum()
                    + (params[1].leaky_trace() * dev.tensor_from_vec(g1.to_vec(), (2,))).sum();
                let grads = loss.backward();
                let mut opt = Optimizer::<f32, Cpu>::new(&cfg, 2);
                let r = if host {
                    opt.update_host(&mut params, &grads)
                } else {
                    opt.update_tensors(&mut params, &grads)
                };
                (r, params[0].as_vec())
            };
            let (r, p0) = step([1.0, 2.0], [0.0, 0.0], [f32::NAN, 0.0]);
            assert_eq!(r, Some((NonFiniteKind::Gradient, 1)), "host={host}");
            assert_eq!(
                p0,
                vec![1.0, 2.0],
                "untouched when a gradient is non-finite"
            );
            let (r, _) = step([1.0, 2.0], [-3e38, 0.0], [3e38, 0.0]);
            assert_eq!(r, Some((NonFiniteKind::Parameter, 1)), "host={host}");
            let (r, p0) = step([1.0, 2.0], [0.0, 0.0], [1.0, 1.0]);
            assert_eq!(r, None, "host={host}");
            assert_eq!(p0, vec![0.0, 1.0]);
        }
        assert!(all_finite(&[0.0, -1e300, 5.0]));
        assert!(!all_finite(&[0.0, f64::INFINITY]));
        assert!(!all_finite(&[f64::NAN]));
        assert!(all_finite(&[]));
    }
}
