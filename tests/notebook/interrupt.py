#!/usr/bin/python3
"""Interrupts a running `fit` in the Deno Jupyter kernel, as Kernel > Interrupt does.

Run by tests/notebooks.sh (Debian's /usr/bin/python3 with jupyter-client).
Starts the kernel spec named by BNLAB_KERNEL (default "deno"), which must say
"interrupt_mode": "message" (`deno task jupyter:install` writes it); runs a cell that
trains LeNet on random data for far longer than the test lasts, interrupts it after a few
steps, and checks: the interrupted cell answers within 10 s with a FitInterruptedError, the
kernel survives, and the next cell's bnlab ops work (a tensor made before reads back, a new op
computes, the interrupted model runs forward and trains on). Then it interrupts a loop of the
user's own and checks the same. Prints a JSON line per part with what it saw; exits 1 with the
reason on failure.

Both interrupts land while JavaScript runs, as the test arranges: in Deno 2.9.6 an interrupt
that arrives while the kernel's JavaScript waits (for a GPU read, a timer, a file) kills the
first callback that runs after it, and the kernel then runs no more JavaScript: the cell never
answers (seen here in a loop that read the loss every 8 steps, and in a fit that read every 20;
the same with a bare timer or a file read and no bnlab at all). No library code can answer for
it, so the test does not time its interrupts against such waits: the fit reads once in a
100,000-step epoch, and the loop of the user's own never awaits.
"""
import json
import os
import queue
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


def reply_to(msg_id, timeout, what):
    """The kernel's execute reply to `msg_id`; fails naming `what` if none comes in `timeout` s."""
    t0 = time.monotonic()
    try:
        reply = kc.get_shell_msg(timeout=timeout)
        while reply["parent_header"].get("msg_id") != msg_id:
            reply = kc.get_shell_msg(timeout=max(0.1, timeout - (time.monotonic() - t0)))
    except queue.Empty:
        fail(
            f"no reply to {what} within {timeout} s (kernel alive: {km.is_alive()}); "
            "the kernel's own output, if any, is above"
        )
    return reply


def run(code, timeout, what):
    """Executes `code`; returns (reply content, seconds, outputs)."""
    msg_id = kc.execute(code)
    t0 = time.monotonic()
    reply = reply_to(msg_id, timeout, what)
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
const loader = { length: 100000, batches: function* () { for (;;) yield { x, y }; } };
const net = lenet();
let steps = 0;
"""
    r, s, out = run(setup, 120, "the setup cell")
    if r["status"] != "ok":
        fail(f"the setup cell failed: {r} {out}")
    # The training cell runs for minutes unless stopped; it counts its steps. One reading per
    # epoch, at step 100,000: no host wait before the interrupt (see the module doc).
    msg_id = kc.execute(
        "await fit(net, loader, loader, { epochs: 100, lr: 0.1, updatesPerEpoch: 1, "
        "onStep: () => { steps++; } });"
    )
    time.sleep(8)  # a few steps in (the first compiles the kernels)
    t0 = time.monotonic()
    km.interrupt_kernel()
    reply = reply_to(msg_id, 60, "the interrupted fit cell")
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
        "the cell after the interrupted fit",
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

    # A training loop of the user's own (no fit, so no watch), interrupted inside tidy() and
    # backward() most of the time: the next cell's first read puts tidy's scopes and gradient
    # recording back. It never awaits (see the module doc), so the interrupt ends the cell's
    # evaluation itself, and Deno answers at once; its launches are submitted every 2,048, each
    # submit waiting for the one before, so the GPU stays within two submits of it.
    r, s, out = run(
        "import { nn, tidy } from './mod.ts'; const ce = new nn.CrossEntropyLoss(); let loops = 0;",
        60,
        "the second setup cell",
    )
    if r["status"] != "ok":
        fail(f"the second setup cell failed: {r} {out}")
    msg_id = kc.execute(
        "for (;;) { tidy(() => { net.zeroGrad(); ce.forward(net.forward(x), y).backward(); }); "
        "loops++; }"
    )
    time.sleep(5)
    t0 = time.monotonic()
    km.interrupt_kernel()
    reply = reply_to(msg_id, 60, "the interrupted loop of the user's own")
    answered = time.monotonic() - t0
    r, s, out = run(
        "await before.toArray(); "
        "const v = Tensor.from([3], { requiresGrad: true }); v.square().sum().backward(); "
        "console.log(JSON.stringify({ loops, grad: await v.grad.item() }));",
        60,
        "the cell after the interrupted loop",
    )
    if r["status"] != "ok":
        fail(f"the cell after the second interrupt failed: {r.get('ename')}: {r.get('evalue')} {out}")
    text = "".join(o.get("text", "") for o in out if o.get("name") == "stdout")
    lines = [l for l in text.splitlines() if l.startswith("{")]
    second = json.loads(lines[-1]) if lines else None
    warned = "".join(o.get("text", "") for o in out if o.get("name") == "stderr").strip()
    print(json.dumps({"own_loop": second, "interrupted": reply["content"]["status"],
                      "answered_s": round(answered, 2), "stderr": warned}))
    if answered > 10:
        fail(f"the interrupted loop answered after {answered:.1f} s (more than 10)")
    if reply["content"]["status"] != "error":
        fail(f"the interrupted loop should end with an error, got {reply['content']}")
    if not second or second["grad"] != 6 or second["loops"] < 1:
        fail(f"gradients after an interrupted loop of the user's own: {second} {out}")
finally:
    kc.stop_channels()
    km.shutdown_kernel(now=True)
