//! SGD (optional momentum, Nesterov), Adam, AdamW and RMSprop with PyTorch's semantics, weight
//! decay, and gradient clipping as `torch.nn.utils.clip_grad_norm_`/`clip_grad_value_`, applied
//! tensor by tensor to runtime-sized parameters (dfdx's own optimizers need compile-time
//! shapes, and its RMSprop differs from PyTorch's: eps inside the square root, square average
//! starting at 1).
//!
//! PyTorch, for gradient g at step t (1-based), in this order:
//! - clipping: with `clip_grad_norm = X`, n = ‖(all gradients)‖₂ and every g ← g · min(1,
//!   X / (n + 1e-6)); with `clip_grad_value = X`, g ← clamp(g, −X, X). n is computed (and
//!   reported) whether or not clipping is on: it is the pre-clip gradient norm of the step.
//! - coupled weight decay (sgd, adam, rmsprop): g ← g + wd·p. AdamW instead decays the
//!   parameter: p ← p·(1 − lr·wd), then steps as Adam.
//! - SGD: buf = g (first step), buf = μ·buf + g afterwards; p -= lr·(g + μ·buf) with Nesterov,
//!   else p -= lr·buf (buf = g when μ = 0).
//! - Adam/AdamW: m = β1·m + (1−β1)·g; v = β2·v + (1−β2)·g²;
//!   p -= (lr / (1−β1ᵗ)) · m / (√v̂ / √(1−β2ᵗ) + ε), where v̂ = v, or with `amsgrad` the
//!   running maximum v̂ = max(v̂, v) (starting at 0; `torch.maximum`, which propagates NaN).
//! - RMSprop: v = α·v + (1−α)·g² (v starts at 0); p -= lr · g / (√v + ε).
//!
//! On the CPU the update runs as one loop per parameter over host copies (state kept in f64),
//! instead of about ten tensor ops per parameter and step; other devices use the tensor ops.
//! The tests run both paths and check they agree. Both check every gradient before the update
//! and every parameter after it, and name the first non-finite tensor. The CPU's path computes
//! the gradient norm in f64. The tensor path keeps the check on the device, one scalar copied
//! back for each: the gradients' sum of squares, accumulated in the element type (f32) as
//! PyTorch's `clip_grad_norm_` does on a GPU, and deterministically (see `sum_of_squares`),
//! then the updated parameters (see `first_non_finite`). Only when that sum is not finite (a
//! NaN or inf gradient, or finite ones whose squares overflow) are the gradients copied to the
//! host, for the CPU's f64 norm and the name of the first non-finite one.
//! [`Optimizer::state`] and [`Optimizer::restore`] carry the whole state through a checkpoint,
//! exactly.

use dfdx::prelude::*;
use serde::{Deserialize, Serialize};

use super::config::{OptimConfig, OptimKind};
use super::model::fused::{Isa, Vectorized};
use super::model::tape::Flat;
use super::record::NonFiniteKind;

/// Per-parameter optimizer state.
#[derive(Clone, Debug)]
enum Slot<E: Dtype, D: Device<E>> {
    Empty,
    Momentum(Flat<E, D>),
    Adam {
        m: Flat<E, D>,
        v: Flat<E, D>,
        /// AMSGrad's running maximum of `v`.
        v_max: Option<Flat<E, D>>,
    },
    Square(Flat<E, D>),
    /// Host-side state: momentum buffer / first moment / square average, Adam's second
    /// moment and AMSGrad's running maximum of it (empty where not used).
    Host(Vec<f64>, Vec<f64>, Vec<f64>),
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

    /// Sets the learning rate of the next updates (a schedule calls this before every step).
    pub fn set_lr(&mut self, lr: f64) {
        self.cfg.lr = lr;
    }

    /// Applies one update to every parameter from its gradient in `grads`: on host copies for
    /// the CPU, with tensor ops elsewhere. Every gradient is checked before anything is updated
    /// (a non-finite gradient leaves the parameters untouched), then every parameter after its
    /// update; the report names the first non-finite tensor, if any.
    pub fn update(&mut self, params: &mut [Flat<E, D>], grads: &Gradients<E, D>) -> Update
    where
        D: 'static,
    {
        if std::any::TypeId::of::<D>() == std::any::TypeId::of::<Cpu>() {
            self.update_host(params, grads)
        } else {
            self.update_tensors(params, grads)
        }
    }

    /// The clipping factor of `clip_grad_norm_` for a total gradient norm `norm` (1 without
    /// norm clipping): min(1, X / (norm + 1e-6)), as torch clamps it.
    fn clip_coef(&self, norm: f64) -> f64 {
        match self.cfg.clip_grad_norm {
            Some(max) => (max / (norm + OptimConfig::CLIP_NORM_EPS)).min(1.0),
            None => 1.0,
        }
    }

    /// The update as one loop per parameter over host copies (any device; used for the CPU).
    pub fn update_host(&mut self, params: &mut [Flat<E, D>], grads: &Gradients<E, D>) -> Update {
        assert_eq!(params.len(), self.slots.len());
        let f = |x: E| x.to_f64().expect("an f64");
        let mut all_g: Vec<Vec<f64>> = params.iter().map(|p| host(&grads.get(p))).collect();
        let seen = Update::of_gradients(&all_g);
        if seen.non_finite.is_some() {
            return seen;
        }
        let grad_norm = seen.grad_norm;
        let coef = self.clip_coef(grad_norm);
        let clip_value = self.cfg.clip_grad_value;
        if coef != 1.0 || clip_value.is_some() {
            for g in all_g.iter_mut().flatten() {
                *g *= coef;
                if let Some(x) = clip_value {
                    *g = g.clamp(-x, x);
                }
            }
        }
        self.step += 1;
        let cfg = &self.cfg;
        let rule = HostRule::new(cfg, self.step);
        let adam = matches!(cfg.kind, OptimKind::Adam | OptimKind::Adamw);
        let mut bad_param = None;
        for (i, ((p, slot), mut g)) in params
            .iter_mut()
            .zip(self.slots.iter_mut())
            .zip(all_g)
            .enumerate()
        {
            let mut pv = host(p);
            let n = pv.len();
            if !matches!(slot, Slot::Host(..)) {
                let zeros = |used: bool| vec![0.0; if used { n } else { 0 }];
                *slot = Slot::Host(zeros(true), zeros(adam), zeros(adam && cfg.amsgrad));
            }
            let Slot::Host(a, b, c) = slot else {
                unreachable!("set just above")
            };
            Isa::for_matmul().run(HostStep {
                rule: &rule,
                p: &mut pv,
                g: &mut g,
                a,
                b,
                c,
            });
            let back: Vec<E> = pv
                .into_iter()
                .map(|x| E::from_f64(x).expect("fits the element type"))
                .collect();
            // Checked after the cast: an f64 value beyond f32's range becomes inf here.
            if bad_param.is_none() && !back.iter().fold(true, |ok, x| ok & f(*x).is_finite()) {
                bad_param = Some(i);
            }
            p.copy_from(&back);
        }
        Update {
            grad_norm,
            non_finite: bad_param.map(|i| (NonFiniteKind::Parameter, i)),
        }
    }

