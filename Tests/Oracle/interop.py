#!/usr/bin/env python3
"""igpt against Hugging Face transformers itself (make interop; not part of make test).

  interop.py IGPT_BINARY WORK_DIR

Checks, printing one line each and exiting 1 if any fails:
  1. ImageGPTForCausalImageModeling.from_pretrained(a trained step directory) gives igpt eval's loss (1e-5).
  2. A random model made and saved by transformers (biases zero), one file and sharded, loads into
     igpt and gives transformers' loss (1e-5).
  3. ImageGPTImageProcessor.from_pretrained(the step directory) quantises images already at the
     store's resolution (do_resize=False) to the tokens igpt prepare stored.
"""
import json
import os
import subprocess
import sys

import numpy as np
import torch
from PIL import Image
from transformers import ImageGPTConfig, ImageGPTForCausalImageModeling, ImageGPTImageProcessor

igpt, work = sys.argv[1], sys.argv[2]
os.makedirs(work, exist_ok=True)
failures = 0
import transformers  # noqa: E402
print(f"transformers {transformers.__version__}, torch {torch.__version__}")


def run(*args):
    r = subprocess.run([igpt, *args], capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"igpt {' '.join(args)} failed: {r.stderr.strip()}")
    return r.stdout


def check(name, ok, detail):
    global failures
    print(f"{'ok  ' if ok else 'FAIL'} {name}: {detail}")
    failures += 0 if ok else 1


def hf_loss(model, tokens):
    """igpt's AR loss from HF's logits: position t sees sos + tokens[:t] and predicts tokens[t]."""
    sos = model.config.vocab_size - 1
    inputs = torch.cat([torch.full((tokens.shape[0], 1), sos), torch.from_numpy(tokens[:, :-1]).long()], dim=1)
    with torch.no_grad():
        logits = model(input_ids=inputs).logits.double()
    return torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), torch.from_numpy(tokens).long().reshape(-1)).item()


def igpt_loss(checkpoint, batch):
    return json.loads(run("eval", "--checkpoint", checkpoint, "--tokens", batch))["loss_nats"]


# images already at the store's resolution (8x8 RGB), smooth enough to share a palette
rng = np.random.default_rng(0)
R = 8
for split, n in [("train", 48), ("test", 8)]:
    d = os.path.join(work, "src", split, "a")
    os.makedirs(d, exist_ok=True)
    for i in range(n):
        base = rng.integers(0, 256, size=3)
        img = np.clip(base + rng.normal(0, 40, size=(R, R, 3)), 0, 255).astype(np.uint8)
        Image.fromarray(img).save(os.path.join(d, f"{i:04d}.png"))
store = os.path.join(work, "store")
if not os.path.exists(store):
    run("prepare", "--dataset", os.path.join(work, "src"), "--resolution", str(R), "--palette", "16", "--out", store)
config = os.path.join(work, "run.yaml")
with open(config, "w") as f:
    f.write(f"model: {{layers: 2, embd: 32, heads: 2, objective: ar}}\ndata: {{store: {store}}}\n"
            "train: {steps: 30, batch: 8, lr: 0.01, warmup: 5, seed: 1, threads: 1}\ncheckpoint: {every: 30}\n")
runs = os.path.join(work, "run")
if not os.path.exists(runs):
    run("train", "--config", config, "--run", runs)
step = os.path.join(runs, "checkpoints", "step-00000030")
V, T = 16, R * R
tokens = rng.integers(0, V, size=(4, T)).astype(np.int32)
batch = os.path.join(work, "batch.npy")
np.save(batch, tokens)

# 1. our checkpoint in transformers
ours = igpt_loss(step, batch)
theirs = hf_loss(ImageGPTForCausalImageModeling.from_pretrained(step).eval(), tokens)
check("from_pretrained(step directory)", abs(ours - theirs) <= 1e-5, f"igpt eval {ours:.7f}, transformers {theirs:.7f}, |diff| {abs(ours - theirs):.1e}")

# 2. transformers' model in igpt, one file and sharded
torch.manual_seed(0)
cfg = ImageGPTConfig(vocab_size=V + 1, n_positions=T, n_embd=32, n_layer=2, n_head=2, resid_pdrop=0, embd_pdrop=0, attn_pdrop=0)
model = ImageGPTForCausalImageModeling(cfg).eval()
with torch.no_grad():
    for name, p in model.named_parameters():
        if name.endswith(".bias"):
            p.zero_()
        elif "ln" in name:
            p.add_(0.1 * torch.randn_like(p))  # norm gains off 1, so they matter
