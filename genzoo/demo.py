"""`genzoo demo`: every embedded model, offline, into one folder.

Each family's `cli.demo(out_dir)` writes its own outputs (text for GPT, PNG grids for the image models) from the
weights shipped in weights/; this module only runs them in turn and reports what was written.
"""
from __future__ import annotations

import argparse
import importlib
import time
from pathlib import Path

from .errors import ConfigError
from .registry import FAMILIES


def run(out_dir, families=FAMILIES) -> dict[str, list[Path]]:
    out_dir = Path(out_dir)
    written = {}
    for family in families:
        module = importlib.import_module(f"genzoo.{family}.cli")
        start = time.perf_counter()
        paths = module.demo(out_dir / family)
        written[family] = [Path(p) for p in paths]
        print(f"[{family}] {time.perf_counter() - start:.1f} s: " + ", ".join(str(p) for p in written[family]), flush=True)
    return written


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="genzoo demo", description="Run every embedded (offline) model and write "
                                     "its outputs: generated text and PNG grids.")
    parser.add_argument("--out", default="genzoo-demo", help="output folder (default: ./genzoo-demo)")
    parser.add_argument("--families", nargs="+", choices=FAMILIES, default=list(FAMILIES), help="only these families")
    parser.add_argument("--overwrite", action="store_true", help="write into --out even if it holds files already")
    args = parser.parse_args(argv)
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out} is a file: name a folder")
    if out.is_dir() and any(out.iterdir()) and not args.overwrite:
        raise ConfigError(f"{out} holds files already: pass --overwrite to replace the demo's files in it, or choose "
                          f"another --out")
    start = time.perf_counter()
    written = run(args.out, args.families)
    count = sum(len(v) for v in written.values())
    print(f"genzoo demo: wrote {count} files to {args.out}/ in {time.perf_counter() - start:.1f} s")
    return 0