    /// The update with tensor ops (every device). The gradient norm is computed on the device
    /// in the element type, one scalar copied back (`sum_of_squares`); only when it is not
    /// finite are the gradients copied to the host, for their f64 norm and the first
    /// non-finite one (a finite norm there means the squares overflowed: the update goes on
    /// with it, as on the CPU). The updated parameters are checked on the device, with one
    /// scalar copied back (more only when one is non-finite).
    pub fn update_tensors(&mut self, params: &mut [Flat<E, D>], grads: &Gradients<E, D>) -> Update {
        assert_eq!(params.len(), self.slots.len());
        let all_g: Vec<Flat<E, D>> = params.iter().map(|p| grads.get(p)).collect();
        let squares = sum_of_squares(&all_g);
        let grad_norm = if squares.is_finite() {
            squares.sqrt()
        } else {
            let seen = Update::of_gradients(&all_g.iter().map(host).collect::<Vec<_>>());
            if seen.non_finite.is_some() {
                return seen;
            }
            seen.grad_norm
        };
        self.step += 1;
        let e = |x: f64| E::from_f64(x).expect("scalar fits the element type");
        let coef = self.clip_coef(grad_norm);
        let cfg = &self.cfg;
        let (lr, mu, t) = (cfg.lr, cfg.momentum, self.step as i32);
        let (wd, (b1, b2), eps, alpha) = (cfg.weight_decay(), cfg.betas(), cfg.eps(), cfg.alpha());
        for ((p, slot), mut g) in params.iter_mut().zip(self.slots.iter_mut()).zip(all_g) {
            if coef != 1.0 {
                g = g * e(coef);
            }
            if let Some(x) = cfg.clip_grad_value {
                g = g.clamp(-x, x);
            }
            if wd != 0.0 {
                if cfg.kind == OptimKind::Adamw {
                    *p = p.clone() * e(1.0 - lr * wd);
                } else {
                    g = g + p.clone() * e(wd);
                }
            }
            let delta = match cfg.kind {
                OptimKind::Sgd if mu == 0.0 => g * e(lr),
                OptimKind::Sgd => {
                    let buf = match std::mem::replace(slot, Slot::Empty) {
                        Slot::Momentum(b) => b * e(mu) + g.clone(),
                        _ => g.clone(),
                    };
                    *slot = Slot::Momentum(buf.clone());
                    if cfg.nesterov {
                        (g + buf * e(mu)) * e(lr)
                    } else {
                        buf * e(lr)
                    }
                }
                OptimKind::Adam | OptimKind::Adamw => {
                    let zeros = || g.device().zeros_like(g.shape());
                    let (m, v, v_max) = match std::mem::replace(slot, Slot::Empty) {
                        Slot::Adam { m, v, v_max } => (m, v, v_max),
                        _ => (zeros(), zeros(), cfg.amsgrad.then(zeros)),
                    };
                    let m = m * e(b1) + g.clone() * e(1.0 - b1);
                    let v = v * e(b2) + g.square() * e(1.0 - b2);
                    let bc1 = 1.0 - b1.powi(t);
                    let bc2_sqrt = (1.0 - b2.powi(t)).sqrt();
                    // dfdx's maximum drops NaN (f32::max), torch.maximum keeps it; the
                    // gradients were checked finite above, so v is never NaN here.
                    let v_max = v_max.map(|x| x.maximum(v.clone()));
                    let v_hat = v_max.clone().unwrap_or_else(|| v.clone());
                    let denom = v_hat.sqrt() / e(bc2_sqrt) + e(eps);
                    let delta = m.clone() / denom * e(lr / bc1);
                    *slot = Slot::Adam { m, v, v_max };
                    delta
                }
                OptimKind::Rmsprop => {
                    let v = match std::mem::replace(slot, Slot::Empty) {
                        Slot::Square(v) => v,
                        _ => g.device().zeros_like(g.shape()),
                    };
                    let v = v * e(alpha) + g.clone().square() * e(1.0 - alpha);
                    let avg = v.clone().sqrt() + e(eps);
                    *slot = Slot::Square(v);
                    g / avg * e(lr)
                }
            };
            *p = p.clone() - delta;
        }
        let non_finite = first_non_finite(params).map(|i| (NonFiniteKind::Parameter, i));
        Update {
            grad_norm,
            non_finite,
        }
    }
}

/// An optimizer's whole state, for a checkpoint: the steps taken and each parameter's buffers
/// as f64 (exact for f32 tensors; the CPU path keeps its state in f64). The learning rate is not
/// in it: the schedule sets it before every step.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OptimizerState {
    pub steps: u64,
    pub slots: Vec<SlotState>,
}

/// One parameter's buffers (see `Slot`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum SlotState {
    Empty,
    Momentum(Vec<f64>),
    Adam {
        m: Vec<f64>,
        v: Vec<f64>,
        v_max: Option<Vec<f64>>,
    },
    Square(Vec<f64>),
    Host(Vec<f64>, Vec<f64>, Vec<f64>),
}

impl<E: Dtype, D: Device<E>> Optimizer<E, D> {
    /// The state to checkpoint (see [`OptimizerState`]).
    pub fn state(&self) -> OptimizerState {
        let slots = self
            .slots
            .iter()
            .map(|s| match s {
                Slot::Empty => SlotState::Empty,
                Slot::Momentum(b) => SlotState::Momentum(host(b)),
                Slot::Adam { m, v, v_max } => SlotState::Adam {
                    m: host(m),
                    v: host(v),
                    v_max: v_max.as_ref().map(host),
                },
                Slot::Square(v) => SlotState::Square(host(v)),
                Slot::Host(a, b, c) => SlotState::Host(a.clone(), b.clone(), c.clone()),
            })
            .collect();
        OptimizerState {
            steps: self.step,
            slots,
        }
    }

    /// Puts back a state that [`Optimizer::state`] gave, for parameters of `sizes` values each
    /// on `dev`. An error says what does not fit (another model's state). A state saved on
    /// another kind of device (host buffers on the CPU, tensors elsewhere) is converted to this
    /// device's form, so a run moved between devices keeps its moments (it is then not
    /// bit-identical: the CPU keeps them in f64, other devices in the element type).
    pub fn restore(
        &mut self,
        state: &OptimizerState,
        sizes: &[usize],
        dev: &D,
    ) -> Result<(), String>
    where
        D: 'static,
    {
        let host = std::any::TypeId::of::<D>() == std::any::TypeId::of::<Cpu>();
        self.restore_in_form(state, sizes, dev, host)
    }

