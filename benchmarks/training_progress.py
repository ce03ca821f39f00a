"""How many steps (and CPU minutes) each family's `genzoo train` needs on its default data before samples are
recognisable digits, measured with the shipped MNIST classifier (genzoo.evaluation.classifier_score).

    python benchmarks/training_progress.py gan --steps 1500 --every 250
    python benchmarks/training_progress.py gan-conditional --steps 1500 --every 250
    python benchmarks/training_progress.py diffusion --steps 3000 --every 500
    python benchmarks/training_progress.py vae --steps 600 --every 100

Each run trains with the family's TrainConfig defaults (only steps, keep_every, out_dir and threads set here, plus
--set KEY=VALUE overrides), keeps a checkpoint every --every steps, then scores --n seeded samples of each
checkpoint: mean classifier confidence, classes present (10 = no mode collapse) and, for conditional models, how
often the classifier reads the digit that was asked for. "Recognisable": confidence >= 0.8 and all 10 classes
(conditional: label accuracy >= 0.8 too). Prints one markdown row per checkpoint with the CPU seconds spent.
"""
import argparse
import ast
import importlib
import json
import shutil
import tempfile
import time
from pathlib import Path

import torch

from genzoo.evaluation import classifier_score, load_classifier

FAMILIES = {"gan": ("gan", {}), "gan-conditional": ("gan", {"conditional": True}), "vae": ("vae", {}),
            "diffusion": ("diffusion", {})}


def samples(family: str, folder: Path, n: int, conditional: bool):
    module = importlib.import_module(f"genzoo.{family}")
    labels = torch.arange(n) % 10 if conditional else None
    if family == "gan":
        generator = module.from_pretrained(folder)
        return generator.sample(n, seed=0, labels=labels), labels
    if family == "vae":
        model = module.from_pretrained(folder, dtype=torch.float32)
        return model.sample(n, seed=0), None
    unet = module.from_pretrained(folder, dtype=torch.float32)
    scheduler = module.load_scheduler(folder, kind="ddim")
    return module.sample(unet, scheduler, n=n, steps=20, seed=0), None


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("family", choices=sorted(FAMILIES))
    parser.add_argument("--steps", type=int, required=True)
    parser.add_argument("--every", type=int, required=True)
    parser.add_argument("--n", type=int, default=500)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="TrainConfig overrides")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    family, preset = FAMILIES[args.family]
    overrides = dict(preset)
    for item in args.set:
        key, value = item.split("=", 1)
        try:
            overrides[key] = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            overrides[key] = value
    train_module = importlib.import_module(f"genzoo.{family}.train")
    out = Path(tempfile.mkdtemp(prefix=f"progress-{args.family}-"))
    config = train_module.TrainConfig(out_dir=str(out / "run"), steps=args.steps, keep_every=args.every,
                                      save_every=args.every, sample_every=args.every, progress=False, log_every=50,
                                      threads=args.threads, **overrides)
    cpu0, wall0 = time.process_time(), time.time()
    train_module.train(config)
    cpu, wall = time.process_time() - cpu0, time.time() - wall0
    log = [json.loads(line) for line in (out / "run" / "log.jsonl").read_text().splitlines() if line.strip()]
    classifier = load_classifier()
    print(f"\n{args.family} {overrides or ''}: {args.steps} steps in {cpu:.0f} s CPU / {wall:.0f} s wall "
          f"({args.threads} thread(s))")
    print("| step | CPU min (est.) | loss | mean confidence | classes | label accuracy | recognisable |")
    print("|---|---|---|---|---|---|---|")
    for step in range(args.every, args.steps + 1, args.every):
        folder = out / "run" / "checkpoints" / f"step-{step}"
        images, labels = samples(family, folder, args.n, preset.get("conditional", False))
        score = classifier_score(images.float(), labels=labels, classifier=classifier)
        line = min(log, key=lambda r: abs(r["step"] - step))
        loss = {k: v for k, v in line.items() if k not in ("step", "lr", "seconds", "epoch")}
        ok = score["mean_confidence"] >= 0.8 and score["classes_present"] == 10 and \
            score.get("label_accuracy", 1.0) >= 0.8
        print(f"| {step} | {cpu * step / args.steps / 60:.1f} | "
              + " ".join(f"{k} {v:.3f}" for k, v in loss.items())
              + f" | {score['mean_confidence']:.3f} | {score['classes_present']} | "
              + (f"{score['label_accuracy']:.3f}" if "label_accuracy" in score else "-")
              + f" | {'yes' if ok else 'no'} |", flush=True)
    shutil.rmtree(out)


if __name__ == "__main__":
    main()
