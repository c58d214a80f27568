"""Independent PyTorch check: does a tiny byte-level Llama learn to copy from its context?

Run with Debian's interpreter (`apt-get install python3-torch`):
    /usr/bin/python3 scripts/reference/copy_learning_torch.py --task recall --steps 1000
    /usr/bin/python3 scripts/reference/copy_learning_torch.py --task fixed --steps 300

The model is the one `upit pretrain --dim 128 --layers 2 --heads 4 --ffn 344` trains (RMSNorm,
rotate_half RoPE, SwiGLU, untied head, init N(0, 0.02), AdamW with decay on matrices, cosine
schedule with 3% warm-up, clip 1.0), written from the equations, not from the project's code.
Tasks, as byte sequences packed into windows of 64 with a 0 between documents:
  recall  the corpus's recall documents: 1-3 random strings of 4-12 letters and digits, then
          " Again: " and the same run -- the copy distance varies, so only matching content
          (an induction head) predicts the second half;
  fixed   12 random letters, "|", the same 12 letters -- the copy is always 13 bytes back, so a
          purely positional head predicts it.
It prints the training loss every 100 steps and the next-byte distribution after
"k3vqz8 tolm2xwe. Again: k3vqz8 tol" (recall) or "qwertyuiopas|qwert" (fixed): a model that
copies puts most of its mass on "m" / "y".
"""
import argparse
import math
import random
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

ap = argparse.ArgumentParser()
ap.add_argument("--task", choices=["recall", "fixed"], default="recall")
ap.add_argument("--steps", type=int, default=1000)
ap.add_argument("--lr", type=float, default=3e-3)
ap.add_argument("--layers", type=int, default=2)
args = ap.parse_args()
torch.manual_seed(1)
torch.set_num_threads(1)
rng = random.Random(1)

CHARS = "abcdefghijklmnopqrstuvwxyz0123456789"


def document():
    if args.task == "fixed":
        w = "".join(rng.choice(CHARS[:26]) for _ in range(12))
        return f"{w}|{w}."
    run = " ".join("".join(rng.choice(CHARS) for _ in range(rng.randint(4, 12))) for _ in range(rng.randint(1, 3)))
    return f"{run}. Again: {run}."


T, B, D, H, FF = 64, 16, 128, 4, 344
stream = []
while len(stream) < 2_000_000:
    stream += list(document().encode()) + [0]
data = torch.tensor(stream[: (len(stream) // (T + 1)) * (T + 1)]).view(-1, T + 1)
hd = D // H
inv = 1.0 / (10000 ** (torch.arange(0, hd, 2).float() / hd))
angles = torch.arange(T).float()[:, None] * inv[None]
COS, SIN = torch.cat([angles.cos()] * 2, -1), torch.cat([angles.sin()] * 2, -1)


def rotate_half(x):
    a, b = x.chunk(2, -1)
    return torch.cat([-b, a], -1)


class RMSNorm(nn.Module):
    def __init__(self):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(D))

    def forward(self, x):
        return self.weight * x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-6)


def linear(i, o):
    m = nn.Linear(i, o, bias=False)
    nn.init.normal_(m.weight, std=0.02)
    return m


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.n1, self.n2 = RMSNorm(), RMSNorm()
        self.q, self.k, self.v, self.o = (linear(D, D) for _ in range(4))
        self.gate, self.up, self.down = linear(D, FF), linear(D, FF), linear(FF, D)

    def forward(self, x):
        b, t, _ = x.shape
        h = self.n1(x)
        q, k, v = (m(h).view(b, t, H, hd).transpose(1, 2) for m in (self.q, self.k, self.v))
        c, s = COS[:t], SIN[:t]
        q, k = q * c + rotate_half(q) * s, k * c + rotate_half(k) * s
        scores = (q @ k.transpose(-1, -2)) / math.sqrt(hd)
        scores = scores.masked_fill(torch.ones(t, t, dtype=torch.bool).triu(1), float("-inf"))
        x = x + self.o((scores.softmax(-1) @ v).transpose(1, 2).reshape(b, t, D))
        h = self.n2(x)
        return x + self.down(F.silu(self.gate(h)) * self.up(h))


class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.embed = nn.Embedding(256, D)
        nn.init.normal_(self.embed.weight, std=0.02)
        self.blocks = nn.ModuleList(Block() for _ in range(args.layers))
        self.norm, self.head = RMSNorm(), linear(D, 256)

    def forward(self, x):
        x = self.embed(x)
        for blk in self.blocks:
            x = blk(x)
        return self.head(self.norm(x))


model = Model()
matrices = [p for p in model.parameters() if p.dim() >= 2]
vectors = [p for p in model.parameters() if p.dim() < 2]
opt = torch.optim.AdamW([{"params": matrices, "weight_decay": 0.1}, {"params": vectors, "weight_decay": 0.0}], lr=args.lr)
warm = max(1, int(0.03 * args.steps))
g = torch.Generator().manual_seed(1)
t0 = time.time()
for step in range(args.steps):
    f = (step + 1) / warm if step < warm else 0.5 * (1 + math.cos(math.pi * (step - warm) / max(1, args.steps - warm)))
    for group in opt.param_groups:
        group["lr"] = args.lr * f
    x = data[torch.randint(0, data.shape[0], (B,), generator=g)]
    loss = F.cross_entropy(model(x[:, :-1]).reshape(-1, 256), x[:, 1:].reshape(-1))
    opt.zero_grad()
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    opt.step()
    if (step + 1) % 100 == 0:
        print(f"step {step + 1} loss {loss.item():.3f} ({time.time() - t0:.0f} s)", flush=True)
probe = b"qwertyuiopas|qwert" if args.task == "fixed" else b"k3vqz8 tolm2xwe. Again: k3vqz8 tol"
with torch.no_grad():
    p = model(torch.tensor([list(probe)])).softmax(-1)[0, -1]
top = p.topk(5)
print("next after", probe.decode(), [(chr(i), round(v, 3)) for v, i in zip(top.values.tolist(), top.indices.tolist())])
