"""Score genzoo's embedded digit models with an MNIST classifier (issue 7's quality measure).

    python scripts/eval_digits.py            # trains the classifier once (seeded), then scores every digit model
    python scripts/eval_digits.py --retrain  # retrain the classifier

The classifier is a small CNN trained on the 8k "train" split (genzoo.datasets.mnist) and stored in
weights/mnist-classifier/. For each family it scores 1,000 samples from `genzoo.<family>.cli.demo_samples`:
  * mean top-1 confidence (softmax max) — how digit-like the samples look to the classifier,
  * how many of the 10 classes appear as a top-1 prediction, and the class histogram.
The 2k real held-out digits give the reference values (and the classifier's accuracy).
"""
from __future__ import annotations

import argparse
import importlib
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from genzoo import checkpoint, datasets

ROOT = Path(__file__).resolve().parent.parent
CLASSIFIER_DIR = ROOT / "weights" / "mnist-classifier"
DIGIT_FAMILIES = ("gan", "vae", "diffusion", "cyclegan")


class DigitClassifier(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 32, 3, padding=1)
        self.conv2 = nn.Conv2d(32, 64, 3, padding=1)
        self.fc1 = nn.Linear(64 * 7 * 7, 128)
        self.fc2 = nn.Linear(128, 10)

    def forward(self, x):  # x: (N, 1, 28, 28) in [-1, 1]
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        return self.fc2(F.relu(self.fc1(x.flatten(1))))


def train_classifier(epochs: int = 6, seed: int = 0) -> DigitClassifier:
    torch.manual_seed(seed)
    x, y = datasets.mnist("train")
    model = DigitClassifier()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    for epoch in range(epochs):
        order = torch.randperm(len(x))
        for i in range(0, len(x), 128):
            idx = order[i:i + 128]
            # Small random shifts: generated digits are rarely centred exactly like MNIST's.
            batch = torch.roll(x[idx], shifts=tuple(torch.randint(-2, 3, (2,)).tolist()), dims=(2, 3))
            loss = F.cross_entropy(model(batch), y[idx])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        print(f"classifier epoch {epoch + 1}/{epochs}: loss {loss.item():.3f}", flush=True)
    checkpoint.save_pretrained(CLASSIFIER_DIR, model.state_dict(), {"architecture": "DigitClassifier", "seed": seed,
                                                                    "epochs": epochs}, family="eval")
    return model.eval()


def load_classifier() -> DigitClassifier:
    sd = checkpoint.load_state_dict(CLASSIFIER_DIR / checkpoint.WEIGHTS_NAME)
    return checkpoint.build_and_load(DigitClassifier, sd, CLASSIFIER_DIR, device="cpu")


@torch.inference_mode()
def score(classifier, images: torch.Tensor) -> dict:
    probs = F.softmax(classifier(images.float().clamp(-1, 1)), dim=1)
    confidence, label = probs.max(dim=1)
    counts = torch.bincount(label, minlength=10)
    return {"n": len(images), "mean_confidence": confidence.mean().item(), "classes": int((counts > 0).sum()),
            "histogram": counts.tolist(), "labels": label}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--retrain", action="store_true")
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--families", nargs="+", default=list(DIGIT_FAMILIES))
    args = parser.parse_args()
    torch.set_num_threads(2)
    if args.retrain or not (CLASSIFIER_DIR / checkpoint.WEIGHTS_NAME).is_file():
        train_classifier()
    classifier = load_classifier()

    heldout_x, heldout_y = datasets.mnist("heldout")
    real = score(classifier, heldout_x)
    accuracy = (real["labels"] == heldout_y).float().mean().item()
    rows = [("real held-out digits (2,000)", real)]
    for family in args.families:
        module = importlib.import_module(f"genzoo.{family}.cli")
        start = time.perf_counter()
        samples = module.demo_samples(args.n, seed=0)
        if samples.shape != (args.n, 1, 28, 28):
            raise SystemExit(f"{family}.demo_samples returned {tuple(samples.shape)}, expected ({args.n}, 1, 28, 28)")
        rows.append((f"{family} ({args.n} samples, {time.perf_counter() - start:.1f} s)", score(classifier, samples)))

    print(f"\nclassifier accuracy on the 2,000 held-out digits: {accuracy:.4f}\n")
    print("| source | mean top-1 confidence | classes present | class histogram (0-9) |")
    print("|---|---|---|---|")
    for name, r in rows:
        print(f"| {name} | {r['mean_confidence']:.3f} | {r['classes']}/10 | {r['histogram']} |")


if __name__ == "__main__":
    main()