    /// [`Optimizer::restore`] into the form of the host path (`host`) or the tensor path.
    fn restore_in_form(
        &mut self,
        state: &OptimizerState,
        sizes: &[usize],
        dev: &D,
        host: bool,
    ) -> Result<(), String> {
        let converted: Vec<SlotState> = state
            .slots
            .iter()
            .map(|s| self.slot_for_device(s, host))
            .collect();
        let state = &OptimizerState {
            steps: state.steps,
            slots: converted,
        };
        if state.slots.len() != sizes.len() || sizes.len() != self.slots.len() {
            return Err(format!(
                "optimizer state for {} parameters, the model has {}",
                state.slots.len(),
                sizes.len()
            ));
        }
        let mut slots = Vec::with_capacity(sizes.len());
        for (i, (s, &n)) in state.slots.iter().zip(sizes).enumerate() {
            let fits = |v: &Vec<f64>| {
                if v.len() == n {
                    Ok(())
                } else {
                    Err(format!(
                        "optimizer buffer of parameter {i} has {} values, not {n}",
                        v.len()
                    ))
                }
            };
            let tensor = |v: &Vec<f64>| -> Result<Flat<E, D>, String> {
                fits(v)?;
                let e: Vec<E> = v
                    .iter()
                    .map(|&x| E::from_f64(x).expect("fits the element type"))
                    .collect();
                Ok(dev.tensor_from_vec(e, (n,)))
            };
            // Host buffers are empty where unused (second moment without Adam, AMSGrad's max).
            let host = |v: &Vec<f64>| if v.is_empty() { Ok(()) } else { fits(v) };
            slots.push(match s {
                SlotState::Empty => Slot::Empty,
                SlotState::Momentum(b) => Slot::Momentum(tensor(b)?),
                SlotState::Adam { m, v, v_max } => Slot::Adam {
                    m: tensor(m)?,
                    v: tensor(v)?,
                    v_max: v_max.as_ref().map(tensor).transpose()?,
                },
                SlotState::Square(v) => Slot::Square(tensor(v)?),
                SlotState::Host(a, b, c) => {
                    host(a)?;
                    host(b)?;
                    host(c)?;
                    Slot::Host(a.clone(), b.clone(), c.clone())
                }
            });
        }
        self.slots = slots;
        self.step = state.steps;
        Ok(())
    }
}

impl<E: Dtype, D: Device<E>> Optimizer<E, D> {
    /// `s` in the form the update path of this device keeps: host buffers on the CPU
    /// (`update_host`), tensors elsewhere (`update_tensors`).
    fn slot_for_device(&self, s: &SlotState, host: bool) -> SlotState {
        let adam = matches!(self.cfg.kind, OptimKind::Adam | OptimKind::Adamw);
        match (s, host) {
            (SlotState::Momentum(b), true) | (SlotState::Square(b), true) => {
                SlotState::Host(b.clone(), vec![], vec![])
            }
            (SlotState::Adam { m, v, v_max }, true) => {
                SlotState::Host(m.clone(), v.clone(), v_max.clone().unwrap_or_default())
            }
            (SlotState::Host(a, b, c), false) => match self.cfg.kind {
                _ if adam => SlotState::Adam {
                    m: a.clone(),
                    v: b.clone(),
                    v_max: (!c.is_empty()).then(|| c.clone()),
                },
                OptimKind::Rmsprop => SlotState::Square(a.clone()),
                _ if self.cfg.momentum != 0.0 => SlotState::Momentum(a.clone()),
                _ => SlotState::Empty,
            },
            (other, _) => other.clone(),
        }
    }
}

/// `torch.maximum`: NaN when either is NaN (`f64::max` would return the other).
#[inline(always)]
fn torch_maximum(a: f64, b: f64) -> f64 {
    if a.is_nan() || b.is_nan() {
        f64::NAN
    } else {
        a.max(b)
    }
}

/// The scalars of one host update, the same for every parameter.
struct HostRule {
    kind: OptimKind,
    lr: f64,
    mu: f64,
    nesterov: bool,
    first: bool,
    wd: f64,
    b1: f64,
    b2: f64,
    eps: f64,
    alpha: f64,
    amsgrad: bool,
    /// Adam's bias corrections: 1 − β1ᵗ and √(1 − β2ᵗ).
    bc1: f64,
    bc2_sqrt: f64,
}

impl HostRule {
    /// The rule of update number `t` (1-based).
    fn new(cfg: &OptimConfig, t: u64) -> HostRule {
        let t = t as i32;
        let (b1, b2) = cfg.betas();
        HostRule {
            kind: cfg.kind,
            lr: cfg.lr,
            mu: cfg.momentum,
            nesterov: cfg.nesterov,
            first: t == 1,
            wd: cfg.weight_decay(),
            b1,
            b2,
            eps: cfg.eps(),
            alpha: cfg.alpha(),
            amsgrad: cfg.amsgrad,
            bc1: 1.0 - b1.powi(t),
            bc2_sqrt: (1.0 - b2.powi(t)).sqrt(),
        }
    }
}

/// One parameter's update on host copies: weight decay, then the optimizer's rule, value by
/// value (the module doc's formulas), with the state `a`, `b`, `c` of [`Slot::Host`]. Run
/// through [`Isa::run`]: compiled for the baseline alone (SSE2, two f64 per operation), Adam's
/// divisions and square roots took 5.5 % of an LSTM h64 step with AVX-512 on an AMD EPYC Zen 5.
/// Each loop has no branch inside and no bounds check, so that it vectorizes.
struct HostStep<'a> {
    rule: &'a HostRule,
    p: &'a mut [f64],
    g: &'a mut [f64],
    a: &'a mut [f64],
    b: &'a mut [f64],
    c: &'a mut [f64],
}

impl Vectorized for HostStep<'_> {
    type Out = ();

    #[inline(always)]
    fn run(self) {
        let HostStep {
            rule,
            p,
            g,
            a,
            b,
            c,
        } = self;
        let n = p.len();
        let (p, g) = (&mut p[..n], &mut g[..n]);
        let HostRule {
            lr,
            mu,
            wd,
            eps,
            alpha,
            ..
        } = *rule;
        if wd != 0.0 {
            if rule.kind == OptimKind::Adamw {
                for p in p.iter_mut() {
                    *p *= 1.0 - lr * wd;
                }
            } else {
                for (g, p) in g.iter_mut().zip(p.iter()) {
                    *g += wd * p;
                }
            }
        }
        match rule.kind {
            OptimKind::Sgd if mu == 0.0 => {
                for (p, g) in p.iter_mut().zip(g.iter()) {
                    *p -= lr * g;
                }
            }
            OptimKind::Sgd => {
                let buf = &mut a[..n];
                // Two loops, so that neither tests the step inside.
                if rule.first {
                    buf.copy_from_slice(g);
                } else {
                    for (buf, g) in buf.iter_mut().zip(g.iter()) {
                        *buf = mu * *buf + g;
                    }
                }
                if rule.nesterov {
                    for ((p, g), buf) in p.iter_mut().zip(g.iter()).zip(buf.iter()) {
                        *p -= lr * (g + mu * *buf);
                    }
                } else {
                    for (p, buf) in p.iter_mut().zip(buf.iter()) {
                        *p -= lr * *buf;
                    }
                }
            }
            OptimKind::Adam | OptimKind::Adamw => {
                // Two loops, with and without amsgrad's running maximum, each without branches
                // or bounds checks (one loop with a per-element branch stayed scalar: ~4 % of
                // an LSTM step in sqrt and division). The same operations per element, so the
                // same bits.
                let (a, b) = (&mut a[..n], &mut b[..n]);
                if rule.amsgrad {
                    let c = &mut c[..n];
                    for k in 0..n {
                        adam_moments(rule, g[k], &mut a[k], &mut b[k]);
                        c[k] = torch_maximum(c[k], b[k]);
                        adam_apply(rule, &mut p[k], a[k], c[k]);
                    }
                } else {
                    for k in 0..n {
                        adam_moments(rule, g[k], &mut a[k], &mut b[k]);
                        adam_apply(rule, &mut p[k], a[k], b[k]);
                    }
                }
            }
            OptimKind::Rmsprop => {
                for ((p, g), v) in p.iter_mut().zip(g.iter()).zip(a[..n].iter_mut()) {
                    *v = *v * alpha + g * g * (1.0 - alpha);
                    *p -= g / (v.sqrt() + eps) * lr;
                }
            }
        }
    }
}

