"""bench/train/steps.ts's loop in PyTorch: milliseconds per LeNet training step.

One fixed batch of uniform images with labels (7 i) mod 10; each step zeroes the grads, runs
the forward in training mode, the mean cross-entropy, the backward and an SGD update; 5
warm-up steps, then N steps timed up to one read of the last loss (`loss.item()`). The
network is built from bench/peers/lenet_spec.ts's layer list, with torch_peer.py's `lenet`
(the compare tool's), Xavier-uniform weights and zero biases as bnlab's `initXavier`.
PyTorch runs on one thread.

    <models JSON> | /usr/bin/python3 bench/peers/torch_steps.py [--batch 2,8,32,256]
        [--steps N] [--models batch,none]

The models come on stdin, as bench/train/train_bench.ts writes them:
{"batch": {"spec": [...], "lr": 1.0}, "none": {"spec": [...], "lr": 0.9}}. Prints one JSON
line per batch size and model, as steps.ts: {"model": "batch", "batch": 2, "msPerStep": 0.9,
"torch": "1.13.0", "threads": 1}.
"""

import argparse
import json
import sys
import time

import torch
import torch.nn as nn

from torch_peer import lenet

WARMUP = 5  # as steps.ts


def steps_for(batch):
    """As steps.ts's stepsFor: 200 steps, 50 from batch 32 on."""
    return 50 if batch >= 32 else 200


def ms_per_step(spec, lr, batch, steps):
    torch.manual_seed(0)
    net = lenet(spec)
    for m in net.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            nn.init.xavier_uniform_(m.weight)
            nn.init.zeros_(m.bias)
    net.train()
    opt = torch.optim.SGD(net.parameters(), lr=lr)
    loss_fn = nn.CrossEntropyLoss()
    x = torch.rand(batch, 1, 28, 28)
    y = torch.tensor([(i * 7) % 10 for i in range(batch)])

    def step():
        opt.zero_grad()
        loss = loss_fn(net(x), y)
        loss.backward()
        opt.step()
        return loss

    for _ in range(WARMUP):
        step()
    t0 = time.perf_counter()
    for _ in range(steps):
        loss = step()
    loss.item()
    return (time.perf_counter() - t0) * 1000 / steps


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batch", default="256")
    parser.add_argument("--steps", type=int)
    parser.add_argument("--models", default="batch,none")
    args = parser.parse_args()
    models = json.load(sys.stdin)
    torch.set_num_threads(1)
    torch.set_num_interop_threads(1)
    for batch in [int(b) for b in args.batch.split(",")]:
        for model in args.models.split(","):
            m = models[model]
            ms = ms_per_step(m["spec"], m["lr"], batch, args.steps or steps_for(batch))
            print(json.dumps({"model": model, "batch": batch, "msPerStep": ms,
                              "torch": torch.__version__, "threads": torch.get_num_threads()}),
                  flush=True)


if __name__ == "__main__":
    main()
