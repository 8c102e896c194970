#!/usr/bin/env python3
"""Times the tutorial recipes' training in PyTorch, as `rnnsweep bench` times them in rnnsweep.

Reads the spec that `rnnsweep bench --pytorch-spec` prints (each recipe's training config as
bench runs it, the MNIST files, warm-up/timed steps and windows, threads, any RNNSWEEP_ISA cap)
and writes JSON that `rnnsweep bench --pytorch FILE` shows beside its own figures.
`just bench-vs-pytorch` runs all three steps.

What is timed, per recipe: one thread (torch.set_num_threads), batches already in memory as
float tensors (consecutive slices of the training images, as bench takes them), and the same
step as rnnsweep's: zero_grad, forward through nn.RNN/LSTM/GRU (batch_first) and the Linear
head on the last step's state, cross-entropy, backward, optimizer step. `warmup` steps untimed,
then `repeats` windows of `steps` steps; the median window is reported with min and max.
Under RNNSWEEP_ISA=avx2 (or baseline) PyTorch is capped the same way: ATen's kernels through
ATEN_CPU_CAPABILITY, MKL's matmuls through MKL_ENABLE_INSTRUCTIONS and oneDNN's through
ONEDNN_MAX_CPU_ISA, set before torch is imported unless set already (ATEN_CPU_CAPABILITY alone
leaves MKL's AVX-512 matmuls in place).

Needs torch and numpy (pip install torch numpy); never run by the tests or CI.
"""

import argparse
import gzip
import json
import os
import statistics
import sys
import time

# PyTorch's CPU kernels come from three libraries, each with its own cap, read when it loads:
# ATen's vectorized kernels (ATEN_CPU_CAPABILITY), MKL's matmuls (MKL_ENABLE_INSTRUCTIONS) and
# oneDNN's (ONEDNN_MAX_CPU_ISA). Set them before importing torch, unless set already.
_CAPS = {
    "avx512": {},
    "avx2": {"ATEN_CPU_CAPABILITY": "avx2", "MKL_ENABLE_INSTRUCTIONS": "AVX2",
             "ONEDNN_MAX_CPU_ISA": "AVX2"},
    "baseline": {"ATEN_CPU_CAPABILITY": "default", "MKL_ENABLE_INSTRUCTIONS": "SSE4_2",
                 "ONEDNN_MAX_CPU_ISA": "SSE41"},
}
_cap = os.environ.get("RNNSWEEP_ISA", "").strip().lower()
for _var, _value in _CAPS.get(_cap, {}).items():
    os.environ.setdefault(_var, _value)

import numpy as np  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402


def read_idx(path):
    """An IDX file (gzip or raw) as a numpy array."""
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rb") as f:
        data = f.read()
    dims = data[3]
    shape = [int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(dims)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * dims).reshape(shape)


def sequences(images, model):
    """Images (N, 28, 28) as the network reads them: (N, steps, features), pixels / 255."""
    x = images.astype(np.float32) / 255.0
    n = x.shape[0]
    mode = model.get("input", "rows")
    if mode == "rows":
        x = x.reshape(n, 28, 28)
    elif mode == "columns":
        x = x.reshape(n, 28, 28).transpose(0, 2, 1)
    elif mode == "pixels":
        x = x.reshape(n, 784, 1)
    elif mode == "permuted":
        # The same work as pixels; the order itself does not change the timing.
        order = np.random.default_rng(model.get("permutation_seed", 0)).permutation(784)
        x = x.reshape(n, 784)[:, order].reshape(n, 784, 1)
    else:
        raise SystemExit(f"unknown input mode {mode!r}")
    return torch.from_numpy(np.ascontiguousarray(x))


class Classifier(nn.Module):
    def __init__(self, model, features):
        super().__init__()
        cell = model["cell"]
        kwargs = dict(
            input_size=features,
            hidden_size=model["hidden"],
            num_layers=model["layers"],
            batch_first=True,
            dropout=model.get("dropout") or 0.0,
        )
        if cell == "rnn":
            self.rnn = nn.RNN(nonlinearity=model.get("activation") or "tanh", **kwargs)
        elif cell == "lstm":
            self.rnn = nn.LSTM(**kwargs)
        elif cell == "gru":
            self.rnn = nn.GRU(**kwargs)
        else:
            raise SystemExit(f"unknown cell {cell!r}")
        self.fc = nn.Linear(model["hidden"], 10)

    def forward(self, x):
        out, _ = self.rnn(x)
        return self.fc(out[:, -1, :])