/// Adam's moments of one value: m = β1·m + (1−β1)·g, v = β2·v + (1−β2)·g². A function, not a
/// closure: a closure may be compiled apart from [`Isa::run`]'s wrappers, as baseline code.
#[inline(always)]
fn adam_moments(rule: &HostRule, g: f64, m: &mut f64, v: &mut f64) {
    let (b1, b2) = (rule.b1, rule.b2);
    *m = *m * b1 + g * (1.0 - b1);
    *v = *v * b2 + g * g * (1.0 - b2);
}

/// Adam's step of one value: p −= m / (√v̂ / √(1−β2ᵗ) + ε) · (lr / (1−β1ᵗ)).
#[inline(always)]
fn adam_apply(rule: &HostRule, p: &mut f64, m: f64, v_hat: f64) {
    let denom = v_hat.sqrt() / rule.bc2_sqrt + rule.eps;
    *p -= m / denom * (rule.lr / rule.bc1);
}

/// What one optimizer update saw and did.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Update {
    /// The total 2-norm of all gradients before clipping (what `clip_grad_norm_` returns):
    /// NaN or inf when a gradient is.
    pub grad_norm: f64,
    /// The first non-finite tensor: a gradient (found before any update; nothing was updated)
    /// or a parameter after its update, with its index in the parameter list.
    pub non_finite: Option<(NonFiniteKind, usize)>,
}

impl Update {
    /// The host's check of the gradients before any parameter is touched (always on the CPU's
    /// path; on the tensor path when the device's norm is not finite): the total gradient norm
    /// of `grads` (host copies, one per parameter) in f64 and the first non-finite one, if any.
    fn of_gradients(grads: &[Vec<f64>]) -> Update {
        let grad_norm = grads.iter().flatten().map(|g| g * g).sum::<f64>().sqrt();
        // A finite sum of squares means every gradient is finite: only otherwise (a non-finite
        // gradient, or finite ones whose squares overflow) is there one to look for.
        let non_finite = if grad_norm.is_finite() {
            None
        } else {
            grads
                .iter()
                .position(|g| !all_finite(g))
                .map(|i| (NonFiniteKind::Gradient, i))
        };
        Update {
            grad_norm,
            non_finite,
        }
    }
}

/// A host copy of `t` in f64 (exact for f32 and f64 tensors). Empty without asking the device:
/// dfdx 0.13's CPU `as_vec` of an empty tensor reads its first value and panics. A 1-D tensor
/// is stored in its logical order, so `copy_into` (one `memcpy`; dfdx panics if the stored
/// buffer is not exactly its size) gives its values, where `as_vec` walks them one by one.
fn host<E: Dtype, D: Device<E>>(t: &Flat<E, D>) -> Vec<f64> {
    if t.shape().0 == 0 {
        return Vec::new();
    }
    let mut v = vec![E::default(); t.shape().0];
    t.copy_into(&mut v);
    v.iter().map(|x| x.to_f64().expect("an f64")).collect()
}

/// Whether every value is finite (no NaN, no ±inf). Without an early exit, so that the loop
/// vectorizes.
fn all_finite(v: &[f64]) -> bool {
    v.iter().fold(true, |ok, x| ok & x.is_finite())
}

/// The index of the first tensor of `ts` with a NaN or ±inf, found on the device: one reduction
/// per tensor, added up there into one scalar, the only value copied to the host; only when it
/// says some value is not finite, one more scalar per tensor to name the first.
fn first_non_finite<E: Dtype, D: Device<E>>(ts: &[Flat<E, D>]) -> Option<usize> {
    let finite = |probe: Option<Tensor<(), E, D>>| {
        probe.is_none_or(|p| p.as_vec()[0].to_f64().is_some_and(f64::is_finite))
    };
    let all = ts.iter().filter_map(nan_unless_finite).reduce(|a, b| a + b);
    if finite(all) {
        return None;
    }
    ts.iter().position(|t| !finite(nan_unless_finite(t)))
}

/// The sum of the squares of every value of `ts`, computed on the device in the element type;
/// only the total is copied to the host. Each tensor's is the matmul of it as a 1×n row with
/// itself as an n×1 column (reshapes of a contiguous tensor, no copies): a gemm (cuBLAS on
/// CUDA, in full f32: no TF32 in its default math mode), which gives the same bits at every run
/// on a given GPU, where dfdx's `sum` on CUDA adds with atomics in the order its blocks finish.
/// The per-tensor sums are added on the device in parameter order. Empty tensors are left out:
/// they add nothing, and dfdx 0.13 does not take zero-sized operands everywhere (its CPU sum
/// panics); 0 when there is nothing. Not finite when a value is NaN or ±inf, or when the squares
/// overflow the element type.
fn sum_of_squares<E: Dtype, D: Device<E>>(ts: &[Flat<E, D>]) -> f64 {
    ts.iter()
        .filter(|t| t.shape().num_elements() > 0)
        .map(|t| {
            let n = t.shape().0;
            let row = t.clone().reshape_like(&(Const::<1>, n));
            row.matmul(t.clone().reshape_like(&(n, Const::<1>)))
        })
        .reduce(|a, b| a + b)
        .map_or(0.0, |s| s.as_vec()[0].to_f64().expect("an f64"))
}

