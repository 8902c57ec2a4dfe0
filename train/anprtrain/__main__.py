"""python3 -m anprtrain COMMAND: the recipe's steps.

  data     render scenes, cut them with the cropper, pack train and val sets
  train    train the recogniser (the recipe: fixed epochs and seed)
  compare  train the CTC and the fixed-slot recogniser for the same time
  export   export the trained recogniser to ONNX, check it against PyTorch
  all      fonts, data, train, export (what `make model` runs)

Paths default to the layout `make model` uses: work files in .train/work,
the model in train/model.
"""

import argparse
import json
import os
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# The recipe. Changing any of these changes the model: say so in the card.
RECIPE = {
    "seed": 1,
    "train_scenes": 130000,
    "train_seed": 1,
    "val_scenes": 6000,
    "val_seed": 2,
    "kind": "ctc",
    "epochs": 3,
    "batch": 128,
    "lr": 2e-3,
}


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python3 -m anprtrain")
    ap.add_argument("command", choices=["data", "train", "compare", "export", "all"])
    ap.add_argument("--work", default=os.path.join(ROOT, ".train/work"))
    ap.add_argument("--fonts", default=os.path.join(ROOT, ".train/fonts"))
    ap.add_argument("--deps", default=os.path.join(ROOT, ".deps"))
    ap.add_argument("--bin", default=os.path.join(ROOT, ".train"), help="where cropper and onnxrun are")
    ap.add_argument("--out", default=os.path.join(ROOT, "train/model"))
    ap.add_argument("--minutes", type=float, default=30, help="compare: training time per recogniser")
    ap.add_argument("--limit", type=int, default=None, help="compare: use the first N training crops")
    a = ap.parse_args(argv)
    r = RECIPE
    os.makedirs(a.work, exist_ok=True)
    log_path = os.path.join(a.work, "recipe.log")

    def log(msg):
        line = time.strftime("%H:%M:%S ") + msg
        print(line, flush=True)
        with open(log_path, "a") as f:
            f.write(line + "\n")

    if a.command in ("data", "all"):
        from . import data, fonts
        fonts.fetch(a.fonts)
        for name, n, seed in (("val", r["val_scenes"], r["val_seed"]), ("train", r["train_scenes"], r["train_seed"])):
            if os.path.exists(os.path.join(a.work, name + ".npz")):
                log(f"data: {name}.npz is there")
                continue
            t = time.time()
            count, logs = data.build(a.work, name, n, seed, a.fonts, os.path.join(a.bin, "cropper"), a.deps)
            log(f"data: {name}: {n} scenes -> {count} crops in {(time.time() - t) / 60:.1f} min; " + "; ".join(logs))
    if a.command in ("train", "all"):
        from . import train
        t = time.time()
        train.run(r["kind"], os.path.join(a.work, "train.npz"), os.path.join(a.work, "val.npz"), a.work,
                  epochs=r["epochs"], batch=r["batch"], lr=r["lr"], seed=r["seed"], log=log)
        log(f"train: done in {(time.time() - t) / 3600:.2f} h of this run")
    if a.command == "compare":
        from . import train
        res = {}
        for kind in ("ctc", "slots"):
            d = os.path.join(a.work, "compare")
            _, hist = train.run(kind, os.path.join(a.work, "train.npz"), os.path.join(a.work, "val.npz"), d,
                                minutes=a.minutes, batch=r["batch"], lr=r["lr"], seed=r["seed"], limit=a.limit, log=log)
            res[kind] = hist[-1]
        log("compare: " + json.dumps(res))
    if a.command in ("export", "all"):
        export_model(a, log)


def export_model(a, log):
    import numpy as np
    import torch
    from . import export, model, train
    r = RECIPE
    net = model.build(r["kind"])
    net.load_state_dict(torch.load(os.path.join(a.work, f"{r['kind']}.pt")))
    os.makedirs(a.out, exist_ok=True)
    path = os.path.join(a.out, "anprd-plate-rec.onnx")
    export.export(net, r["kind"], path)
    va = train.Data(os.path.join(a.work, "val.npz"))
    diff = export.check(net, path, va.x[:64], os.path.join(a.bin, "onnxrun"), os.path.join(a.deps, "lib/libonnxruntime.so.1"))
    if diff > 1e-4:
        raise SystemExit(f"export: ONNX Runtime differs from PyTorch by {diff}")
    acc, cer = train.evaluate(net, r["kind"], va)
    s = export.summary(path)
    hist = json.load(open(os.path.join(a.work, f"{r['kind']}.history.json")))
    info = {"sha256": s["sha256"], "bytes": s["bytes"], "opset": s["opset"], "params": model.params(net), "macs": model.macs(net),
            "val_exact": acc, "val_cer": cer, "max_abs_diff_onnx_torch": diff,
            "training_minutes": hist[-1]["minutes"], "epochs": hist[-1]["epoch"], "recipe": r}
    with open(os.path.join(a.out, "anprd-plate-rec.json"), "w") as f:
        json.dump(info, f, indent=1)
        f.write("\n")
    log("export: " + json.dumps(info))


if __name__ == "__main__":
    main(sys.argv[1:])
