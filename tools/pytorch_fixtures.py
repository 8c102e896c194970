#!/usr/bin/env python3
"""Golden fixtures from PyTorch for rnnsweep's tests (tests/pytorch_fixtures.rs).

Run on a developer machine with torch installed (`pip install torch numpy`); CI never needs torch,
it only reads the committed JSON under tests/fixtures/pytorch/:

    python3 tools/pytorch_fixtures.py [--data ../shared/data/mnist] [--out tests/fixtures/pytorch]

What it writes:
- batch.json: 4 real MNIST training images (their pixels and labels) used by every fixture.
- one file per cell (rnn relu, rnn tanh, lstm, gru) x layers (1, 2): the model's initial weights
  (PyTorch's default init under a fixed seed), and, in float32 and in float64 from the same
  initial values: the logits and the mean cross-entropy of the batch, every parameter's gradient,
  and the parameters after 3 optimizer steps on that batch for SGD, SGD with momentum, Adam and
  RMSprop (PyTorch's defaults otherwise).
- optimizers.json: the knobs of the study space on an LSTM (hidden 4, 1 layer): for each
  optimizer spec (written exactly as rnnsweep's `optim` config: weight decay, AdamW, betas, eps,
  alpha, Nesterov, AMSGrad, clip_grad_norm, clip_grad_value), in float32 and float64, the parameters
  after 3 steps and the total gradient 2-norm before clipping at each step.
- schedules.json: the learning rate of every step under PyTorch's schedulers (StepLR stepped
  per epoch, CosineAnnealingLR over the run and LinearLR warmup stepped per iteration, chained),
  for specs written as rnnsweep's `optim` config.
- divergence.json: a relu RNN whose recurrent weights start large, trained with SGD on the batch
  until something goes non-finite: the step at which PyTorch's loss first is NaN/inf, and the
  first non-finite quantity found in rnnsweep's order (the loss, then each gradient in parameter
  order, then each parameter after the update).
"""
import argparse
import gzip
import json
import math
import os
import struct

import torch
import torch.nn as nn

HIDDEN = 4
BATCH_INDICES = [0, 1, 2, 3]
OPTIMIZERS = {
    "sgd": {"kind": "sgd", "lr": 0.1, "momentum": 0.0},
    "sgd_momentum": {"kind": "sgd", "lr": 0.05, "momentum": 0.9},
    "adam": {"kind": "adam", "lr": 0.01, "momentum": 0.0},
    "rmsprop": {"kind": "rmsprop", "lr": 0.01, "momentum": 0.0},
}
STEPS = 3


def read_idx(path):
    with gzip.open(path, "rb") as f:
        data = f.read()
    magic = struct.unpack(">I", data[:4])[0]
    ndim = magic & 0xFF
    dims = struct.unpack(">" + "I" * ndim, data[4 : 4 + 4 * ndim])
    return dims, data[4 + 4 * ndim :]


class Classifier(nn.Module):
    def __init__(self, cell, hidden, layers, activation):
        super().__init__()
        if cell == "rnn":
            self.rnn = nn.RNN(28, hidden, num_layers=layers, nonlinearity=activation, batch_first=True)
        elif cell == "lstm":
            self.rnn = nn.LSTM(28, hidden, num_layers=layers, batch_first=True)
        else:
            self.rnn = nn.GRU(28, hidden, num_layers=layers, batch_first=True)
        self.fc = nn.Linear(hidden, 10)

    def forward(self, x):
        out, _ = self.rnn(x)
        return self.fc(out[:, -1, :])


def make_optimizer(spec, params):
    if spec["kind"] == "sgd":
        return torch.optim.SGD(params, lr=spec["lr"], momentum=spec["momentum"])
    if spec["kind"] == "adam":
        return torch.optim.Adam(params, lr=spec["lr"])
    return torch.optim.RMSprop(params, lr=spec["lr"])


def flat(t):
    return [float(v) for v in t.detach().reshape(-1).tolist()]


def f32(v):
    """Shortest decimal that reads back as the same float32 (keeps the files small)."""
    if not math.isfinite(v):
        return None
    s = "%.9g" % v
    return float(s)


def rounded(values, dtype):
    return [f32(v) for v in values] if dtype == torch.float32 else values


def model_from(init, cell, layers, activation, dtype):
    torch.manual_seed(0)
    m = Classifier(cell, HIDDEN, layers, activation).to(dtype)
    with torch.no_grad():
        for (name, p), values in zip(m.named_parameters(), init):
            p.copy_(torch.tensor(values, dtype=dtype).reshape(p.shape))
    return m


