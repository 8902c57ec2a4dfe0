"""Trains a recogniser on packed crops (anprtrain.data.pack), on CPU.

Seeds are fixed: the model's initial weights, the order of the batches and
the augmentation all come from `seed`, so a run is repeatable on the same
machine (and within noise elsewhere: CPU kernels may sum in another
order). Training checkpoints every few minutes and resumes from its
checkpoint, so a long run can be stopped and started again.
"""

import json
import math
import os
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from . import model as M


class Data:
    def __init__(self, path, limit=None):
        z = np.load(path)
        self.x, self.y, self.n = z["x"], z["y"].astype(np.int64), z["n"].astype(np.int64)
        if limit is not None:
            self.x, self.y, self.n = self.x[:limit], self.y[:limit], self.n[:limit]

    def __len__(self):
        return len(self.n)


def augment(xb, rng):
    """Cheap changes on top of the rendered variety: a shift of a pixel or
    two, contrast and brightness, sometimes grey."""
    b = xb.astype(np.float32)
    n = len(b)
    gain = rng.uniform(0.75, 1.25, (n, 1, 1, 1)).astype(np.float32)
    bias = rng.uniform(-25, 25, (n, 1, 1, 1)).astype(np.float32)
    b = (b - 128) * gain + 128 + bias
    grey = rng.random(n) < 0.1
    if grey.any():
        b[grey] = b[grey].mean(-1, keepdims=True)
    dx = rng.integers(-2, 3, n)
    dy = rng.integers(-1, 2, n)
    out = np.empty_like(b)
    for i in range(n):
        out[i] = np.roll(b[i], (int(dy[i]), int(dx[i])), (0, 1))
    return np.clip(out, 0, 255)


def loss_fn(kind, logits, y, n):
    if kind == "ctc":
        lp = logits.log_softmax(-1).permute(1, 0, 2)  # T B K
        T = lp.shape[0]
        targets = torch.cat([y[i, :n[i]] for i in range(len(n))])
        return F.ctc_loss(lp, targets, torch.full((len(n),), T, dtype=torch.long), n, blank=0, zero_infinity=True)
    # slots: every slot past the label is the padding class 0.
    tgt = y[:, :M.SLOTS].clone()
    return F.cross_entropy(logits.reshape(-1, M.NUM_CLASSES), tgt.reshape(-1))


def decode(kind, logits):
    p = logits.softmax(-1)
    return M.decode_ctc(p) if kind == "ctc" else M.decode_slots(p)


def labels(y, n):
    from .layouts import CHARSET
    return ["".join(CHARSET[k - 1] for k in y[i, :n[i]]) for i in range(len(n))]


def evaluate(net, kind, d, batch=256):
    net.eval()
    right, chars, errs = 0, 0, 0
    with torch.no_grad():
        for i in range(0, len(d), batch):
            xb = M.to_input(d.x[i:i + batch])
            got = decode(kind, net(xb))
            want = labels(d.y[i:i + batch], d.n[i:i + batch])
            for g, w in zip(got, want):
                right += g == w
                chars += len(w)
                errs += edit_distance(g, w)
    net.train()
    return right / max(1, len(d)), errs / max(1, chars)


def edit_distance(a, b):
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        for j, cb in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
        prev = cur
    return prev[-1]


def run(kind, train_path, val_path, out_dir, epochs=None, minutes=None, batch=128, lr=2e-3, seed=1,
        threads=2, limit=None, log=print, checkpoint_every=600):
    """Trains; returns the history. Stops after `epochs` (the recipe) or
    `minutes` of training (the comparison)."""
    torch.set_num_threads(threads)
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    tr = Data(train_path, limit)
    va = Data(val_path)
    net = M.build(kind)
    steps_per_epoch = math.ceil(len(tr) / batch)
    if epochs is None:
        epochs = 1000  # until minutes run out; the schedule assumes `minutes`
    total = steps_per_epoch * epochs
    opt = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=1e-4)
    os.makedirs(out_dir, exist_ok=True)
    ck = os.path.join(out_dir, f"{kind}.ckpt")
    state = {"step": 0, "epoch": 0, "history": [], "elapsed": 0.0}
    if os.path.exists(ck):
        c = torch.load(ck)
        net.load_state_dict(c["model"])
        opt.load_state_dict(c["opt"])
        state = c["state"]
        rng.bit_generator.state = c["rng"]
        log(f"resumed at step {state['step']}")

    def lr_at(step):
        # Warm up, then cosine down to 2% of lr over the run (by steps, or by
        # time for a timed run).
        if minutes is not None:
            frac = min(1.0, state["elapsed"] / (minutes * 60))
        else:
            frac = step / max(1, total)
        warm = min(1.0, step / 300)
        return lr * warm * (0.02 + 0.98 * 0.5 * (1 + math.cos(math.pi * frac)))

    net.train()
    last_ck = time.time()
    t0 = time.time() - state["elapsed"]
    while state["epoch"] < epochs:
        # A resumed epoch goes on in the order it began with.
        if state.get("perm") is None:
            state["perm"] = rng.permutation(len(tr))
        perm = state["perm"]
        start = (state["step"] % steps_per_epoch) * batch
        running = []
        for i in range(start, len(perm), batch):
            idx = np.sort(perm[i:i + batch])
            xb = M.to_input(augment(tr.x[idx], rng))
            yb, nb = torch.as_tensor(tr.y[idx]), torch.as_tensor(tr.n[idx])
            for g in opt.param_groups:
                g["lr"] = lr_at(state["step"])
            loss = loss_fn(kind, net(xb), yb, nb)
            opt.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(net.parameters(), 5.0)
            opt.step()
            running.append(loss.item())
            state["step"] += 1
            state["elapsed"] = time.time() - t0
            if state["step"] % 200 == 0:
                log(f"{kind} step {state['step']} epoch {state['epoch']} loss {np.mean(running[-200:]):.4f} lr {lr_at(state['step']):.5f} {state['elapsed'] / 60:.1f} min")
            if time.time() - last_ck > checkpoint_every:
                save(ck, net, opt, state, rng)
                last_ck = time.time()
            if minutes is not None and state["elapsed"] > minutes * 60:
                break
        if minutes is None or state["elapsed"] <= minutes * 60:
            state["epoch"] += 1
            state["perm"] = None
        acc, cer = evaluate(net, kind, va)
        state["history"].append({"epoch": state["epoch"], "step": state["step"], "minutes": state["elapsed"] / 60,
                                 "val_exact": acc, "val_cer": cer})
        log(f"{kind} epoch {state['epoch']} step {state['step']} val exact {acc:.4f} cer {cer:.4f} after {state['elapsed'] / 60:.1f} min")
        save(ck, net, opt, state, rng)
        if minutes is not None and state["elapsed"] > minutes * 60:
            break
    torch.save(net.state_dict(), os.path.join(out_dir, f"{kind}.pt"))
    with open(os.path.join(out_dir, f"{kind}.history.json"), "w") as f:
        json.dump(state["history"], f, indent=1)
    return net, state["history"]


def save(path, net, opt, state, rng):
    tmp = path + ".tmp"
    torch.save({"model": net.state_dict(), "opt": opt.state_dict(), "state": state,
                "rng": rng.bit_generator.state}, tmp)
    os.replace(tmp, path)
