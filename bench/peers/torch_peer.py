"""PyTorch on the CPU as a benchmark peer of bnlab.

Reads the cases that bench/compare/side_by_side.ts wrote (each row's inputs in PyTorch's
layouts, and bnlab's outputs), runs every row once and checks its outputs against
bnlab's, then times it. Prints one JSON object on stdout ({"torch", "threads", "rows"},
each row as bench/compare/results.ts's `Measured`); progress goes to stderr.

    /usr/bin/python3 bench/peers/torch_peer.py <dir>    # dir holds deno.json and cases/

`deno task bench:compare` starts it after the Deno side. PyTorch keeps its default number
of threads (it is what a user gets; on the 2-core machines here the default is 1).
"""

import json
import os
import statistics
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

EPS = 1e-5
MOMENTUM = 0.1
MIN_SAMPLE_S = 0.02  # a timed sample repeats the op until it lasts this long
MIN_SAMPLES, MAX_SAMPLES = 3, 10
SCALE_FLOOR = 1e-3  # as bench/compare/contender.ts


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def batchnorm(t, backward):
    """Training-mode batch norm; running statistics updated in place, as bnlab's."""
    x, dout = t["x"].requires_grad_(backward), t["dout"]
    w, b = t["weight"].requires_grad_(backward), t["bias"].requires_grad_(backward)
    c = x.shape[1]
    rm, rv = torch.zeros(c), torch.ones(c)

    def op():
        return F.batch_norm(x, rm, rv, w, b, training=True, momentum=MOMENTUM, eps=EPS)

    if not backward:
        def run():
            with torch.no_grad():
                return {"out": op(), "running_mean": rm, "running_var": rv}
        return run
    return grads_of(op, (x, w, b), dout)


def layernorm(t, backward):
    x, dout = t["x"].requires_grad_(backward), t["dout"]
    w, b = t["weight"].requires_grad_(backward), t["bias"].requires_grad_(backward)

    def op():
        return F.layer_norm(x, w.shape, w, b, eps=EPS)

    if not backward:
        def run():
            with torch.no_grad():
                return {"out": op()}
        return run
    return grads_of(op, (x, w, b), dout)


def conv2d(t):
    x, w, b = (t[k].requires_grad_(True) for k in ("x", "weight", "bias"))
    return grads_of(lambda: F.conv2d(x, w, b), (x, w, b), t["dout"])


def grads_of(op, leaves, dout):
    """out, and dinp/dweight/dbias as fresh tensors (nothing accumulates across runs)."""
    def run():
        out = op()
        dinp, dweight, dbias = torch.autograd.grad(out, leaves, dout)
        return {"out": out, "dinp": dinp, "dweight": dweight, "dbias": dbias}
    return run


def lenet(spec):
    """The network of a bench/peers/lenet_spec.ts spec, with PyTorch's own modules."""
    layers, flat = [], False
    for l in spec:
        k = l["kind"]
        if k == "conv":
            layers.append(nn.Conv2d(l["inChannels"], l["outChannels"], l["kernel"],
                                    padding=l["padding"]))
        elif k == "batchnorm":  # BatchNorm2d on feature maps, BatchNorm1d after the flatten
            layers.append((nn.BatchNorm1d if flat else nn.BatchNorm2d)(l["features"]))
        elif k == "sigmoid":
            layers.append(nn.Sigmoid())
        elif k == "maxpool":
            layers.append(nn.MaxPool2d(l["kernel"], stride=l["kernel"]))
        elif k == "flatten":
            layers.append(nn.Flatten())
            flat = True
        elif k == "linear":
            layers.append(nn.Linear(l["inFeatures"], l["outFeatures"]))
        else:
            raise ValueError(f"unknown layer kind {k!r} in the LeNet spec")
    return nn.Sequential(*layers)


def lenet_step(t, spec, lr):
    """One SGD step: zero grads, forward in training mode, cross-entropy, backward, update."""
    net = lenet(spec)
    state = {k[len("state "):]: v for k, v in t.items() if k.startswith("state ")}
    missing, unexpected = net.load_state_dict(state, strict=False)
    missing = [k for k in missing if not k.endswith("num_batches_tracked")]
    if missing or unexpected:
        raise ValueError(f"state dict mismatch: missing {missing}, unexpected {unexpected}")
    opt = torch.optim.SGD(net.parameters(), lr=lr)
    loss_fn = nn.CrossEntropyLoss()
    x, y = t["x"], t["labels"].long()
    before = {k: v.clone() for k, v in state.items()}
    first = [True]

    def run():
        opt.zero_grad()
        loss = loss_fn(net(x), y)
        loss.backward()
        opt.step()
        if not first[0]:
            return None
        first[0] = False
        now = net.state_dict()
        out = {"loss": loss.detach().reshape(1)}
        out.update({f"update {k}": now[k] - before[k] for k in before})
        return out
    return run