def run(init, cell, layers, activation, x, y, dtype):
    m = model_from(init, cell, layers, activation, dtype)
    xd = x.to(dtype)
    logits = m(xd)
    loss = nn.functional.cross_entropy(logits, y)
    loss.backward()
    out = {
        "logits": rounded(flat(logits), dtype),
        "loss": float(loss),
        "grads": [rounded(flat(p.grad), dtype) for _, p in m.named_parameters()],
        "after": {},
    }
    for key, spec in OPTIMIZERS.items():
        m = model_from(init, cell, layers, activation, dtype)
        opt = make_optimizer(spec, m.parameters())
        for _ in range(STEPS):
            opt.zero_grad()
            nn.functional.cross_entropy(m(xd), y).backward()
            opt.step()
        out["after"][key] = [rounded(flat(p), dtype) for _, p in m.named_parameters()]
    return out


def first_non_finite(m, loss):
    """rnnsweep's order: the loss, then each gradient in parameter order (before the update)."""
    if not math.isfinite(float(loss)):
        return {"kind": "loss"}
    for name, p in m.named_parameters():
        if not torch.isfinite(p.grad).all():
            return {"kind": "gradient", "tensor": name}
    return None


def divergence(x, y, scale, lr):
    """A relu RNN with W_hh = scale * I, trained with SGD at `lr` until torch's loss is NaN/inf."""
    torch.manual_seed(7)
    m = Classifier("rnn", HIDDEN, 1, "relu")
    with torch.no_grad():
        m.rnn.weight_hh_l0.copy_(torch.eye(HIDDEN) * scale)
    init = [flat(p) for _, p in m.named_parameters()]
    init = [[f32(v) for v in vs] for vs in init]
    m = model_from(init, "rnn", 1, "relu", torch.float32)
    opt = torch.optim.SGD(m.parameters(), lr=lr)
    first = None
    loss_nan_step = None
    losses = []
    for step in range(1, 41):
        opt.zero_grad()
        loss = nn.functional.cross_entropy(m(x), y)
        losses.append(float(loss))
        if loss_nan_step is None and not math.isfinite(float(loss)):
            loss_nan_step = step
        if first is None:
            f = first_non_finite(m, loss) if not math.isfinite(float(loss)) else None
            if f is None:
                loss.backward()
                f = first_non_finite(m, loss)
                if f is None:
                    opt.step()
                    for name, p in m.named_parameters():
                        if not torch.isfinite(p).all():
                            f = {"kind": "parameter", "tensor": name}
                            break
            if f is not None:
                f["step"] = step
                first = f
        else:
            loss.backward()
            opt.step()
        if loss_nan_step is not None:
            break
    assert first is not None and loss_nan_step is not None, losses
    return {
        "model": {"cell": "rnn", "activation": "relu", "hidden": HIDDEN, "layers": 1},
        "optimizer": {"kind": "sgd", "lr": lr, "momentum": 0.0},
        "w_hh_scale": scale,
        "init": init,
        "losses": [v if math.isfinite(v) else None for v in losses],
        "torch_loss_non_finite_step": loss_nan_step,
        "first_non_finite": first,
    }


# The study-space optimizer specs, as rnnsweep's OptimConfig JSON (absent = PyTorch's default).
OPTIMIZER_KNOBS = {
    "sgd_weight_decay": {"kind": "sgd", "lr": 0.1, "momentum": 0.0, "weight_decay": 0.05},
    "sgd_nesterov": {"kind": "sgd", "lr": 0.05, "momentum": 0.9, "nesterov": True, "weight_decay": 0.01},
    "sgd_clip_norm": {"kind": "sgd", "lr": 0.5, "momentum": 0.0, "clip_grad_norm": 0.05},
    "sgd_clip_value": {"kind": "sgd", "lr": 0.5, "momentum": 0.0, "clip_grad_value": 0.002},
    "adam_knobs": {"kind": "adam", "lr": 0.01, "momentum": 0.0, "weight_decay": 0.05, "betas": [0.8, 0.99], "eps": 1e-6},
    "adam_clip_norm": {"kind": "adam", "lr": 0.01, "momentum": 0.0, "clip_grad_norm": 0.05},
    "adamw_default": {"kind": "adamw", "lr": 0.01, "momentum": 0.0},
    "adamw_knobs": {"kind": "adamw", "lr": 0.01, "momentum": 0.0, "weight_decay": 0.5, "betas": [0.85, 0.995], "eps": 1e-7},
    "rmsprop_knobs": {"kind": "rmsprop", "lr": 0.01, "momentum": 0.0, "weight_decay": 0.05, "alpha": 0.9, "eps": 1e-6},
    # β2 = 0.5 lets the second moment fall within 3 steps, where AMSGrad's running maximum differs.
    "adam_amsgrad": {"kind": "adam", "lr": 0.01, "momentum": 0.0, "betas": [0.9, 0.5], "amsgrad": True},
    "adamw_amsgrad": {"kind": "adamw", "lr": 0.01, "momentum": 0.0, "weight_decay": 0.1, "betas": [0.9, 0.5], "amsgrad": True},
}


