"""The recognisers: a small convolutional backbone with one of two heads.

- CTC (a CRNN without the recurrence): the backbone's columns become a
  sequence of 32 steps, 1-D convolutions give each its context, and each
  step gives a class (blank, 0-9, A-Z); CTC decoding merges repeats and
  drops blanks. Any number of
  characters up to the steps, with each character's place along the line.
- slots (as fast-plate-ocr does): the backbone's map is flattened and a
  dense layer gives a fixed number of character slots, each a class or
  the padding class.

Both take a BGR crop of IN_H x IN_W, scaled to [-1, 1] (anprtrain.data.prep,
camera/ocr in Go), and give probabilities. train.compare measures the two
on the same data and time; the README says which we ship and why.
"""

import torch
import torch.nn as nn

from . import data, layouts

NUM_CLASSES = len(layouts.CHARSET) + 1  # CTC blank (or the slot padding) is class 0
SLOTS = 10


def conv(cin, cout, k=3, stride=1, groups=1):
    pad = k // 2 if isinstance(k, int) else (k[0] // 2, k[1] // 2)
    return nn.Sequential(nn.Conv2d(cin, cout, k, stride, pad, groups=groups, bias=False),
                         nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


def separable(cin, cout):
    return nn.Sequential(conv(cin, cin, 3, groups=cin), conv(cin, cout, 1))


# The backbone's channels. Measured with ONNX Runtime on one thread (the
# train/README.md table): this set reads a 32 x 128 crop in about 2 ms; one
# with a third more channels in about 3.5 ms.
CHANNELS = (24, 48, 96, 160, 224)


class Backbone(nn.Module):
    """3 x 32 x 128 -> C x 2 x 32: two full convolutions at high resolution,
    then depthwise-separable ones, pooling height faster than width so that
    each of the 32 columns keeps a character's width or less."""

    def __init__(self, channels=CHANNELS):
        super().__init__()
        c = channels
        self.c_out = c[4]
        self.net = nn.Sequential(
            conv(3, c[0]),                    # 32 x 128
            nn.MaxPool2d(2),                  # 16 x 64
            conv(c[0], c[1]),
            nn.MaxPool2d(2),                  # 8 x 32
            separable(c[1], c[2]),
            separable(c[2], c[2]),
            nn.MaxPool2d((2, 1)),             # 4 x 32
            separable(c[2], c[3]),
            separable(c[3], c[3]),
            nn.MaxPool2d((2, 1)),             # 2 x 32
            separable(c[3], c[4]),
        )

    def forward(self, x):
        return self.net(x)


class CTCRecogniser(nn.Module):
    """The backbone's 32 columns, given context along the line by two
    depthwise-separable 1-D convolutions (each column then sees about
    three characters either side), each a class. A bidirectional LSTM in
    their place trained 2.6 times slower per step on this CPU and ran 0.7
    ms slower per crop in ONNX Runtime (train/README.md)."""

    def __init__(self, width=256):
        super().__init__()
        self.backbone = Backbone()
        c = self.backbone.c_out
        self.context = nn.Sequential(
            nn.Conv1d(c, c, 5, padding=2, groups=c, bias=False), nn.BatchNorm1d(c), nn.ReLU(inplace=True),
            nn.Conv1d(c, width, 1, bias=False), nn.BatchNorm1d(width), nn.ReLU(inplace=True),
            nn.Conv1d(width, width, 5, padding=2, groups=width, bias=False), nn.BatchNorm1d(width), nn.ReLU(inplace=True),
            nn.Conv1d(width, width, 1, bias=False), nn.BatchNorm1d(width), nn.ReLU(inplace=True),
        )
        self.fc = nn.Conv1d(width, NUM_CLASSES, 1)

    def forward(self, x):
        f = self.backbone(x).mean(2)             # B C T
        return self.fc(self.context(f)).permute(0, 2, 1)  # B T K, logits

    def probs(self, x):
        return self.forward(x).softmax(-1)


class SlotRecogniser(nn.Module):
    def __init__(self):
        super().__init__()
        self.backbone = Backbone()
        c = self.backbone.c_out
        self.pool = nn.AdaptiveAvgPool2d((1, 16))
        self.fc = nn.Sequential(nn.Flatten(), nn.Dropout(0.1), nn.Linear(c * 16, 384), nn.ReLU(inplace=True),
                                nn.Linear(384, SLOTS * NUM_CLASSES))

    def forward(self, x):
        f = self.pool(self.backbone(x))
        return self.fc(f).view(-1, SLOTS, NUM_CLASSES)

    def probs(self, x):
        return self.forward(x).softmax(-1)


def build(kind):
    if kind == "ctc":
        return CTCRecogniser()
    if kind == "slots":
        return SlotRecogniser()
    raise ValueError(f"model kind {kind!r}: want ctc or slots")


def params(m):
    return sum(p.numel() for p in m.parameters())


def macs(m):
    """Multiply-accumulates of one crop through the convolutions and dense
    layers (batch norm, ReLU and pooling are left out: they are a few percent)."""
    total = 0

    def hook(mod, inp, out):
        nonlocal total
        if isinstance(mod, (nn.Conv1d, nn.Conv2d)):
            total += out.numel() * (mod.in_channels // mod.groups) * int(torch.tensor(mod.kernel_size).prod())
        elif isinstance(mod, nn.Linear):
            total += mod.in_features * mod.out_features

    hs = [x.register_forward_hook(hook) for x in m.modules() if isinstance(x, (nn.Conv1d, nn.Conv2d, nn.Linear))]
    was = m.training
    m.eval()
    with torch.no_grad():
        m(torch.zeros(1, 3, data.IN_H, data.IN_W))
    m.train(was)
    for h in hs:
        h.remove()
    return total


def to_input(batch_u8):
    """uint8 N x H x W x 3 (numpy or tensor) -> float N x 3 x H x W in [-1, 1]."""
    t = torch.as_tensor(batch_u8)
    return t.permute(0, 3, 1, 2).float().div_(127.5).sub_(1.0)


def decode_ctc(probs):
    """Greedy CTC decoding of N x T x K probabilities: the texts."""
    best = probs.argmax(-1).cpu().numpy()
    out = []
    for row in best:
        s, prev = [], 0
        for k in row:
            if k != prev and k != 0:
                s.append(layouts.CHARSET[k - 1])
            prev = k
        out.append("".join(s))
    return out


def decode_slots(probs):
    best = probs.argmax(-1).cpu().numpy()
    return ["".join(layouts.CHARSET[k - 1] for k in row if k != 0) for row in best]


_ = data  # the input size lives in data (IN_H, IN_W)