want = hf_loss(model, tokens)
for label, kwargs in [("one file", {}), ("sharded", {"max_shard_size": "40KB"})]:
    d = os.path.join(work, "hf-" + label.replace(" ", "-"))
    model.save_pretrained(d, safe_serialization=True, **kwargs)
    files = sorted(os.listdir(d))
    got = igpt_loss(d, batch)
    check(f"transformers' save_pretrained ({label}: {', '.join(f for f in files if f.endswith('.json') or f.endswith('.safetensors'))[:80]}) in igpt",
          abs(got - want) <= 1e-5, f"transformers {want:.7f}, igpt eval {got:.7f}, |diff| {abs(got - want):.1e}")

# 3. the image processor with our palette gives our tokens
def stored_test_tokens(store):
    """The test split's tokens as igpt prepare stored them, in source-image order."""
    with open(os.path.join(store, "test-00000.shard"), "rb") as f:
        raw = f.read()
    token_bytes, seq, count = (int.from_bytes(raw[8 + 4 * i:12 + 4 * i], "little") for i in range(3))
    end = 32 + count * seq * token_bytes
    tokens = np.frombuffer(raw[32:end], dtype=np.uint8 if token_bytes == 1 else "<u2").reshape(count, seq)
    sources = np.frombuffer(raw[end + 4 * count:end + 8 * count], dtype="<i4")
    return tokens[np.argsort(sources)]


def check_processor(name, model_dir, images_dir, store):
    processor = ImageGPTImageProcessor.from_pretrained(model_dir)
    images = [Image.open(os.path.join(images_dir, f)).convert("RGB") for f in sorted(os.listdir(images_dir))]
    hf_ids = processor(images=images, do_resize=False, return_tensors="np")["input_ids"]
    ours = stored_test_tokens(store)
    same = int((ours == hf_ids).sum())
    check(name, same == ours.size, f"{same} of {ours.size} pixels give the same token")


check_processor("ImageGPTImageProcessor(clusters from preprocessor_config.json)", step, os.path.join(work, "src", "test", "a"), store)

# ... and with a grey palette, written as (V, 3) with equal channels
for split, n in [("train", 48), ("test", 8)]:
    d = os.path.join(work, "grey", split, "a")
    os.makedirs(d, exist_ok=True)
    for i in range(n):
        img = np.clip(rng.integers(0, 256) + rng.normal(0, 40, size=(R, R)), 0, 255).astype(np.uint8)
        Image.fromarray(img, mode="L").save(os.path.join(d, f"{i:04d}.png"))
grey_store, grey_hf = os.path.join(work, "grey-store"), os.path.join(work, "grey-hf")
if not os.path.exists(grey_store):
    run("prepare", "--dataset", os.path.join(work, "grey"), "--resolution", str(R), "--palette", "16", "--out", grey_store)
if not os.path.exists(grey_hf):
    run("export", "--checkpoint", step, "--data", grey_store, "--out", grey_hf)
check_processor("ImageGPTImageProcessor(grey palette as equal channels)", grey_hf, os.path.join(work, "grey", "test", "a"), grey_store)

# 4. TensorBoard's own reader sees every scalar of metrics.jsonl (float32)
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator  # noqa: E402

acc = EventAccumulator(os.path.join(runs, "tensorboard"), size_guidance={"scalars": 0, "images": 0})
acc.Reload()
want = {}
with open(os.path.join(runs, "metrics.jsonl")) as f:
    for line in f:
        o = json.loads(line)
        for k, v in o.items():
            if k != "step" and isinstance(v, (int, float)) and not isinstance(v, bool):
                want[(k, o["step"])] = v
got = {(tag, e.step): e.value for tag in acc.Tags()["scalars"] for e in acc.Scalars(tag)}
bad = [k for k, v in want.items() if k not in got or got[k] != float(np.float32(v))]
check("TensorBoard EventAccumulator reads metrics.jsonl's scalars", not bad and len(got) == len(want),
      f"{len(want)} scalars in metrics.jsonl, {len(got)} read, {len(bad)} differ {bad[:3]}")

import io  # noqa: E402

val_steps = sorted({o["step"] for o in map(json.loads, open(os.path.join(runs, "metrics.jsonl"))) if "val_loss" in o})
images = acc.Images("samples") if "samples" in acc.Tags()["images"] else []
sizes = [Image.open(io.BytesIO(e.encoded_image_string)).size for e in images]
check("TensorBoard EventAccumulator reads the sample grids", [e.step for e in images] == val_steps and all(w > 0 for w, _ in sizes),
      f"images at steps {[e.step for e in images]} (validations at {val_steps}), sizes {sizes[:2]}")

sys.exit(1 if failures else 0)