/// 0 when every value of `t` is finite, NaN otherwise, computed on the device: `x·0` is ±0 for
/// a finite `x` and NaN for NaN and ±inf, and a sum of zeros cannot overflow (a plain sum of a
/// huge finite tensor could). None for an empty tensor (finite; dfdx's CPU sum of one panics).
fn nan_unless_finite<E: Dtype, D: Device<E>>(t: &Flat<E, D>) -> Option<Tensor<(), E, D>> {
    let zero = E::from_f64(0.0).expect("zero fits the element type");
    (t.shape().num_elements() > 0).then(|| (t.clone() * zero).sum())
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

    /// A state saved by one update path and restored for the other (a run moved between the
    /// CPU and another device) keeps its moments: the next steps match the path that never
    /// stopped.
    #[test]
    fn state_moves_between_the_host_and_tensor_forms() {
        let dev = Cpu::default();
        let grads_seq = [
            [1.0, -2.0],
            [0.5, 0.25],
            [-1.0, 3.0],
            [2.0, 2.0],
            [0.1, -0.3],
        ];
        let step = |opt: &mut Optimizer<f64, Cpu>,
                    p: &mut Vec<Flat<f64, Cpu>>,
                    g: &[f64; 2],
                    host: bool| {
            let gt = dev.tensor_from_vec(g.to_vec(), (2,));
            let loss = (p[0].leaky_trace() * gt).sum();
            let grads = loss.backward();
            if host {
                opt.update_host(p, &grads);
            } else {
                opt.update_tensors(p, &grads);
            }
        };
        let kinds = [
            with(OptimKind::Sgd, 0.1, |c| c.momentum = 0.9),
            with(OptimKind::Sgd, 0.1, |c| {
                c.momentum = 0.9;
                c.nesterov = true
            }),
            with(OptimKind::Adam, 0.1, |_| {}),
            with(OptimKind::Adamw, 0.1, |c| c.amsgrad = true),
            with(OptimKind::Rmsprop, 0.1, |_| {}),
        ];
        for cfg in kinds {
            for from_host in [true, false] {
                let mut p = vec![dev.tensor_from_vec(vec![1.0, 2.0], (2,))];
                let mut straight = Optimizer::<f64, Cpu>::new(&cfg, 1);
                for g in &grads_seq {
                    step(&mut straight, &mut p, g, !from_host);
                }
                let mut q = vec![dev.tensor_from_vec(vec![1.0, 2.0], (2,))];
                let mut first = Optimizer::<f64, Cpu>::new(&cfg, 1);
                for g in &grads_seq[..3] {
                    step(&mut first, &mut q, g, from_host);
                }
                let mut moved = Optimizer::<f64, Cpu>::new(&cfg, 1);
                moved
                    .restore_in_form(&first.state(), &[2], &dev, !from_host)
                    .unwrap();
                for g in &grads_seq[3..] {
                    step(&mut moved, &mut q, g, !from_host);
                }
                assert_eq!(moved.steps(), 5);
                close(&q[0].as_vec(), &p[0].as_vec());
            }
        }
    }

    fn close(a: &[f64], b: &[f64]) {
        for (x, y) in a.iter().zip(b) {
            assert!((x - y).abs() < 1e-12, "{a:?} vs {b:?}");
        }
    }

    fn cfg(kind: OptimKind, lr: f64, momentum: f64) -> OptimConfig {
        OptimConfig {
            momentum,
            ..OptimConfig::new(kind, lr)
        }
    }

    /// The host update's loops compiled for AVX2 and AVX-512 ([`Isa::run`]) give the baseline's
    /// bits, for every rule, on values with remainders of every vector width, signed zeros,
    /// subnormals, huge values and a NaN (NaN only as NaN: its payload is not compared).
    #[test]
    fn host_updates_give_the_same_bits_at_every_instruction_set() {
        let mut seed = 12345u64;
        let mut next = move || {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((seed >> 11) as f64 / (1u64 << 53) as f64) * 2.0 - 1.0
        };
        let n = 37;
        let special = [-0.0, 0.0, 1e-310, -3e-320, 1e300, f64::NAN];
        let mut values = |scale: f64, positive: bool| -> Vec<f64> {
            (0..n)
                .map(|k| {
                    let v = special.get(k).copied().unwrap_or_else(|| next() * scale);
                    if positive {
                        v.abs()
                    } else {
                        v
                    }
                })
                .collect()
        };
        let (p0, g0, a0) = (values(1.0, false), values(0.1, false), values(0.5, false));
        let (b0, c0) = (values(0.01, true), values(0.01, true));
        let rules = [
            cfg(OptimKind::Sgd, 0.1, 0.0),
            cfg(OptimKind::Sgd, 0.1, 0.9),
            with(OptimKind::Sgd, 0.1, |c| {
                c.momentum = 0.9;
                c.nesterov = true;
                c.weight_decay = Some(1e-3);
            }),
            cfg(OptimKind::Adam, 0.01, 0.0),
            with(OptimKind::Adam, 0.01, |c| c.amsgrad = true),
            with(OptimKind::Adamw, 0.01, |c| c.weight_decay = Some(0.05)),
            with(OptimKind::Rmsprop, 3e-4, |c| c.weight_decay = Some(0.01)),
        ];
        let same = |x: &[f64], y: &[f64]| {
            x.iter()
                .zip(y)
                .all(|(x, y)| x.to_bits() == y.to_bits() || (x.is_nan() && y.is_nan()))
        };
        for rule_cfg in &rules {
            for t in [1, 3] {
                let rule = HostRule::new(rule_cfg, t);
                let at = |isa: Isa| {
                    let (mut p, mut g, mut a) = (p0.clone(), g0.clone(), a0.clone());
                    if rule_cfg.kind == OptimKind::Rmsprop {
                        // RMSprop's `a` is its square average.
                        a.iter_mut().for_each(|v| *v = v.abs());
                    }
                    let (mut b, mut c) = (b0.clone(), c0.clone());
                    isa.run(HostStep {
                        rule: &rule,
                        p: &mut p,
                        g: &mut g,
                        a: &mut a,
                        b: &mut b,
                        c: &mut c,
                    });
                    [p, g, a, b, c]
                };
                let want = at(Isa::Baseline);
                assert!(
                    want[0][6..].iter().all(|p| p.is_finite()) && want[0][6..] != p0[6..],
                    "the update moved the parameters ({:?}, t = {t})",
                    rule_cfg.kind
                );
                for isa in [Isa::Avx2, Isa::Avx512]
                    .into_iter()
                    .filter(|i| i.supported())
                {
                    let got = at(isa);
                    for (what, (x, y)) in
                        ["p", "g", "a", "b", "c"].iter().zip(got.iter().zip(&want))
                    {
                        assert!(
                            same(x, y),
                            "{what} at {isa:?}, {:?}, t = {t}: {x:?} vs {y:?}",
                            rule_cfg.kind
                        );
                    }
                }
            }
        }
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

    fn with(kind: OptimKind, lr: f64, f: impl FnOnce(&mut OptimConfig)) -> OptimConfig {
        let mut c = OptimConfig::new(kind, lr);
        f(&mut c);
        c.validate().unwrap();
        c
    }

    #[test]
    fn clip_grad_norm_scales_every_gradient_by_max_over_norm_plus_1e6() {
        // g = (3, 4): norm 5 > 1, so g ← g · 1/(5 + 1e-6); SGD lr 1 subtracts it.
        let c = with(OptimKind::Sgd, 1.0, |c| c.clip_grad_norm = Some(1.0));
        let k = 1.0 / (5.0 + 1e-6);
        close(
            &run(c.clone(), [0.0, 0.0], &[[3.0, 4.0]]),
            &[-3.0 * k, -4.0 * k],
        );
        // Below the limit nothing changes (torch multiplies by the clamped coefficient, 1).
        close(&run(c, [0.0, 0.0], &[[0.3, 0.4]]), &[-0.3, -0.4]);
    }

    #[test]
    fn clip_grad_value_clamps_each_value() {
        let c = with(OptimKind::Sgd, 1.0, |c| c.clip_grad_value = Some(0.5));
        close(&run(c, [0.0, 0.0], &[[3.0, -0.25]]), &[-0.5, 0.25]);
    }

    #[test]
    fn the_update_reports_the_pre_clip_gradient_norm() {
        let dev = Cpu::default();
        let c = with(OptimKind::Sgd, 1.0, |c| c.clip_grad_norm = Some(1.0));
        for host in [true, false] {
            let mut params = vec![
                dev.tensor_from_vec(vec![0.0f64, 0.0], (2,)),
                dev.tensor_from_vec(vec![0.0f64], (1,)),
            ];
            let loss = (params[0].leaky_trace() * dev.tensor_from_vec(vec![2.0, 4.0], (2,))).sum()
                + (params[1].leaky_trace() * dev.tensor_from_vec(vec![4.0], (1,))).sum();
            let grads = loss.backward();
            let mut opt = Optimizer::<f64, Cpu>::new(&c, 2);
            let u = if host {
                opt.update_host(&mut params, &grads)
            } else {
                opt.update_tensors(&mut params, &grads)
            };
            // ‖(2, 4, 4)‖ = 6 over both tensors, before clipping to 1.
            assert_eq!(u.grad_norm, 6.0, "host={host}");
            assert_eq!(u.non_finite, None);
            let k = 1.0 / (6.0 + 1e-6);
            close(&params[0].as_vec(), &[-2.0 * k, -4.0 * k]);
            close(&params[1].as_vec(), &[-4.0 * k]);
        }
    }

    #[test]
    fn weight_decay_is_coupled_for_sgd_adam_rmsprop_and_decoupled_for_adamw() {
        // SGD: g + wd·p = 0.5 + 0.1·2 = 0.7; p = 2 − 0.1·0.7.
        let c = with(OptimKind::Sgd, 0.1, |c| c.weight_decay = Some(0.1));
        close(&run(c, [2.0, 0.0], &[[0.5, 0.0]]), &[2.0 - 0.07, 0.0]);
        // Adam step 1 with g' = g + wd·p: update lr·g'/(|g'| + ε).
        let c = with(OptimKind::Adam, 0.01, |c| c.weight_decay = Some(0.1));
        let g = 0.5 + 0.1 * 2.0;
        close(
            &run(c, [2.0, 0.0], &[[0.5, 0.0]]),
            &[2.0 - 0.01 * g / (g + 1e-8), 0.0],
        );
        // RMSprop step 1: v = 0.01·g'², p −= lr·g'/(√v + ε).
        let c = with(OptimKind::Rmsprop, 0.01, |c| c.weight_decay = Some(0.1));
        let v: f64 = 0.01 * g * g;
        close(
            &run(c, [2.0, 0.0], &[[0.5, 0.0]]),
            &[2.0 - 0.01 * g / (v.sqrt() + 1e-8), 0.0],
        );
        // AdamW: p ← p·(1 − lr·wd), then Adam on the raw gradient (default wd 0.01).
        let c = with(OptimKind::Adamw, 0.01, |_| {});
        assert_eq!(c.weight_decay(), 0.01);
        let decayed = 2.0 * (1.0 - 0.01 * 0.01);
        close(
            &run(c, [2.0, 0.0], &[[0.5, 0.0]]),
            &[decayed - 0.01 * 0.5 / (0.5 + 1e-8), 0.0],
        );
    }

    #[test]
    fn nesterov_steps_along_g_plus_mu_buf() {
        // Step 1: buf = g = 1, d = g + μ·buf = 1.9; p = −0.19. Step 2: buf = 0.9 + 2 = 2.9,
        // d = 2 + 0.9·2.9 = 4.61; p = −0.19 − 0.461.
        let c = with(OptimKind::Sgd, 0.1, |c| {
            c.momentum = 0.9;
            c.nesterov = true;
        });
        close(
            &run(c, [0.0, 0.0], &[[1.0, 0.0], [2.0, 0.0]]),
            &[-0.19 - 0.461, 0.0],
        );
    }

    #[test]
    fn amsgrad_divides_by_the_running_maximum_of_v() {
        // β = (0.5, 0.5), ε = 0.1, g = 3 then 0: v = 4.5 then 2.25, v̂ = 4.5 both steps.
        let c = with(OptimKind::Adam, 0.01, |c| {
            c.betas = Some((0.5, 0.5));
            c.eps = Some(0.1);
            c.amsgrad = true;
        });
        let got = run(c, [0.0, 0.0], &[[3.0, 0.0], [0.0, 0.0]]);
        let p1 = -0.01 / 0.5 * 1.5 / (4.5f64.sqrt() / 0.5f64.sqrt() + 0.1);
        let p2 = p1 - 0.01 / 0.75 * 0.75 / (4.5f64.sqrt() / 0.75f64.sqrt() + 0.1);
        close(&got, &[p2, 0.0]);
        // Without AMSGrad the second step divides by √2.25 instead.
        let plain = with(OptimKind::Adam, 0.01, |c| {
            c.betas = Some((0.5, 0.5));
            c.eps = Some(0.1);
        });
        let p2 = p1 - 0.01 / 0.75 * 0.75 / (2.25f64.sqrt() / 0.75f64.sqrt() + 0.1);
        close(
            &run(plain, [0.0, 0.0], &[[3.0, 0.0], [0.0, 0.0]]),
            &[p2, 0.0],
        );
        assert!(torch_maximum(f64::NAN, 1.0).is_nan() && torch_maximum(1.0, f64::NAN).is_nan());
        assert_eq!(torch_maximum(-1.0, 2.0), 2.0);
    }

    #[test]
    fn betas_eps_and_alpha_are_used() {
        // Adam step 2 with β = (0.5, 0.6), ε = 0.1, written out.
        let c = with(OptimKind::Adam, 0.01, |c| {
            c.betas = Some((0.5, 0.6));
            c.eps = Some(0.1);
        });
        let got = run(c, [0.0, 0.0], &[[1.0, 0.0], [3.0, 0.0]]);
        let p1 = -0.01 * 1.0 / (1.0 + 0.1);
        let (m2, v2): (f64, f64) = (0.5 * 0.5 + 0.5 * 3.0, 0.6 * 0.4 + 0.4 * 9.0);
        let p2 = p1 - 0.01 / (1.0 - 0.25) * m2 / (v2.sqrt() / (1.0f64 - 0.36).sqrt() + 0.1);
        close(&got, &[p2, 0.0]);
        // RMSprop with α = 0.5, ε = 0.1: v = 0.5·g², p = −lr·g/(√v + ε).
        let c = with(OptimKind::Rmsprop, 0.01, |c| {
            c.alpha = Some(0.5);
            c.eps = Some(0.1);
        });
        let v: f64 = 0.5 * 4.0;
        close(
            &run(c, [0.0, 0.0], &[[2.0, 0.0]]),
            &[-0.01 * 2.0 / (v.sqrt() + 0.1), 0.0],
        );
    }

    /// One SGD step (lr 1) of two 2-element f32 parameters `p` under gradients `g`, on the host
    /// path or the tensor path: what the update reported and the parameters after it.
    fn sgd_step(host: bool, p: [[f32; 2]; 2], g: [[f32; 2]; 2]) -> (Update, Vec<Vec<f32>>) {
        let c = OptimConfig::new(OptimKind::Sgd, 1.0);
        step_f32(host, &c, &p.map(|v| v.to_vec()), &g.map(|v| v.to_vec()))
    }

    /// One update with `cfg` of f32 parameters `p` under gradients `g` (any sizes, empty ones
    /// too), on the host path or the tensor path: what it reported and the parameters after it.
    fn step_f32(
        host: bool,
        cfg: &OptimConfig,
        p: &[Vec<f32>],
        g: &[Vec<f32>],
    ) -> (Update, Vec<Vec<f32>>) {
        let dev = Cpu::default();
        let tensor = |v: &Vec<f32>| dev.tensor_from_vec(v.clone(), (v.len(),));
        let mut params: Vec<Flat<f32, Cpu>> = p.iter().map(tensor).collect();
        // loss = Σ sum(p_i · g_i) has gradient g_i for p_i (also where g_i is not finite). An
        // empty parameter is left out of it (dfdx's CPU sum of zero values panics) and gets an
        // empty gradient.
        let loss = params
            .iter()
            .zip(g)
            .filter(|(_, g)| !g.is_empty())
            .map(|(p, g)| (p.leaky_trace() * tensor(g)).sum())
            .reduce(|a, b| a + b)
            .expect("a non-empty gradient");
        let mut grads = loss.backward();
        for p in params.iter().filter(|p| p.shape().0 == 0) {
            grads.try_alloc_for(p).unwrap();
        }
        let mut opt = Optimizer::<f32, Cpu>::new(cfg, params.len());
        let u = if host {
            opt.update_host(&mut params, &grads)
        } else {
            opt.update_tensors(&mut params, &grads)
        };
        let f32s = |t: &Flat<f32, Cpu>| super::host(t).into_iter().map(|x| x as f32).collect();
        (u, params.iter().map(f32s).collect())
    }

    /// Random values in [-scale, scale), `n` of them, from a fixed seed.
    fn random(seed: u64, n: usize, scale: f32) -> Vec<f32> {
        use rand::{Rng, SeedableRng};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        (0..n).map(|_| rng.gen_range(-scale..scale)).collect()
    }

    /// Five parameters (the third empty) and random gradients for them, of different magnitudes.
    fn several_tensors() -> (Vec<Vec<f32>>, Vec<Vec<f32>>) {
        let sizes = [37, 300, 0, 64, 1];
        let scales = [1e-3, 1.0, 1.0, 10.0, 0.5];
        let p = (0..5).map(|i| random(i, sizes[i as usize], 1.0)).collect();
        let g = (0..5)
            .map(|i| random(100 + i, sizes[i as usize], scales[i as usize]))
            .collect();
        (p, g)
    }

    /// Whether `a` and `b` agree to `rel` relative to the larger of 1 and each value.
    fn near(a: &[Vec<f32>], b: &[Vec<f32>], rel: f64) -> bool {
        a.len() == b.len()
            && a.iter().zip(b).all(|(x, y)| {
                x.len() == y.len()
                    && x.iter().zip(y).all(|(&x, &y)| {
                        let (x, y) = (x as f64, y as f64);
                        (x - y).abs() <= rel * x.abs().max(y.abs()).max(1.0)
                    })
            })
    }

    /// The tensor path's gradient norm, summed in f32 on the device, is the host path's f64
    /// norm to f32 rounding, over several tensors with an empty one; and the device-side sum of
    /// squares itself: the f64 sum to f32 rounding, 0 for nothing, not finite for a NaN or ±inf
    /// and for finite values whose squares overflow f32.
    #[test]
    fn the_tensor_path_norm_is_the_f64_norm_to_f32_rounding() {
        let (p, g) = several_tensors();
        let c = OptimConfig::new(OptimKind::Sgd, 0.1);
        let (on_host, host_after) = step_f32(true, &c, &p, &g);
        let (on_dev, dev_after) = step_f32(false, &c, &p, &g);
        let rel = (on_dev.grad_norm - on_host.grad_norm).abs() / on_host.grad_norm;
        assert!(rel < 1e-6, "{} vs {}", on_dev.grad_norm, on_host.grad_norm);
        assert_eq!((on_host.non_finite, on_dev.non_finite), (None, None));
        assert!(near(&host_after, &dev_after, 1e-6));

        let dev = Cpu::default();
        let ts: Vec<Flat<f32, Cpu>> = g
            .iter()
            .map(|v| dev.tensor_from_vec(v.clone(), (v.len(),)))
            .collect();
        let want: f64 = g.iter().flatten().map(|&x| x as f64 * x as f64).sum();
        let got = sum_of_squares(&ts);
        assert!((got - want).abs() < 2e-6 * want, "{got} vs {want}");
        assert_eq!(sum_of_squares::<f32, Cpu>(&[]), 0.0);
        assert_eq!(sum_of_squares(&ts[2..3]), 0.0);
        let one = |v: f32| vec![ts[0].clone(), dev.tensor_from_vec(vec![1.0, v], (2,))];
        for bad in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY, 1e20] {
            assert!(!sum_of_squares(&one(bad)).is_finite(), "{bad}");
        }
    }

    /// With several tensors (one empty), a NaN or ±inf gradient in the second is named as
    /// tensor 1 and every parameter is left as it was, on both paths.
    #[test]
    fn a_non_finite_gradient_among_several_tensors_is_named() {
        let (p, g) = several_tensors();
        let c = OptimConfig::new(OptimKind::Sgd, 0.1);
        for bad in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
            let mut g = g.clone();
            g[1][7] = bad;
            for host in [true, false] {
                let (u, after) = step_f32(host, &c, &p, &g);
                let what = format!("host={host} bad={bad}");
                assert_eq!(u.non_finite, Some((NonFiniteKind::Gradient, 1)), "{what}");
                assert!(!u.grad_norm.is_finite(), "{what}");
                assert_eq!(after, p, "{what}");
            }
        }
    }

    /// Huge finite gradients, whose squares overflow f32 (1e20² = 1e40), give the tensor path
    /// the host path's f64 norm and update: the same numbers without clipping, the same to f32
    /// rounding with it.
    #[test]
    fn huge_finite_gradients_get_the_host_paths_norm_and_update() {
        let p = vec![vec![1.0, -2.0], vec![], vec![3.0]];
        let g = vec![vec![1e20, -1e20], vec![], vec![3e19]];
        let want = (2.0 * (1e20f32 as f64).powi(2) + (3e19f32 as f64).powi(2)).sqrt();
        let plain = OptimConfig::new(OptimKind::Sgd, 1.0);
        let clipped = with(OptimKind::Sgd, 1.0, |c| c.clip_grad_norm = Some(1.0));
        let (u_host, host_after) = step_f32(true, &plain, &p, &g);
        let (u_dev, dev_after) = step_f32(false, &plain, &p, &g);
        assert_eq!(u_host.grad_norm, want);
        assert_eq!(u_dev, u_host);
        assert_eq!(dev_after, host_after);
        let (u_host, host_after) = step_f32(true, &clipped, &p, &g);
        let (u_dev, dev_after) = step_f32(false, &clipped, &p, &g);
        assert_eq!((u_dev.grad_norm, u_dev.non_finite), (want, None));
        assert_eq!(u_host.grad_norm, want);
        assert!(
            near(&host_after, &dev_after, 1e-6),
            "{host_after:?} vs {dev_after:?}"
        );
        // Clipped to norm 1: the largest step is 1e20/want ≈ 0.7.
        assert!((host_after[0][0] as f64 - (1.0 - 1e20f32 as f64 / want)).abs() < 1e-6);
    }

    /// Clipping by the device-side norm gives the host path's update to f32 rounding (SGD with
    /// lr 1 moves each parameter by its clipped gradient; Adam and RMSprop divide it out again
    /// except near ε).
    #[test]
    fn clipping_by_the_device_norm_updates_as_the_host_path() {
        let (p, g) = several_tensors();
        for kind in [OptimKind::Sgd, OptimKind::Adam, OptimKind::Rmsprop] {
            let c = with(kind, 1.0, |c| c.clip_grad_norm = Some(0.5));
            let (u_host, host_after) = step_f32(true, &c, &p, &g);
            let (u_dev, dev_after) = step_f32(false, &c, &p, &g);
            assert!(u_host.grad_norm > 0.5, "clipping is on");
            assert_eq!((u_host.non_finite, u_dev.non_finite), (None, None));
            assert!(near(&host_after, &dev_after, 1e-6), "{kind:?}");
            assert!(
                !near(&host_after, &p, 1e-3),
                "{kind:?}: the parameters moved"
            );
        }
    }

    /// A non-finite gradient (NaN, +inf or −inf) is found before anything is updated: the first
    /// one is named, every parameter is untouched and the norm is not finite; both paths.
    #[test]
    fn a_non_finite_gradient_is_named_and_nothing_is_updated() {
        let p = [[1.0, 2.0], [3.0, 4.0]];
        for host in [true, false] {
            for bad in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
                let (u, after) = sgd_step(host, p, [[1.0, 1.0], [bad, 0.0]]);
                let what = format!("host={host} bad={bad}");
                assert_eq!(u.non_finite, Some((NonFiniteKind::Gradient, 1)), "{what}");
                assert!(!u.grad_norm.is_finite(), "{what}");
                assert_eq!(after, vec![vec![1.0, 2.0], vec![3.0, 4.0]], "{what}");
                let (u, after) = sgd_step(host, p, [[0.0, bad], [bad, 0.0]]);
                assert_eq!(u.non_finite, Some((NonFiniteKind::Gradient, 0)), "{what}");
                assert_eq!(after, vec![vec![1.0, 2.0], vec![3.0, 4.0]], "{what}");
            }
        }
    }

    /// A parameter that overflows in the update is found after it (the first one is named);
    /// huge finite values whose sum would overflow f32 are not mistaken for it; both paths.
    #[test]
    fn a_parameter_that_overflows_is_named_and_huge_finite_values_are_not() {
        for host in [true, false] {
            let (u, after) = sgd_step(host, [[1.0, 2.0], [-3e38, 0.0]], [[1.0, 1.0], [3e38, 0.0]]);
            assert_eq!(
                u.non_finite,
                Some((NonFiniteKind::Parameter, 1)),
                "host={host}"
            );
            assert_eq!(
                after[0],
                vec![0.0, 1.0],
                "the other parameters are still updated"
            );
            assert_eq!(after[1][0], f32::NEG_INFINITY);
            let (u, _) = sgd_step(
                host,
                [[-3e38, 0.0], [-3e38, 0.0]],
                [[3e38, 0.0], [3e38, 0.0]],
            );
            assert_eq!(
                u.non_finite,
                Some((NonFiniteKind::Parameter, 0)),
                "host={host}"
            );
            // Each parameter sums to about ±6e38 (beyond f32::MAX), every value is finite.
            let (u, after) = sgd_step(host, [[3e38, 3e38], [0.0, 0.0]], [[0.0, 0.0], [3e38, 3e38]]);
            assert_eq!(u.non_finite, None, "host={host}");
            assert_eq!(after, vec![vec![3e38, 3e38], vec![-3e38, -3e38]]);
            assert_eq!(u.grad_norm, (2.0 * 3e38f32 as f64 * 3e38f32 as f64).sqrt());
        }
    }

    /// The device-side check: the first tensor with a NaN or ±inf, none among huge finite ones
    /// (and the host-side one the gradients get).
    #[test]
    fn first_non_finite_names_the_first_bad_tensor_on_the_device() {
        assert!(all_finite(&[0.0, -1e300, 5.0]));
        assert!(!all_finite(&[0.0, f64::INFINITY]));
        assert!(!all_finite(&[f64::NAN]));
        assert!(all_finite(&[]));
        let dev = Cpu::default();
        let ts = |vs: &[&[f32]]| -> Vec<Flat<f32, Cpu>> {
            vs.iter()
                .map(|v| dev.tensor_from_vec(v.to_vec(), (v.len(),)))
                .collect()
        };
        let huge: &[f32] = &[f32::MAX, f32::MAX, -f32::MAX, f32::MAX];
        assert_eq!(first_non_finite(&ts(&[huge, &[], huge])), None);
        assert_eq!(first_non_finite::<f32, Cpu>(&[]), None);
        for bad in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
            assert_eq!(first_non_finite(&ts(&[&[bad]])), Some(0), "{bad}");
            let got = first_non_finite(&ts(&[huge, &[1.0, bad], &[bad], huge]));
            assert_eq!(got, Some(1), "{bad}");
        }
        // +inf in one tensor and −inf in another do not cancel out.
        let got = first_non_finite(&ts(&[&[f32::INFINITY], &[f32::NEG_INFINITY]]));
        assert_eq!(got, Some(0));
    }
}
