"""PyTorch reference timing for ganfleet's seed model (packages/shared/src/model/seed.ts).

Times the same two steps a ganfleet worker computes, with the same shapes:
  D step: G(z) in training mode without gradient, one D pass over [real; fake], gradients of
          softplus(-D(real)).mean() + softplus(D(fake)).mean() w.r.t. D's parameters;
  G step: gradients of softplus(-D(G(z))).mean() w.r.t. G's parameters (D not updated).
Each is timed as compute only (until the device is idle) and with the gradients copied to host
memory, which a ganfleet step includes (it reads them back to send them). CUDA when available,
else the CPU with 2 threads. Conv layers run on cuDNN with its default TF32 setting ("default")
and again in strict float32 ("fp32"), the precision tfjs uses.

Usage: python3 bench/reference/seed_model.py [--out DIR] [--batches 64,256,1024] [--reps 20] [--step-s 10]
Writes DIR/pytorch.json ($OUT when set, else the current directory) and prints it.
"""

import argparse
import json
import os
import statistics
import time

import torch
import torch.nn.functional as F
from torch import nn


class Generator(nn.Module):
    def __init__(self):
        super().__init__()
        self.dense1 = nn.Linear(100, 1024)
        self.bn1 = nn.BatchNorm1d(1024, eps=1e-5)
        self.dense2 = nn.Linear(1024, 7 * 7 * 64)
        self.bn2 = nn.BatchNorm1d(7 * 7 * 64, eps=1e-5)
        # 'same' padding with stride 2: output = 2 * input.
        self.deconv1 = nn.ConvTranspose2d(64, 32, 5, stride=2, padding=2, output_padding=1)
        self.bn3 = nn.BatchNorm2d(32, eps=1e-5)
        self.deconv2 = nn.ConvTranspose2d(32, 16, 5, stride=2, padding=2, output_padding=1)
        self.bn4 = nn.BatchNorm2d(16, eps=1e-5)
        self.conv_out = nn.Conv2d(16, 1, 1)

    def forward(self, z):
        h = F.relu(self.bn1(self.dense1(z)))
        h = F.relu(self.bn2(self.dense2(h)))
        h = h.view(-1, 64, 7, 7)
        h = F.relu(self.bn3(self.deconv1(h)))
        h = F.relu(self.bn4(self.deconv2(h)))
        return torch.tanh(self.conv_out(h))


class Discriminator(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 32, 5, padding=2)
        self.conv2 = nn.Conv2d(32, 64, 5, padding=2)
        self.dense1 = nn.Linear(7 * 7 * 64, 1024)
        self.dense2 = nn.Linear(1024, 1)

    def forward(self, x):
        h = F.avg_pool2d(F.relu(self.conv1(x)), 2)
        h = F.avg_pool2d(F.relu(self.conv2(h)), 2)
        h = F.relu(self.dense1(h.flatten(1)))
        return self.dense2(h)


def init(module):
    # As the seed preset: truncated normal (stddev 0.02) weights; D biases zero, G biases drawn too.
    for name, p in module.named_parameters():
        if name.startswith("bn"):
            continue
        if name.endswith("bias") and isinstance(module, Discriminator):
            nn.init.zeros_(p)
        else:
            nn.init.trunc_normal_(p, std=0.02, a=-0.04, b=0.04)


def d_step(g, d, z, real):
    with torch.no_grad():
        fake = g(z)
    logits = d(torch.cat([real, fake]))
    n = real.shape[0]
    loss = F.softplus(-logits[:n]).mean() + F.softplus(logits[n:]).mean()
    return torch.autograd.grad(loss, list(d.parameters()))


def g_step(g, d, z):
    loss = F.softplus(-d(g(z))).mean()
    return torch.autograd.grad(loss, list(g.parameters()))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=os.environ.get("OUT", "."))
    ap.add_argument("--batches", default="64,256,1024")
    ap.add_argument("--reps", type=int, default=20)
    ap.add_argument("--step-s", type=float, default=10.0, help="time bound for the repetitions of one step kind")
    args = ap.parse_args()

    cuda = torch.cuda.is_available()
    device = torch.device("cuda" if cuda else "cpu")
    if not cuda:
        torch.set_num_threads(2)
    torch.backends.cudnn.benchmark = True
    torch.manual_seed(1)
    g, d = Generator().to(device).train(), Discriminator().to(device).train()
    init(g)
    init(d)

    def sync():
        if cuda:
            torch.cuda.synchronize()

    def to_host(grads):
        return torch.cat([t.flatten() for t in grads]).cpu()

    result = {
        "torch": torch.__version__,
        "device": torch.cuda.get_device_name(0) if cuda else f"cpu ({torch.get_num_threads()} threads)",
        "cudnn": torch.backends.cudnn.version() if cuda else None,
        "model": "seed",
        "params": {"G": sum(p.numel() for p in g.parameters()), "D": sum(p.numel() for p in d.parameters())},
        "rows": [],
    }
    precisions = [("default", torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32), ("fp32", False, False)]
    for batch in [int(b) for b in args.batches.split(",")]:
        z = torch.randn(batch, 100, device=device)
        real = torch.rand(batch, 1, 28, 28, device=device) * 2 - 1
        for precision, conv_tf32, matmul_tf32 in precisions:
            torch.backends.cudnn.allow_tf32 = conv_tf32
            torch.backends.cuda.matmul.allow_tf32 = matmul_tf32
            steps = {
                "d": lambda: d_step(g, d, z, real),
                "g": lambda: g_step(g, d, z),
                "dWithDownload": lambda: to_host(d_step(g, d, z, real)),
                "gWithDownload": lambda: to_host(g_step(g, d, z)),
            }
            row = {"batch": batch, "precision": precision}
            for name, fn in steps.items():
                for _ in range(3):  # warm-up: cuDNN autotuning, allocator
                    fn()
                sync()
                times = []
                started = time.perf_counter()
                while len(times) < args.reps and (not times or time.perf_counter() - started < args.step_s):
                    t0 = time.perf_counter()
                    fn()
                    sync()
                    times.append((time.perf_counter() - t0) * 1000)
                row[f"{name}Ms"] = round(statistics.median(times), 3)
                row[f"{name}Reps"] = len(times)
            row["samplesPerSec"] = round(batch * 1000 / (row["dWithDownloadMs"] + row["gWithDownloadMs"]), 1)
            result["rows"].append(row)
            print(json.dumps(row), flush=True)
            if not cuda:
                break  # TF32 is a GPU matter

    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "pytorch.json"), "w") as f:
        json.dump(result, f, indent=2)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
