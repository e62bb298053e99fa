#!/usr/bin/env python3
"""Step time and scaling efficiency of a cluster at 8 to 256 workers, projected from measured costs.

    python3 cluster/project.py CAPACITY.jsonl ENGINE_GFLOPS_PER_CORE [--cores 32] [--images 8]

CAPACITY.jsonl is `igpt bench-cluster` output (shards 0 and >= 1); ENGINE_GFLOPS_PER_CORE is
`igpt bench`'s gflops / threads on the same host. The model (cluster/README.md, "Capacity"):

- weak scaling: each worker computes `--images` 32x32 images (1,024 tokens) a step on
  `--cores` cores at the measured per-core rate; the step's FLOPs are counted as `igpt bench`
  counts them;
- per step the parameter server (the coordinator, or each of K shards on its own host and link)
  receives one gradient per worker and sends one parameter copy per worker: its share of those
  bytes at the link rate (full duplex: in and out overlap) and at the CPU cost per byte the
  benchmark measured (decode, sum, encode, send), whichever is slower;
- a step is a barrier (parameters out, compute, gradients in): step = compute + server time.
"""
import json
import sys

MODELS = {"igpt-s": (24, 512), "igpt-m": (36, 1024), "igpt-l": (48, 1536)}
V, T = 512, 1024


def params(layers, embd):
    return (V + 1) * embd + T * embd + layers * (12 * embd * embd + 2 * embd) + embd + V * embd


def flops_per_token(layers, embd):
    return 6 * (12 * layers * embd * embd + V * embd) + 12 * layers * T * embd


def costs(rows):
    """Seconds of server CPU per byte moved, and bytes per parameter on the wire, per codec."""
    out = {}
    for codec in sorted({r["codec"] for r in rows}):
        mine = [r for r in rows if r["codec"] == codec and r["shards"] == 0 and r["workers"] >= 2]
        # coordinator_s / (bytes in + out) over the settings with several workers
        per_byte = sum(r["coordinator_s"] for r in mine) / sum(r["bytes_per_step"] for r in mine)
        one = mine[0]
        out[codec] = {
            "cpu_s_per_byte": per_byte,
            "gradient_bytes_per_param": one["gradient_bytes"] / one["parameters"],
            "param_bytes_per_param": one["bytes_out_per_step"] / one["workers"] / one["parameters"],
        }
    return out


def step(model, workers, link_gbps, shards, c, rate, cores, images):
    layers, embd = MODELS[model]
    p = params(layers, embd)
    compute = images * T * flops_per_token(layers, embd) / (rate * 1e9 * cores)
    k = max(1, shards)
    moved_in = workers * p * c["gradient_bytes_per_param"] / k
    moved_out = workers * p * c["param_bytes_per_param"] / k
    network = max(moved_in, moved_out) * 8 / (link_gbps * 1e9)
    cpu = (moved_in + moved_out) * c["cpu_s_per_byte"]
    server = max(network, cpu)
    return compute, server


def main():
    args = sys.argv[1:]
    if len(args) < 2:
        print(__doc__)
        sys.exit(2)
    rows = [json.loads(l) for l in open(args[0]) if l.strip()]
    rate = float(args[1])
    cores = int(args[args.index("--cores") + 1]) if "--cores" in args else 32
    images = int(args[args.index("--images") + 1]) if "--images" in args else 8
    measured = costs(rows)
    for codec, c in measured.items():
        print(f"measured ({codec}): {c['cpu_s_per_byte'] * 1e9:.3f} s of server CPU per GB moved, "
              f"{c['gradient_bytes_per_param']:.2f} bytes per parameter per gradient, "
              f"{c['param_bytes_per_param']:.2f} per parameter copy")
    if "bf16" not in measured:  # bf16 gradients: 2.5x smaller (README); the same CPU per byte
        c = dict(measured["lossless"])
        c["gradient_bytes_per_param"] /= 2.5
        measured["bf16 (2.5x smaller gradients, assumed)"] = c
    print(f"\nworker: {cores} cores at {rate:.1f} GFLOP/s each, {images} images of 1,024 tokens a step")
    print("cells: scaling efficiency with one parameter server / shards needed for >= 80% (> 16: more than the plan allows)")
    ns = (8, 32, 64, 128, 256)
    for cpu_label, cpu_scale in (("server CPU as measured", 1.0), ("network only (server CPU not counted)", 0.0)):
        print(f"\n{cpu_label}\n")
        print("| model | codec | link | compute s | " + " | ".join(f"{n} workers" for n in ns) + " |")
        print("|---|---|---|---|" + "---|" * len(ns))
        for model in MODELS:
            for codec, c in measured.items():
                c = dict(c, cpu_s_per_byte=c["cpu_s_per_byte"] * cpu_scale)
                for link in (10, 25, 100):
                    cells = []
                    for n in ns:
                        compute, server = step(model, n, link, 0, c, rate, cores, images)
                        need = next((k for k in range(1, 17)
                                     if compute / (compute + step(model, n, link, k, c, rate, cores, images)[1]) >= 0.8), None)
                        cells.append(f"{compute / (compute + server):.0%} / {need if need else '> 16'}")
                    print(f"| {model} | {codec.split(' ')[0]} | {link} Gb/s | {compute:.2f} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
