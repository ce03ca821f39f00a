"""Loading a GPT-2 XL-shaped checkpoint (1.56B parameters, ~6.2 GB fp32 safetensors): genzoo vs transformers.

    python benchmarks/gpt2_load_xl.py --dir /tmp/gpt2-xl-random     # writes the checkpoint, measures, deletes it

The checkpoint is transformers' random init for GPT2Config(n_layer=48, n_head=25, n_embd=1600), written with
save_pretrained (model.safetensors, as the Hub has it) in a temp dir outside the repo. Each measurement runs in
its own fresh subprocess, twice each, alternated: from_pretrained + one forward pass over 8 tokens; wall time and peak RSS
(resource.getrusage(RUSAGE_SELF).ru_maxrss). The folder is deleted at the end unless --keep.
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

MEASURE = r"""
import json, resource, sys, time
import torch
torch.set_num_threads(int(sys.argv[3]))
which, path = sys.argv[1], sys.argv[2]
if which == "genzoo":
    from genzoo import gpt2
else:
    from transformers import GPT2LMHeadModel
baseline = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # the interpreter + libraries, no model
t0 = time.perf_counter()
if which == "genzoo":
    model = gpt2.from_pretrained(path, device="cpu")
else:
    model = GPT2LMHeadModel.from_pretrained(path).eval()
t_load = time.perf_counter() - t0
with torch.inference_mode():
    logits = model(torch.arange(8).unsqueeze(0))
    logits = logits if isinstance(logits, torch.Tensor) else logits.logits
    checksum = float(logits[0, -1, :8].sum())
total = time.perf_counter() - t0
print(json.dumps({"which": which, "load_s": t_load, "load_and_forward_s": total, "checksum": checksum,
                  "peak_rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, "baseline_rss_gb": baseline}))
"""

MAKE = r"""
import sys, torch
from transformers import GPT2Config, GPT2LMHeadModel
torch.manual_seed(0)
with torch.device("cpu"):
    model = GPT2LMHeadModel(GPT2Config(n_layer=48, n_head=25, n_embd=1600))
model.save_pretrained(sys.argv[1])
"""


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--dir", type=Path, default=Path("/tmp/gpt2-xl-random"))
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()
    if not (args.dir / "model.safetensors").is_file():
        t = time.time()
        subprocess.run([sys.executable, "-c", MAKE, str(args.dir)], check=True)
        os.sync()  # let the kernel finish writing 6 GB back before anything is timed
        print(f"wrote {args.dir} in {time.time() - t:.0f} s", flush=True)
    size = os.path.getsize(args.dir / "model.safetensors") / 2**30
    print(f"checkpoint: {size:.2f} GiB", flush=True)
    results = []
    try:
        for which in ("genzoo", "transformers", "genzoo", "transformers"):  # alternated, each in a fresh process
            out = subprocess.run([sys.executable, "-c", MEASURE, which, str(args.dir), str(args.threads)],
                                 check=True, capture_output=True, text=True).stdout
            r = json.loads(out.strip().splitlines()[-1])
            r["rss_over_checkpoint"] = r["peak_rss_gb"] / size
            r["model_rss_over_checkpoint"] = (r["peak_rss_gb"] - r["baseline_rss_gb"]) / size
            results.append(r)
            print(json.dumps(r), flush=True)
    finally:
        if not args.keep:
            shutil.rmtree(args.dir, ignore_errors=True)
    g, h = results[-2:]
    for r in results:
        print(f"{r['which']}: load {r['load_s']:.1f} s, load + forward {r['load_and_forward_s']:.1f} s (imports "
              f"excluded), peak RSS {r['peak_rss_gb']:.2f} GiB = {r['rss_over_checkpoint']:.3f}x the checkpoint; "
              f"minus the {r['baseline_rss_gb']:.2f} GiB of the interpreter and libraries: "
              f"{r['model_rss_over_checkpoint']:.3f}x")
    print(f"same logits: {abs(g['checksum'] - h['checksum']) < 1e-3}")


if __name__ == "__main__":
    main()
