"""PyTorch side of the flush_denormal measurement in README: an LSTM h128 over `steps` steps of
`inp` features, batch 64, Adam 0.01, one thread, random inputs; samples/s with and without
torch.set_flush_denormal(True), alternating. Usage: python tools/torch_denormal_bench.py 784 1
(needs torch; never run by the tests)."""
import sys
import time

import torch

torch.set_num_threads(1)
torch.manual_seed(0)
steps = int(sys.argv[1]); inp = int(sys.argv[2])
lstm = torch.nn.LSTM(inp, 128, batch_first=True)
head = torch.nn.Linear(128, 10)
opt = torch.optim.Adam(list(lstm.parameters()) + list(head.parameters()), lr=0.01)
x = torch.rand(64, steps, inp); y = torch.randint(0, 10, (64,))
def step():
    out, _ = lstm(x); loss = torch.nn.functional.cross_entropy(head(out[:, -1]), y)
    opt.zero_grad(); loss.backward(); opt.step()
for flush in (False, True, False, True):
    torch.set_flush_denormal(flush)
    step()
    t = time.perf_counter(); n = 3 if steps > 100 else 40
    for _ in range(n): step()
    dt = (time.perf_counter() - t) / n
    print(f"torch {torch.__version__} steps={steps} flush={flush}: {64/dt:.1f} samples/s")
