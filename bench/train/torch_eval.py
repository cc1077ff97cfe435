"""Loads a bnlab checkpoint into PyTorch and evaluates it on Fashion-MNIST's test set.

Run: /usr/bin/python3 bench/train/torch_eval.py runs/<run>/model.safetensors [data dir]

The checkpoint of `deno task train` (LeNet+BN, the defaults) is read by hand (8-byte header
length, JSON header, raw F32 / I64 tensors: the `safetensors` package may be absent), loaded
with strict names into the PyTorch LeNet of tests/fixtures/lenet.py, and run in eval mode on
the 10,000 test images (default: Debian's dataset-fashion-mnist). Prints the test accuracy,
to compare with the last line of the run's metrics.
"""
import gzip
import json
import pathlib
import struct
import sys
import numpy as np
import torch
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2] / "tests" / "fixtures"))
from lenet import lenet

path = sys.argv[1]
raw = open(path, "rb").read()
n = struct.unpack("<Q", raw[:8])[0]
header = json.loads(raw[8:8 + n])
body = raw[8 + n:]
sd = {}
for k, v in header.items():
    if k == "__metadata__":
        continue
    a, b = v["data_offsets"]
    dt = {"F32": np.float32, "I64": np.int64}[v["dtype"]]
    sd[k] = torch.from_numpy(np.frombuffer(body[a:b], dtype=dt).reshape(v["shape"]).copy())
net = lenet("batch")
net.load_state_dict(sd, strict=True)
net.eval()
d = (sys.argv[2] if len(sys.argv) > 2 else "/usr/share/datasets/fashion-mnist") + "/"
x = np.frombuffer(gzip.open(d + "t10k-images-idx3-ubyte.gz").read()[16:], np.uint8).reshape(-1, 1, 28, 28)
y = np.frombuffer(gzip.open(d + "t10k-labels-idx1-ubyte.gz").read()[8:], np.uint8)
with torch.no_grad():
    pred = net(torch.from_numpy(x.astype(np.float32) / 255)).argmax(1).numpy()
print(f"PyTorch {torch.__version__}: loaded {len(sd)} tensors strictly; test accuracy {(pred == y).mean():.4f}")
