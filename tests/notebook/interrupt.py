#!/usr/bin/python3
"""Interrupts a running `fit` in the Deno Jupyter kernel, as Kernel > Interrupt does.

Run by tests/notebooks.sh (Debian's /usr/bin/python3 with jupyter-client).
Starts the kernel spec named by BNLAB_KERNEL (default "deno"), which must say
"interrupt_mode": "message" (`deno task jupyter:install` writes it); runs a cell that
trains LeNet on random data for far longer than the test lasts, interrupts it after a few
steps, and checks: the interrupted cell answers within 10 s with a FitInterruptedError, the
kernel survives, and the next cell's bnlab ops work (a tensor made before reads back, a new op
computes, the interrupted model runs forward and trains on). Prints one
JSON line with what it saw; exits 1 with the reason on failure.
"""
import json
import os
import sys
import time

from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import KernelManager

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
NAME = os.environ.get("BNLAB_KERNEL", "deno")


def fail(msg):
    print(f"interrupt.py: {msg}", file=sys.stderr)
    sys.exit(1)


spec = KernelSpecManager().get_kernel_spec(NAME)
if spec.interrupt_mode != "message":
    fail(
        f'the kernel spec "{NAME}" ({spec.resource_dir}) has interrupt_mode '
        f'"{spec.interrupt_mode}", so an interrupt sends SIGINT and ends the kernel; '
        "install it with `deno task jupyter:install`"
    )

km = KernelManager(kernel_name=NAME)
km.start_kernel(cwd=ROOT)
kc = km.client()
kc.start_channels()


def run(code, timeout):
    """Executes `code`; returns (reply content, seconds, outputs)."""
    msg_id = kc.execute(code)
    t0 = time.monotonic()
    reply = kc.get_shell_msg(timeout=timeout)
    while reply["parent_header"].get("msg_id") != msg_id:
        reply = kc.get_shell_msg(timeout=timeout)
    seconds = time.monotonic() - t0
    outputs = []
    # Deno's kernel can report the cell idle before its last stream message (a live front end
    # shows it anyway): after idle, keep what still comes for the cell until 1 s passes quiet.
    idle = False
    while True:
        try:
            m = kc.get_iopub_msg(timeout=1 if idle else 2)
        except Exception:
            break
        if m["parent_header"].get("msg_id") != msg_id:
            continue
        if m["msg_type"] == "status" and m["content"]["execution_state"] == "idle":
            idle = True
        elif m["msg_type"] in ("stream", "error", "execute_result"):
            outputs.append(m["content"])
    return reply["content"], seconds, outputs


try:
    kc.wait_for_ready(timeout=60)
    setup = """
import { lenet, Tensor } from "./mod.ts";
import { fit } from "./train.ts";
const before = Tensor.from([1, 2, 3, 4]);
const x = Tensor.rand([64, 1, 28, 28], { seed: 1 });
const y = Tensor.from(Array.from({ length: 64 }, (_, i) => i % 10));
const loader = { length: 1000, batches: function* () { for (let i = 0; i < 1000; i++) yield { x, y }; } };
const net = lenet();
let steps = 0;
"""
    r, s, out = run(setup, 120)
    if r["status"] != "ok":
        fail(f"the setup cell failed: {r} {out}")
    # The training cell runs for minutes unless stopped; it counts its steps.
    msg_id = kc.execute(
        "await fit(net, loader, loader, { epochs: 100, lr: 0.1, updatesPerEpoch: 50, "
        "onStep: () => { steps++; } });"
    )
    time.sleep(8)  # a few steps in (the first compiles the kernels)
    t0 = time.monotonic()
    km.interrupt_kernel()
    reply = kc.get_shell_msg(timeout=60)
    while reply["parent_header"].get("msg_id") != msg_id:
        reply = kc.get_shell_msg(timeout=60)
    answered = time.monotonic() - t0
    if not km.is_alive():
        fail("the kernel died on the interrupt")
    r, s, out = run(
        'const after = await before.add(Tensor.from([10])).toArray(); '
        'const back = await before.toArray(); '
        'const w = await net.forward(x).sum().item(); '
        'const small = { length: 2, batches: () => [{ x, y }, { x, y }] }; '
        'const h = await fit(net, small, small, { epochs: 1, lr: 0.1 }); '
        'const trained = h.epochs.length === 1 && Number.isFinite(h.epochs[0].loss); '
        'console.log(JSON.stringify({ steps, after: [...after], back: [...back], '
        'finite: Number.isFinite(w), trained }));',
        60,
    )
    if r["status"] != "ok":
        fail(f"the cell after the interrupt failed: {r.get('ename')}: {r.get('evalue')} {out}")
    text = "".join(o.get("text", "") for o in out if o.get("name") == "stdout")
    lines = [l for l in text.splitlines() if l.startswith("{")]
    result = json.loads(lines[-1]) if lines else None
    if result is None:
        fail(f"the cell after the interrupt gave no result: {out}")
    warned = "".join(o.get("text", "") for o in out if o.get("name") == "stderr").strip()
    print(json.dumps({"interrupted": reply["content"]["status"], "answered_s": round(answered, 2), **result, "stderr": warned}))
    if answered > 10:
        fail(f"the interrupted cell answered after {answered:.1f} s (more than 10)")
    ename = reply["content"].get("ename")
    if reply["content"]["status"] != "error" or ename != "FitInterruptedError":
        fail(f"the interrupted cell should fail with FitInterruptedError, got {reply['content']}")
    if (result["after"] != [11, 12, 13, 14] or result["back"] != [1, 2, 3, 4]
            or not result["finite"] or not result["trained"]):
        fail(f"bnlab ops after the interrupt gave wrong results: {result}")
    if result["steps"] < 1:
        fail("the fit cell ran no step before the interrupt: the test proves nothing")

    # A training loop of the user's own (no fit, so no watch: Deno answers when V8 collects
    # the dead cell, which takes longer), interrupted inside tidy() and backward() most of
    # the time: the next cell's first read puts tidy's scopes and gradient recording back.
    r, s, out = run("import { nn, tidy } from './mod.ts'; const ce = new nn.CrossEntropyLoss(); let loops = 0;", 60)
    if r["status"] != "ok":
        fail(f"the second setup cell failed: {r} {out}")
    msg_id = kc.execute(
        "for (;;) { tidy(() => { net.zeroGrad(); ce.forward(net.forward(x), y).backward(); }); "
        "if (++loops % 8 === 0) await net.forward(x).sum().item(); }"
    )
    time.sleep(5)
    km.interrupt_kernel()
    reply = kc.get_shell_msg(timeout=120)
    while reply["parent_header"].get("msg_id") != msg_id:
        reply = kc.get_shell_msg(timeout=120)
    r, s, out = run(
        "await before.toArray(); "
        "const v = Tensor.from([3], { requiresGrad: true }); v.square().sum().backward(); "
        "console.log(JSON.stringify({ loops, grad: await v.grad.item() }));",
        60,
    )
    if r["status"] != "ok":
        fail(f"the cell after the second interrupt failed: {r.get('ename')}: {r.get('evalue')} {out}")
    text = "".join(o.get("text", "") for o in out if o.get("name") == "stdout")
    lines = [l for l in text.splitlines() if l.startswith("{")]
    second = json.loads(lines[-1]) if lines else None
    print(json.dumps({"own_loop": second}))
    if not second or second["grad"] != 6 or second["loops"] < 1:
        fail(f"gradients after an interrupted loop of the user's own: {second} {out}")
finally:
    kc.stop_channels()
    km.shutdown_kernel(now=True)
