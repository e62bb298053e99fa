import json, subprocess, sys
d = sys.argv[1]; torch_py = sys.argv[2]; py = sys.argv[3]
ours = json.load(open(f"{d}/igpt.json"))
cmd = [py, torch_py, "loss", "--weights", f"{d}/model.safetensors", "--tokens", f"{d}/tokens.npy"]
import os
if os.path.exists(f"{d}/mask.npy"): cmd += ["--bert-mask", f"{d}/mask.npy"]
ref = json.loads(subprocess.check_output(cmd))
rl = abs(ours["loss"] - ref["loss"]) / abs(ref["loss"])
print(f"loss igpt={ours['loss']:.9f} torch={ref['loss']:.9f} rel={rl:.2e}")
worst = 0
for k, v in ref["grad_norms"].items():
    o = ours["grad_norms"][k]; r = abs(o - v) / max(abs(v), 1e-30); worst = max(worst, r)
    if r > 1e-5: print(f"  {k}: igpt={o:.6e} torch={v:.6e} rel={r:.2e}")
print(f"worst grad-norm rel={worst:.2e} over {len(ref['grad_norms'])} tensors")
