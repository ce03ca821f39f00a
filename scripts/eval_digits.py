"""Score genzoo's embedded digit models with the MNIST classifier (genzoo.evaluation has the logic).

    python scripts/eval_digits.py            # scores every embedded digit model (trains the classifier if missing)
    python scripts/eval_digits.py --retrain  # retrain the classifier (seeded) into weights/mnist-classifier

For each family it scores 1,000 samples from `genzoo.<family>.cli.demo_samples` (mean top-1 confidence, classes
present, class histogram; `genzoo eval MODEL` gives the same numbers for one model, with label accuracy where the
intended digit is known). The 2k real held-out digits give the reference values (and the classifier's accuracy).
"""
from __future__ import annotations

import argparse
import importlib
import time

import torch

from genzoo import checkpoint, datasets
from genzoo.evaluation import classifier_dir, classifier_score, load_classifier, train_classifier

DIGIT_FAMILIES = ("gan", "vae", "diffusion", "cyclegan")


def score(classifier, images: torch.Tensor) -> dict:
    """classifier_score under this script's former key names ("classes" for classes present)."""
    result = classifier_score(images, classifier=classifier)
    return {**result, "classes": result["classes_present"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--retrain", action="store_true")
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--families", nargs="+", default=list(DIGIT_FAMILIES))
    args = parser.parse_args()
    torch.set_num_threads(2)
    if args.retrain or not (classifier_dir() / checkpoint.WEIGHTS_NAME).is_file():
        train_classifier()
    classifier = load_classifier()

    heldout_x, heldout_y = datasets.mnist("heldout")
    real = classifier_score(heldout_x, heldout_y, classifier)
    rows = [("real held-out digits (2,000)", real)]
    for family in args.families:
        module = importlib.import_module(f"genzoo.{family}.cli")
        start = time.perf_counter()
        samples = module.demo_samples(args.n, seed=0)
        if samples.shape != (args.n, 1, 28, 28):
            raise SystemExit(f"{family}.demo_samples returned {tuple(samples.shape)}, expected ({args.n}, 1, 28, 28)")
        rows.append((f"{family} ({args.n} samples, {time.perf_counter() - start:.1f} s)",
                     classifier_score(samples, classifier=classifier)))

    print(f"\nclassifier accuracy on the 2,000 held-out digits: {real['label_accuracy']:.4f}\n")
    print("| source | mean top-1 confidence | classes present | class histogram (0-9) |")
    print("|---|---|---|---|")
    for name, r in rows:
        print(f"| {name} | {r['mean_confidence']:.3f} | {r['classes_present']}/10 | {r['histogram']} |")


if __name__ == "__main__":
    main()