def optimizer(params, optim):
    """The config's optimizer; absent hyperparameters take torch's defaults, as in rnnsweep."""
    kind, lr = optim["kind"], optim["lr"]
    extra = {}
    if optim.get("weight_decay") is not None:
        extra["weight_decay"] = optim["weight_decay"]
    if optim.get("eps") is not None:
        extra["eps"] = optim["eps"]
    if kind == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=optim.get("momentum", 0.0),
                               nesterov=optim.get("nesterov", False), **extra)
    if kind in ("adam", "adamw"):
        if optim.get("betas") is not None:
            extra["betas"] = tuple(optim["betas"])
        cls = torch.optim.Adam if kind == "adam" else torch.optim.AdamW
        return cls(params, lr=lr, amsgrad=optim.get("amsgrad", False), **extra)
    if kind == "rmsprop":
        if optim.get("alpha") is not None:
            extra["alpha"] = optim["alpha"]
        return torch.optim.RMSprop(params, lr=lr, momentum=optim.get("momentum", 0.0), **extra)
    raise SystemExit(f"optimizer {kind!r} is not known to this script")


def bench(recipe, spec, images, labels):
    cfg = recipe["config"]
    torch.manual_seed(cfg.get("seed", 0))
    torch.set_flush_denormal(bool(cfg.get("flush_denormal", False)))
    x_all = sequences(images, cfg["model"])
    y_all = torch.from_numpy(labels.astype(np.int64))
    net = Classifier(cfg["model"], x_all.shape[2])
    opt = optimizer(net.parameters(), cfg["optim"])
    loss_fn = nn.CrossEntropyLoss()
    b = cfg["batch_size"]
    n_batches = x_all.shape[0] // b
    batches = [(x_all[i * b:(i + 1) * b], y_all[i * b:(i + 1) * b]) for i in range(n_batches)]
    step_no = 0

    def step():
        nonlocal step_no
        x, y = batches[step_no % n_batches]
        step_no += 1
        opt.zero_grad()
        loss = loss_fn(net(x), y)
        loss.backward()
        opt.step()

    for _ in range(spec["warmup"]):
        step()
    rates = []
    for _ in range(spec["repeats"]):
        t0 = time.perf_counter()
        for _ in range(spec["steps"]):
            step()
        rates.append(spec["steps"] * b / (time.perf_counter() - t0))
    torch.set_flush_denormal(False)
    return {
        "recipe": recipe["recipe"],
        "config": cfg,
        "samples_per_sec": statistics.median(rates),
        "min_samples_per_sec": min(rates),
        "max_samples_per_sec": max(rates),
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("spec", help="the JSON of `rnnsweep bench --pytorch-spec`")
    ap.add_argument("--out", help="write the JSON here instead of stdout")
    args = ap.parse_args()
    with open(args.spec) as f:
        spec = json.load(f)
    if spec.get("format_version") != 1:
        raise SystemExit(f"{args.spec}: spec format {spec.get('format_version')} is not 1")
    torch.set_num_threads(spec["threads"])
    images = read_idx(spec["train_images"])
    labels = read_idx(spec["train_labels"])
    rows = []
    for recipe in spec["recipes"]:
        row = bench(recipe, spec, images, labels)
        print(f"  {row['recipe']}: {row['samples_per_sec']:.0f} samples/s (PyTorch)",
              file=sys.stderr)
        rows.append(row)
    out = {
        "torch": torch.__version__,
        "capability": torch.backends.cpu.get_cpu_capability()
        + "".join(f", {v}={os.environ[v]}" for v in ("MKL_ENABLE_INSTRUCTIONS", "ONEDNN_MAX_CPU_ISA")
                  if v in os.environ),
        "threads": torch.get_num_threads(),
        "rows": rows,
    }
    text = json.dumps(out, indent=2)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text + "\n")
    else:
        print(text)


if __name__ == "__main__":
    main()
