"""Exports a trained recogniser to ONNX (opset 17) and checks the export:
ONNX Runtime (through the Go tool train/onnxrun, the same library and
binding anprd uses) must give PyTorch's probabilities on a batch.

The model carries what camera/ocr needs to use it in its metadata: the
character set, the input size and padding, the decoding (ctc or slots).
"""

import hashlib
import json
import os
import struct
import subprocess
import tempfile

import numpy as np
import onnx
import torch
import torch.nn as nn

from . import data, layouts
from . import model as M


class Probs(nn.Module):
    def __init__(self, net):
        super().__init__()
        self.net = net

    def forward(self, x):
        return self.net(x).softmax(-1)


def export(net, kind, path, meta=None):
    net.eval()
    x = torch.zeros(1, 3, data.IN_H, data.IN_W)
    torch.onnx.export(Probs(net), x, path, input_names=["image"], output_names=["probs"],
                      dynamic_axes={"image": {0: "batch"}, "probs": {0: "batch"}}, opset_version=17,
                      do_constant_folding=True)
    m = onnx.load(path)
    props = {"anprd.charset": layouts.CHARSET, "anprd.decode": kind, "anprd.input_height": str(data.IN_H),
             "anprd.input_width": str(data.IN_W), "anprd.pad_value": str(data.PAD),
             "anprd.normalize": "x/127.5-1, BGR", "anprd.blank": "0"}
    props.update(meta or {})
    for k, v in props.items():
        e = m.metadata_props.add()
        e.key, e.value = k, v
    m.producer_name = "anprd train/anprtrain"
    onnx.checker.check_model(m)
    onnx.save(m, path)


def write_f32(path, a):
    a = np.ascontiguousarray(a, np.float32)
    with open(path, "wb") as f:
        f.write(struct.pack("<I", a.ndim))
        f.write(struct.pack(f"<{a.ndim}q", *a.shape))
        f.write(a.tobytes())


def read_f32(path):
    with open(path, "rb") as f:
        nd = struct.unpack("<I", f.read(4))[0]
        shape = struct.unpack(f"<{nd}q", f.read(8 * nd))
        return np.frombuffer(f.read(), np.float32).reshape(shape)


def check(net, path, batch_u8, onnxrun, lib):
    """Runs the exported model on a batch with ONNX Runtime and returns the
    largest difference from PyTorch's probabilities."""
    net.eval()
    x = M.to_input(batch_u8)
    with torch.no_grad():
        want = net(x).softmax(-1).numpy()
    with tempfile.TemporaryDirectory() as tmp:
        i, o = os.path.join(tmp, "in"), os.path.join(tmp, "out")
        write_f32(i, x.numpy())
        subprocess.run([onnxrun, "-onnxruntime", lib, "-model", path, "-in", i, "-out", o], check=True)
        got = read_f32(o)
    if got.shape != want.shape:
        raise RuntimeError(f"export: ONNX Runtime gave {got.shape}, PyTorch {want.shape}")
    return float(np.abs(got - want).max())


def sha256(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def summary(path):
    m = onnx.load(path)
    return {"opset": m.opset_import[0].version, "bytes": os.path.getsize(path), "sha256": sha256(path),
            "metadata": {p.key: p.value for p in m.metadata_props}}


if __name__ == "__main__":
    import sys
    print(json.dumps(summary(sys.argv[1]), indent=1))
