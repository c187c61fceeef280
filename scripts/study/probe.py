"""Identity accuracy of simple classifiers on the vectors written by augment-views.ts.

    python3 scripts/study/probe.py /tmp/capflow-augment-study [view-set ...]

For the clean training vectors alone, then with each listed view set added (default: every set that is
not clean/render*), fits (a) 1-nearest-neighbour on square-root + L2-normalised features and (b) a
softmax linear probe on the same features, and prints the share of Fluent test images and of the
64-px render whose emoji is named right. A proxy for the caption model's exact-match accuracy: it
says which views bring training closer to unseen styles, cheaply."""
import json
import os
import sys

import numpy as np


def load(d, name):
    meta = json.load(open(os.path.join(d, name + ".json")))
    return np.load(os.path.join(d, name + ".npy")).astype(np.float32), meta["items"]


def norm(x):
    x = np.sqrt(np.maximum(x, 0))
    return x / (np.linalg.norm(x, axis=1, keepdims=True) + 1e-8)


def probe(xtr, ytr, n_cls, epochs=300, lr=0.5, wd=1e-4, seed=1):
    rng = np.random.default_rng(seed)
    d = xtr.shape[1]
    w = np.zeros((d, n_cls), np.float32)
    b = np.zeros(n_cls, np.float32)
    scale = 20.0  # cosine-softmax temperature
    onehot = np.eye(n_cls, dtype=np.float32)[ytr]
    for _ in range(epochs):
        logits = scale * (xtr @ w) + b
        logits -= logits.max(1, keepdims=True)
        p = np.exp(logits)
        p /= p.sum(1, keepdims=True)
        g = (p - onehot) / len(xtr)
        w -= lr * (scale * xtr.T @ g + wd * w)
        b -= lr * g.sum(0)
    return lambda x: (scale * (x @ w) + b).argmax(1)


def main():
    d = sys.argv[1]
    clean, items = load(d, "clean")
    renders = [f[:-4] for f in os.listdir(d) if f.startswith("render") and f.endswith(".npy")]
    sets = sys.argv[2:] or sorted(
        f[:-4] for f in os.listdir(d) if f.endswith(".npy") and f[:-4] != "clean" and not f.startswith("render")
    )
    classes = sorted({it["emoji"] for it in items})
    cid = {c: i for i, c in enumerate(classes)}
    split = np.array([it["split"] for it in items])
    y = np.array([cid[it["emoji"]] for it in items])
    x = norm(clean)
    evals = {"test (Fluent)": (x[split == "test"], y[split == "test"])}
    for r in renders:
        rv, ritems = load(d, r)
        evals[r] = (norm(rv), np.array([cid[it["emoji"]] for it in ritems]))
    base_x, base_y = x[split == "train"], y[split == "train"]

    def report(label, xtr, ytr):
        knn = lambda q: ytr[(q @ xtr.T).argmax(1)]
        lin = probe(xtr, ytr, len(classes))
        cells = []
        for name, (q, yq) in evals.items():
            cells.append(f"{name}: 1-NN {np.mean(knn(q) == yq):.3f}, linear {np.mean(lin(q) == yq):.3f}")
        print(f"{label:28s} rows {len(xtr):5d} | " + " | ".join(cells), flush=True)

    report("clean only", base_x, base_y)
    combos = [[s] for s in sets]
    mix = sorted(s for s in sets if s.startswith("mix-v"))
    if len(mix) > 1:
        combos.append(mix)
    for combo in combos:
        xs, ys = [base_x], [base_y]
        for s in combo:
            v, vitems = load(d, s)
            xs.append(norm(v))
            ys.append(np.array([cid[it["emoji"]] for it in vitems]))
        report("+ " + "+".join(combo), np.concatenate(xs), np.concatenate(ys))


if __name__ == "__main__":
    main()
