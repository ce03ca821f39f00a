"""Black hair <-> blond hair with CycleGAN on CelebA (unpaired: no face appears in both folders).

    python scripts/celeba_hair_cyclegan.py --celeba ~/data/celeba --out runs/hair [--size 128 --steps 40000]

--celeba is the folder holding img_align_celeba/ and list_attr_celeba.txt (the official CelebA release). The script
links faces with Black_Hair=1 and Blond_Hair=-1 into OUT/data/black and faces with Blond_Hair=1 and Black_Hair=-1
into OUT/data/blond (symlinks, no copies), then runs `genzoo train cyclegan` on the two folders: 6 residual blocks
(the paper's choice below 256 px), images resized to size*1.12 and randomly cropped to size, random flips. The
training loop holds the images in memory (float32: about 3 * 143^2 * 4 bytes = 245 KB a face at size 128), so use
--limit on a small machine. Afterwards:

    genzoo translate runs/hair face.jpg blond.jpg --size 128                # black -> blond (G_A)
    genzoo translate runs/hair face.jpg black.jpg --size 128 --direction BtoA
"""
from __future__ import annotations

import argparse
import os
from pathlib import Path

from genzoo.cyclegan import cli


def read_attributes(path: Path) -> tuple[list[str], dict[str, list[int]]]:
    """list_attr_celeba.txt: a count, the attribute names, then 'file.jpg  1 -1 ...' per image."""
    lines = path.read_text().splitlines()
    names = lines[1].split()
    rows = {}
    for line in lines[2:]:
        parts = line.split()
        if len(parts) == len(names) + 1:
            rows[parts[0]] = [int(v) for v in parts[1:]]
    return names, rows


def split_by_hair(celeba: Path, data_dir: Path, limit: int | None = None) -> dict[str, int]:
    names, rows = read_attributes(celeba / "list_attr_celeba.txt")
    black, blond = names.index("Black_Hair"), names.index("Blond_Hair")
    counts = {}
    for domain, want, avoid in (("black", black, blond), ("blond", blond, black)):
        folder = data_dir / domain
        folder.mkdir(parents=True, exist_ok=True)
        files = [f for f, v in rows.items() if v[want] == 1 and v[avoid] == -1][:limit]
        for f in files:
            link = folder / f
            if not link.exists():
                os.symlink((celeba / "img_align_celeba" / f).resolve(), link)
        counts[domain] = len(files)
    return counts


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--celeba", required=True, type=Path)
    parser.add_argument("--out", default="runs/hair", type=Path)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--steps", type=int, default=40_000)
    parser.add_argument("--batch-size", type=int, default=1)
    parser.add_argument("--limit", type=int, default=None, help="at most this many faces per domain")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--resume", action="store_true")
    args = parser.parse_args()

    counts = split_by_hair(args.celeba, args.out / "data", args.limit)
    print(f"black hair: {counts['black']} faces, blond hair: {counts['blond']} faces")
    argv = ["--data-a", str(args.out / "data" / "black"), "--data-b", str(args.out / "data" / "blond"),
            "--out", str(args.out), "--steps", str(args.steps), "--batch-size", str(args.batch_size),
            "--load-size", str(round(args.size * 1.12)), "--size", str(args.size), "--flip", "--n-blocks", "6",
            "--ngf", "64", "--ndf", "64", "--device", args.device] + (["--resume"] if args.resume else [])
    return cli.train(argv)


if __name__ == "__main__":
    raise SystemExit(main())