def make_knob_optimizer(spec, params):
    kw = {"lr": spec["lr"]}
    if "weight_decay" in spec:
        kw["weight_decay"] = spec["weight_decay"]
    if spec["kind"] == "sgd":
        return torch.optim.SGD(params, momentum=spec["momentum"], nesterov=spec.get("nesterov", False), **kw)
    for k in ("betas", "eps", "alpha", "amsgrad"):
        if k in spec:
            kw[k] = tuple(spec[k]) if k == "betas" else spec[k]
    if spec["kind"] == "adam":
        return torch.optim.Adam(params, **kw)
    if spec["kind"] == "adamw":
        return torch.optim.AdamW(params, **kw)
    return torch.optim.RMSprop(params, **kw)


def total_norm(params):
    """What clip_grad_norm_ computes (and returns): the 2-norm of the per-tensor 2-norms."""
    return float(torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(p.grad) for p in params])))


def knob_runs(init, x, y, dtype):
    out = {}
    for key, spec in OPTIMIZER_KNOBS.items():
        m = model_from(init, "lstm", 1, "tanh", dtype)
        params = list(m.parameters())
        opt = make_knob_optimizer(spec, params)
        norms = []
        for _ in range(STEPS):
            opt.zero_grad()
            nn.functional.cross_entropy(m(x.to(dtype)), y).backward()
            norms.append(total_norm(params))
            if "clip_grad_norm" in spec:
                torch.nn.utils.clip_grad_norm_(params, spec["clip_grad_norm"])
            if "clip_grad_value" in spec:
                torch.nn.utils.clip_grad_value_(params, spec["clip_grad_value"])
            opt.step()
        out[key] = {"after": [rounded(flat(p), dtype) for _, p in m.named_parameters()], "grad_norms": norms}
    return out


SCHEDULES = {
    "constant": {"kind": "sgd", "lr": 0.1, "momentum": 0.0},
    "step": {"kind": "sgd", "lr": 0.1, "momentum": 0.0, "lr_schedule": {"kind": "step", "step_size": 2, "gamma": 0.5}},
    "cosine": {"kind": "sgd", "lr": 0.1, "momentum": 0.0, "lr_schedule": {"kind": "cosine", "eta_min": 0.001}},
    "warmup_step": {"kind": "sgd", "lr": 0.1, "momentum": 0.0, "lr_schedule": {"kind": "step", "step_size": 1, "gamma": 0.5}, "warmup": 5},
    "warmup_cosine": {"kind": "adam", "lr": 0.01, "momentum": 0.0, "lr_schedule": {"kind": "cosine", "eta_min": 0.0}, "warmup": 4},
    "warmup_only": {"kind": "adam", "lr": 0.01, "momentum": 0.0, "warmup": 3},
}
SCHEDULE_EPOCHS, BATCHES_PER_EPOCH = 5, 3