def make(case, t):
    kind, args = case["kind"], case["args"]
    if kind == "batchnorm":
        return batchnorm(t, args["backward"])
    if kind == "layernorm":
        return layernorm(t, args["backward"])
    if kind == "conv2d":
        return conv2d(t)
    if kind == "lenet_step":
        return lenet_step(t, args["spec"], args["lr"])
    raise ValueError(f"unknown row kind {kind!r}")


def worst_mismatch(got, want):
    """As bench/compare/contender.ts's worstMismatch: the worst error relative to each
    output's scale, the scale floored at SCALE_FLOOR of the row's largest magnitude."""
    floor = SCALE_FLOOR * max(float(np.abs(w).max()) for w in want.values())
    worst = (0.0, "")
    for key, w in want.items():
        if key not in got:
            return float("inf"), f"{key} missing"
        g = got[key].detach().reshape(-1).double().numpy()
        w = w.astype(np.float64)
        if g.shape != w.shape:
            return float("inf"), f"{key} has {g.size} values, expected {w.size}"
        err = np.abs(g - w) / (max(float(np.abs(w).max()), floor) or 1.0)
        if np.isnan(err).any():
            return float("nan"), f"{key} has NaN"
        i = int(err.argmax())
        if err[i] > worst[0]:
            worst = (float(err[i]),
                     f"{key} off by {err[i]:.1e} of its scale (at {i}: {g[i]:.5g} vs {w[i]:.5g})")
    return worst


def time_op(run, budget_s):
    """Median seconds per op over samples of `reps` ops each, after two warm-up calls."""
    for _ in range(2):
        run()
    t = time.perf_counter()
    run()
    one = max(time.perf_counter() - t, 1e-6)
    reps = max(1, int(MIN_SAMPLE_S / one))
    n = max(MIN_SAMPLES, min(MAX_SAMPLES, int(budget_s / (one * reps))))
    samples = []
    for _ in range(n):
        t = time.perf_counter()
        for _ in range(reps):
            run()
        samples.append((time.perf_counter() - t) / reps)
    return statistics.median(samples), n * reps


def main(root):
    with open(os.path.join(root, "deno.json")) as f:
        cases = json.load(f)["cases"]
    torch.manual_seed(0)
    results = {}
    for i, case in enumerate(cases):
        name = case["name"]
        log(f"[{i + 1}/{len(cases)}] pytorch {name}")
        load = lambda spec: np.fromfile(os.path.join(root, "cases", spec["file"]), dtype="<f4")
        t = {k: torch.from_numpy(load(v).reshape(v["shape"]).copy()) for k, v in case["inputs"].items()}
        want = {k: load(v) for k, v in case["expect"].items()}
        result = {"status": "ok", "ms": None, "ops": 0, "waitsPerOp": 0, "note": ""}
        try:
            run = make(case, t)
            error, where = worst_mismatch(run(), want)
        except Exception as e:  # a row PyTorch cannot run is reported, not skipped
            result.update(status="unable", note=f"{type(e).__name__}: {e}".splitlines()[0])
            log(f"  unable: {result['note']}")
            results[name] = result
            continue
        if error <= case["tolerance"]:
            result["note"] = f"max error {error:.1e} of scale vs bnlab"
        else:
            result.update(status="invalid", note=f"differs from bnlab: {where}")
        log(f"  {'ok' if result['status'] == 'ok' else 'INVALID'}, {result['note']}")
        seconds, ops = time_op(run, case["budgetMs"] / 1000)
        result.update(ms=seconds * 1000, ops=ops)
        log(f"  {seconds * 1000:.3f} ms per op ({ops} ops)")
        results[name] = result
    json.dump({"torch": torch.__version__, "threads": torch.get_num_threads(), "rows": results},
              sys.stdout)


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(sys.argv[1])