def schedule_lrs(spec):
    """The rate of each step: per-iteration schedulers step after every optimizer step, StepLR
    after every epoch (as a training loop calls them)."""
    p = torch.zeros(1, requires_grad=True)
    opt = torch.optim.SGD([p], lr=spec["lr"])
    total = SCHEDULE_EPOCHS * BATCHES_PER_EPOCH
    per_iter, per_epoch = [], []
    if "warmup" in spec:
        n = spec["warmup"]
        per_iter.append(torch.optim.lr_scheduler.LinearLR(opt, start_factor=1.0 / n, end_factor=1.0, total_iters=n - 1))
    sched = spec.get("lr_schedule", {"kind": "constant"})
    if sched["kind"] == "step":
        per_epoch.append(torch.optim.lr_scheduler.StepLR(opt, step_size=sched["step_size"], gamma=sched["gamma"]))
    elif sched["kind"] == "cosine":
        per_iter.append(torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=total, eta_min=sched["eta_min"]))
    chained = torch.optim.lr_scheduler.ChainedScheduler(per_iter) if len(per_iter) > 1 else (per_iter[0] if per_iter else None)
    lrs = []
    for epoch in range(SCHEDULE_EPOCHS):
        for _ in range(BATCHES_PER_EPOCH):
            lrs.append(opt.param_groups[0]["lr"])
            p.grad = torch.zeros(1)
            opt.step()
            if chained is not None:
                chained.step()
        for s_ in per_epoch:
            s_.step()
    return lrs


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=os.path.join(here, "..", "..", "shared", "data", "mnist"))
    ap.add_argument("--out", default=os.path.join(here, "..", "tests", "fixtures", "pytorch"))
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    (n, rows, cols), pixels = read_idx(os.path.join(a.data, "train-images-idx3-ubyte.gz"))
    _, labels = read_idx(os.path.join(a.data, "train-labels-idx1-ubyte.gz"))
    imgs = [list(pixels[i * 784 : (i + 1) * 784]) for i in BATCH_INDICES]
    labs = [labels[i] for i in BATCH_INDICES]
    meta = {"torch": torch.__version__, "hidden": HIDDEN, "steps": STEPS}
    with open(os.path.join(a.out, "batch.json"), "w") as f:
        json.dump({"indices": BATCH_INDICES, "labels": labs, "pixels": imgs}, f, separators=(",", ":"))
    x = torch.tensor(imgs, dtype=torch.float32).reshape(4, 28, 28) / 255.0
    y = torch.tensor(labs, dtype=torch.long)
    torch.use_deterministic_algorithms(True)
    for seed, (cell, activation) in enumerate([("rnn", "relu"), ("rnn", "tanh"), ("lstm", None), ("gru", None)]):
        for layers in (1, 2):
            torch.manual_seed(100 + 10 * seed + layers)
            m = Classifier(cell, HIDDEN, layers, activation)
            names = [n for n, _ in m.named_parameters()]
            shapes = [list(p.shape) for _, p in m.named_parameters()]
            init = [[f32(v) for v in flat(p)] for _, p in m.named_parameters()]
            fixture = {
                "meta": meta,
                "model": {"cell": cell, "activation": activation, "hidden": HIDDEN, "layers": layers},
                "optimizers": OPTIMIZERS,
                "names": names,
                "shapes": shapes,
                "init": init,
                "f32": run(init, cell, layers, activation or "tanh", x, y, torch.float32),
                "f64": run(init, cell, layers, activation or "tanh", x, y, torch.float64),
            }
            name = f"{cell}{'_' + activation if activation else ''}_l{layers}.json"
            with open(os.path.join(a.out, name), "w") as f:
                json.dump(fixture, f, separators=(",", ":"))
            print("wrote", name)
    torch.manual_seed(300)
    m = Classifier("lstm", HIDDEN, 1, None)
    init = [[f32(v) for v in flat(p)] for _, p in m.named_parameters()]
    knobs = {
        "meta": meta,
        "model": {"cell": "lstm", "activation": None, "hidden": HIDDEN, "layers": 1},
        "optimizers": OPTIMIZER_KNOBS,
        "names": [n for n, _ in m.named_parameters()],
        "init": init,
        "f32": knob_runs(init, x, y, torch.float32),
        "f64": knob_runs(init, x, y, torch.float64),
    }
    with open(os.path.join(a.out, "optimizers.json"), "w") as f:
        json.dump(knobs, f, separators=(",", ":"))
    print("wrote optimizers.json; pre-clip gradient norms (f32):",
          {k: [round(n, 4) for n in v["grad_norms"]] for k, v in knobs["f32"].items()})
    schedules = {
        "meta": meta,
        "epochs": SCHEDULE_EPOCHS,
        "batches_per_epoch": BATCHES_PER_EPOCH,
        "specs": SCHEDULES,
        "lrs": {k: schedule_lrs(v) for k, v in SCHEDULES.items()},
    }
    with open(os.path.join(a.out, "schedules.json"), "w") as f:
        json.dump(schedules, f, separators=(",", ":"))
    print("wrote schedules.json:", {k: [round(v, 5) for v in lrs] for k, lrs in schedules["lrs"].items()})
    # Two ways to blow up: the hidden state grows (2^27) until the second step's loss overflows,
    # and a huge gradient step that overflows a parameter (fc.weight) at the first update.
    cases = [divergence(x, y, 2.0, 0.5), divergence(x, y, 26.0, 10.0)]
    with open(os.path.join(a.out, "divergence.json"), "w") as f:
        json.dump({"meta": meta, "cases": cases}, f, separators=(",", ":"))
    for d in cases:
        print("divergence:", d["first_non_finite"], "torch loss non-finite at step", d["torch_loss_non_finite_step"])


if __name__ == "__main__":
    main()
