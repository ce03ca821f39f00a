"""What every family's training loop shares: the config base, the run folder, precision, accumulation, DDP.

A run folder (`out_dir`) holds, for every family:

    model.safetensors, config.json   the latest model (save_pretrained: `genzoo sample out_dir` loads it)
    train_state.pt                   everything resume needs (weights, optimizers, scalers, step, per-rank RNG,
                                     the run's config), written atomically
    log.jsonl                        one line per `log_every` steps: step, mean losses, lr, seconds
    loss.png                         the loss curves, redrawn at every save (Pillow, no matplotlib)
    samples/                         step-N.png grids (or .txt) every `sample_every` steps
    checkpoints/step-N/              a model kept every `keep_every` steps, each loadable by from_pretrained

The rules are the same everywhere: a fresh run never replaces a folder holding a run (pass overwrite=True); a
resume needs train_state.pt; a resume takes the run's own architecture and data from the saved config, and a
setting given now that contradicts it is an error.

steps=0 (`--steps 0`, nanoGPT's eval_only) evaluates the starting model and trains nothing: the model a run would
start from (a fresh one, init_from, the model passed to train(), or with resume the run's saved model) is
evaluated as the family's loop evaluates (its validation loss, or the losses its loop logs), the record is printed
and returned (TrainResult.eval_only), and no model, checkpoint, train_state.pt or sample is written. In a new
out_dir the record is the one line of its log.jsonl; a folder that already holds a run is never modified: with
resume it is only read (nothing is written, its log included), and without resume it is refused, overwrite or not.

A loop built on this module looks like (see genzoo/gpt2/train.py for a whole one):

    with Run(config, family="gpt2", run_fields=RUN_FIELDS) as run:
        config = run.config                       # with a resume: the run's saved settings filled in
        model, opt = ..., ...
        run.restore(models={"model": model}, optimizers={"opt": opt})   # nothing on a fresh run
        run.progress(total)
        for step in range(run.step, total):
            batch = ...                           # drawn from run.data_rng (saved per rank) or epoch_indices()
            for part, weight in micro_batches(batch, config.grad_accum):
                with run.autocast():
                    loss = model(part)
                run.backward(loss * weight)
            run.optimizer_step(opt, model.parameters(), grad_clip=1.0)
            run.log(step + 1, {"loss": loss.item()}, lr=lr)
            if run.save_due(step + 1):
                run.save(step + 1, model.save_pretrained, {"model": model}, {"opt": opt})
        return run.result(model)
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import sys
import threading
import time
from dataclasses import MISSING, asdict, dataclass, field, fields
from pathlib import Path

import torch

from .errors import CheckpointError, ConfigError
from .runtime import resolve_device

STATE_NAME = "train_state.pt"
LOG_NAME = "log.jsonl"
PLOT_NAME = "loss.png"
SAMPLES_DIR = "samples"
CHECKPOINTS_DIR = "checkpoints"
# Files and folders a run writes: what overwrite=True removes (nothing else in out_dir is touched).
RUN_FILES = (STATE_NAME, LOG_NAME, PLOT_NAME, SAMPLES_DIR, CHECKPOINTS_DIR)
# Settings that define a run: a resume takes them from the saved config (see resolve_resume_config).
BASE_RUN_FIELDS = ("seed", "batch_size")
# Settings of this session only: never taken from the saved run.
SESSION_FIELDS = ("out_dir", "resume", "overwrite", "device", "progress", "threads")
PRECISIONS = ("auto", "float32", "bfloat16", "float16")


@dataclass
class TrainConfig:
    """The fields every family's TrainConfig has (families extend it and may change the defaults)."""
    out_dir: str = "runs/run"
    resume: bool = False          # continue the run in out_dir (its train_state.pt)
    overwrite: bool = False       # a fresh run may replace the run already in out_dir
    device: str = "auto"
    dtype: str = "auto"           # autocast: "auto" (bf16 on CUDA where supported, else fp16; fp32 on CPU),
                                  # "float32", "bfloat16", "float16" (CUDA only; with a saved GradScaler)
    seed: int = 0
    steps: int = 500              # optimizer steps in all (a resume may raise it to train on); 0: evaluate only
    epochs: int | None = None     # if set, steps = epochs * (steps in one pass over the data)
    batch_size: int = 16          # examples per optimizer step (per process under DDP)
    lr: float = 1e-3
    grad_accum: int = 1           # split each batch into this many micro-batches (same result, less memory)
    save_every: int = 100         # steps between saves of the model and train_state.pt (and at the end)
    keep_every: int = 0           # steps between kept checkpoints/step-N/ (0: none)
    sample_every: int = 100       # steps between samples/step-N files (0: only at the end)
    log_every: int = 10           # steps between log.jsonl lines
    progress: bool = True         # a progress bar showing the latest loss
    threads: int | None = None    # torch.set_num_threads (1 is often fastest for small models on a busy CPU)

    def __post_init__(self):
        self.out_dir = os.fspath(self.out_dir)
        if int(self.steps) < 0:
            raise ConfigError(f"steps must be >= 0 (0 evaluates the starting model without training), not {self.steps}")
        for name in ("batch_size", "grad_accum", "save_every", "log_every"):
            if int(getattr(self, name)) < 1:
                raise ConfigError(f"{name} must be >= 1, not {getattr(self, name)}")
        for name in ("keep_every", "sample_every"):
            if int(getattr(self, name)) < 0:
                raise ConfigError(f"{name} must be >= 0 (0 turns it off), not {getattr(self, name)}")
        if self.epochs is not None and self.epochs < 1:
            raise ConfigError(f"epochs must be >= 1, not {self.epochs}")
        if self.lr <= 0:
            raise ConfigError(f"lr must be > 0, not {self.lr}")
        if self.grad_accum > self.batch_size:
            raise ConfigError(f"grad_accum ({self.grad_accum}) cannot exceed batch_size ({self.batch_size}): "
                              f"each micro-batch needs at least one example")
        if self.dtype not in PRECISIONS:
            raise ConfigError(f"dtype must be one of {PRECISIONS}, not {self.dtype!r}")
        if self.threads is not None and self.threads < 1:
            raise ConfigError(f"threads must be >= 1, not {self.threads}")

    @property
    def eval_only(self) -> bool:
        """steps=0 without epochs: evaluate the starting model, train nothing (see the module docstring)."""
        return self.steps == 0 and not self.epochs

    def total_steps(self, steps_per_epoch: int) -> int:
        """Optimizer steps of the whole run: epochs * steps_per_epoch when epochs is set, else steps."""
        return self.epochs * max(1, steps_per_epoch) if self.epochs else self.steps


@dataclass
class TrainResult:
    out_dir: Path
    step: int                                     # the step the run reached
    losses: dict = field(default_factory=dict)    # the last logged line's losses
    history: list = field(default_factory=list)   # every log line written by this call
    seconds: float = 0.0
    model: object = None                          # the trained model (for GANs: the generator)
    eval_only: bool = False                       # steps=0: losses hold the starting model's evaluation
    start_step: int = 0                           # the step this call started from (a resume: the saved one)
    family: str = ""

    @property
    def trained_steps(self) -> int:
        return 0 if self.eval_only else max(0, self.step - self.start_step)


class Interrupted(KeyboardInterrupt):
    """Ctrl-C during training: the run was saved at the end of the step in progress (str() says how to go on)."""

    def __str__(self):
        return str(self.args[0]) if self.args else "interrupted"


def summary(result: TrainResult, use: str) -> str:
    """The one line every `genzoo train` ends with; `use` is the command that uses the trained model."""
    if result.trained_steps == 0:
        return (f"nothing to train: the {result.family} run in {result.out_dir} is at step {result.step} already, "
                f"which --steps does not exceed; nothing was written (pass a larger --steps to train on)")
    losses = ", ".join(f"{k} {v:.4g}" for k, v in result.losses.items())
    minutes, seconds = divmod(round(result.seconds), 60)
    return (f"trained {result.family} to step {result.step} ({result.trained_steps} steps now, {minutes}:{seconds:02d} "
            f"in all){': ' + losses if losses else ''}; saved to {result.out_dir} (use it: {use})")


def eval_indices(n: int, seed: int, limit: int = 1024) -> torch.Tensor:
    """The examples an evaluation uses: all n, or a seeded random `limit` of them (the same at every call)."""
    if n <= limit:
        return torch.arange(n)
    return torch.randperm(n, generator=torch.Generator().manual_seed(seed * 1_000_003 + 12_345))[:limit]


# --- the state file ---------------------------------------------------------------------------------------------

def save_state(path, state: dict) -> Path:
    """torch.save to a temporary name, then rename: a crash while saving never leaves a half-written state."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.part")
    try:
        torch.save(state, tmp)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path


def load_state(path) -> dict:
    """Read a train_state.pt; weights_only=True (tensors, numbers, strings and containers: never code)."""
    path = Path(path)
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError as e:
        raise CheckpointError(f"no training state at {path}") from e
    except Exception as e:  # a truncated file or a pickle holding code: both a bad state file
        raise CheckpointError(f"{path} is not a readable training state ({type(e).__name__}: {e}); "
                              f"start again with overwrite=True (--overwrite)") from e


def rng_state(generator: torch.Generator | None = None) -> dict:
    """This process's random states, all as CPU tensors (set_state refuses CUDA tensors)."""
    state = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = [s.cpu() for s in torch.cuda.get_rng_state_all()]
    if generator is not None:
        state["data"] = generator.get_state().cpu()
    return state


def set_rng_state(state: dict, generator: torch.Generator | None = None) -> None:
    torch.set_rng_state(state["torch"].cpu())
    if "cuda" in state and torch.cuda.is_available():
        for i, s in enumerate(state["cuda"][:torch.cuda.device_count()]):
            torch.cuda.set_rng_state(s.cpu(), i)
    if generator is not None and "data" in state:
        generator.set_state(state["data"].cpu())


# --- resume: the run's own settings ------------------------------------------------------------------------------

def _plain(value):
    return [_plain(v) for v in value] if isinstance(value, (list, tuple)) else value


def resolve_resume_config(config, saved: dict, run_fields, out_dir="the run"):
    """The config to resume with. Every setting left at its default takes the run's saved value (so a resume
    repeats nothing, and continues to the run's own step count). A setting given now keeps the new value (a
    longer run, a lower lr), except the run-defining ones (run_fields: architecture, data, seed) where a value
    that differs from the run's is an error: nothing is silently ignored."""
    explicit = getattr(config, "explicit_fields", None)  # set by the command line: the options typed
    updates, conflicts = {}, []
    for spec in fields(config):
        name = spec.name
        if name in SESSION_FIELDS or name not in saved:
            continue
        given, was = getattr(config, name), saved[name]
        if _plain(given) == _plain(was):
            continue
        default = spec.default_factory() if spec.default_factory is not MISSING else spec.default
        if (name not in explicit) if explicit is not None else (_plain(given) == _plain(default)):
            updates[name] = tuple(was) if isinstance(default, tuple) and was is not None else was
        elif name in run_fields:
            conflicts.append(f"{name}={given!r} (the run used {was!r})")
    if conflicts:
        raise ConfigError(f"cannot resume {out_dir} with {', '.join(conflicts)}: a resume continues the run with its "
                          f"own settings, so leave these out, or start a new run (another out_dir, or overwrite)")
    return type(config)(**{**{f.name: getattr(config, f.name) for f in fields(config)}, **updates})


# --- precision ----------------------------------------------------------------------------------------------------

def resolve_precision(name: str, device: torch.device) -> torch.dtype:
    """The autocast dtype: fp32 means no autocast. fp16 needs CUDA (its GradScaler); bf16 needs hardware support."""
    if name == "auto":
        if device.type != "cuda":
            return torch.float32
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if name == "float16" and device.type != "cuda":
        raise ConfigError(f"dtype float16 trains on CUDA only (with loss scaling); on {device.type} use bfloat16 "
                          f"or float32")
    if name == "bfloat16" and device.type == "cuda" and not torch.cuda.is_bf16_supported():
        raise ConfigError("this GPU does not support bfloat16: use dtype float16 (loss-scaled) or float32")
    return {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}[name]


def micro_batches(batch, n: int):
    """Split a batch (a tensor or a tuple of tensors, first dim = examples) into n parts, each with the weight
    len(part) / len(batch): the weighted sum of the parts' mean losses is the whole batch's mean loss."""
    tensors = batch if isinstance(batch, (tuple, list)) else (batch,)
    total = tensors[0].shape[0]
    parts = list(zip(*(torch.tensor_split(t, n) for t in tensors)))
    for part in parts:
        size = part[0].shape[0]
        yield (part if isinstance(batch, (tuple, list)) else part[0]), size / total


def epoch_indices(n: int, batch_size: int, step: int, seed: int, rank: int = 0, world: int = 1) -> torch.Tensor:
    """The example indices of `step` for process `rank`: each epoch is a fresh permutation drawn from
    (seed, epoch), ranks take disjoint slices of it, and a folder smaller than a batch is cycled through.
    A function of the step alone, so a resumed run (or another rank) draws exactly what it would have."""
    per_step = batch_size * world
    steps_per_epoch = max(1, n // per_step)
    epoch, offset = divmod(step, steps_per_epoch)
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed * 1_000_003 + epoch))
    start = offset * per_step + rank * batch_size
    return order[torch.arange(start, start + batch_size) % n]


def steps_per_epoch(n: int, batch_size: int, world: int = 1) -> int:
    return max(1, n // (batch_size * world))


# --- distributed --------------------------------------------------------------------------------------------------

class Distributed:
    """The process group under torchrun (WORLD_SIZE > 1): nccl on CUDA (one GPU per LOCAL_RANK), gloo on CPU.

    Gradients are averaged with one all-reduce after the backward passes of a step (not with
    DistributedDataParallel): GAN and CycleGAN loops call a discriminator several times per backward, which DDP's
    reducer does not allow, and one call per optimizer step also skips the all-reduces accumulation would waste.
    """

    def __init__(self, device_name="auto"):
        self.world = int(os.environ.get("WORLD_SIZE", "1"))
        self.rank = int(os.environ.get("RANK", "0"))
        self.device = resolve_device(device_name)
        self.owns_group = False
        if self.world == 1:
            return
        import torch.distributed as dist

        if self.device.type == "cuda":
            self.device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
            torch.cuda.set_device(self.device)
        if not dist.is_initialized():
            if self.device.type == "cuda":
                dist.init_process_group("nccl", device_id=self.device)
            else:
                dist.init_process_group("gloo")
            self.owns_group = True

    @property
    def main(self) -> bool:
        return self.rank == 0

    def average_gradients(self, parameters) -> None:
        if self.world == 1:
            return
        import torch.distributed as dist
        from torch._utils import _flatten_dense_tensors, _unflatten_dense_tensors

        grads = [p.grad for p in parameters if p.grad is not None]
        if not grads:
            return
        flat = _flatten_dense_tensors(grads)
        dist.all_reduce(flat)
        flat /= self.world
        for g, averaged in zip(grads, _unflatten_dense_tensors(flat, grads)):
            g.copy_(averaged)

    def mean(self, value: float) -> float:
        if self.world == 1:
            return value
        import torch.distributed as dist

        t = torch.tensor([value], dtype=torch.float64, device=self.device)
        dist.all_reduce(t)
        return float(t) / self.world

    def gather(self, obj) -> list:
        """Every rank's obj, on every rank (used for the per-rank random states)."""
        if self.world == 1:
            return [obj]
        import torch.distributed as dist

        out = [None] * self.world
        dist.all_gather_object(out, obj)
        return out

    def barrier(self):
        if self.world > 1:
            import torch.distributed as dist

            dist.barrier()

    def close(self):
        if self.owns_group:
            import torch.distributed as dist

            if dist.is_initialized():
                dist.destroy_process_group()
            self.owns_group = False


# --- the run ----------------------------------------------------------------------------------------------------

class Run:
    """One training run in config.out_dir: folder rules, resume, precision, logging, saving. A context manager:
    the process group it opened is torn down on the way out, even after an error."""

    def __init__(self, config: TrainConfig, family: str, run_fields=()):
        if config.threads:
            torch.set_num_threads(config.threads)
        self.family = family
        self.out_dir = Path(config.out_dir).expanduser()
        self.dist = Distributed(config.device)
        try:
            self.eval_only = config.eval_only  # as asked now: a resume must not bring the run's epochs back
            self.state = self._check_folder(config)
            if self.state is not None:
                config = resolve_resume_config(config, self.state["config"], BASE_RUN_FIELDS + tuple(run_fields),
                                               self.out_dir)
            self.config = config
            self.device = self.dist.device
            self.amp_dtype = resolve_precision(config.dtype, self.device)
            self.step = int(self.state["step"]) if self.state else 0
            self.start_step = self.step
            self._interrupted, self._sigint = False, None
            self.scalers: dict[str, torch.amp.GradScaler] = {}
            self.data_rng = torch.Generator().manual_seed(config.seed * 1_000_003 + 7 * self.dist.rank + 1)
            self.history, self._window, self._bar, self.total = [], {}, None, None
            self._started = time.time()
            self._seconds_before = float(self.state.get("seconds", 0.0)) if self.state else 0.0
            if self.state is None:
                torch.manual_seed(config.seed)  # the same initial weights on every rank
        except BaseException:
            self.dist.close()
            raise

    def __enter__(self):
        # Ctrl-C asks for a save at the end of the step in progress (see save_due); a second one stops at once.
        self._interrupted, self._sigint = False, None
        if threading.current_thread() is threading.main_thread() and not self.eval_only:
            self._sigint = signal.signal(signal.SIGINT, self._on_interrupt)
        return self

    def __exit__(self, *exc):
        if self._sigint is not None:
            signal.signal(signal.SIGINT, self._sigint)
            self._sigint = None
        if self._bar is not None:
            self._bar.close()
        self.dist.close()
        return False

    def _on_interrupt(self, signum, frame):
        if self._interrupted or self.total is None:   # a second Ctrl-C, or no step taken yet: stop now
            raise KeyboardInterrupt
        self._interrupted = True
        print(f"\ninterrupted: saving the run at the end of this step (Ctrl-C again to stop without saving)",
              file=sys.stderr, flush=True)

    def interrupted(self) -> bool:
        """Ctrl-C was pressed (on any rank: under torchrun every rank saves at the same step)."""
        if self.dist.world > 1:
            self._interrupted = self.dist.mean(float(self._interrupted)) > 0
        return self._interrupted

    # -- folder rules
    def _check_folder(self, config) -> dict | None:
        state_path = self.out_dir / STATE_NAME
        if config.resume:
            if not state_path.is_file():
                raise CheckpointError(self._no_state_message())
            state = load_state(state_path)
            if state.get("family") != self.family:
                raise CheckpointError(f"cannot resume {self.out_dir}: it holds a {state.get('family')} run, not "
                                      f"{self.family}")
            if len(state["rng"]) != self.dist.world and not self.eval_only:
                raise ConfigError(f"{self.out_dir} was trained by {len(state['rng'])} process(es); resume it with "
                                  f"the same number (now {self.dist.world}) so every rank gets its own data back")
            if not self.eval_only:
                self._truncate_log(int(state["step"]))
            return state
        holds_run = state_path.is_file() or (self.out_dir / LOG_NAME).is_file() or (self.out_dir / "config.json").is_file()
        if holds_run and self.eval_only:
            raise ConfigError(f"steps=0 only evaluates and never replaces a run: {self.out_dir} already holds a "
                              f"training run, a model or an evaluation's log.jsonl. Evaluate that run in place with resume (--resume; its folder "
                              f"is only read), or choose another --out; nothing was changed")
        if holds_run and not config.overwrite:
            if not state_path.is_file() and (self.out_dir / LOG_NAME).is_file():
                raise ConfigError(f"{self.out_dir} holds a run that stopped before its first save (a {LOG_NAME} but "
                                  f"no {STATE_NAME}), so there is nothing to resume: start it again with --overwrite "
                                  f"(overwrite=True; it removes only the run's own files), or choose another --out; "
                                  f"nothing was changed")
            raise ConfigError(f"{self.out_dir} already holds a training run or model: resume it (--resume), choose "
                              f"another --out, or pass --overwrite to replace it; nothing was changed")
        if holds_run and self.dist.main:
            for name in RUN_FILES:
                path = self.out_dir / name
                shutil.rmtree(path) if path.is_dir() else path.unlink(missing_ok=True)
        self.dist.barrier()
        return None

    def _no_state_message(self) -> str:
        where = self.out_dir
        if not where.exists():
            return f"cannot resume: {where} does not exist (no run there yet): start the run without --resume"
        if (where / LOG_NAME).is_file():
            return (f"cannot resume {where}: the run there stopped before its first save (a {LOG_NAME} but no "
                    f"{STATE_NAME}); start it again with --overwrite (overwrite=True; it removes only the run's own "
                    f"files), or choose another --out")
        if (where / "config.json").is_file():
            return (f"cannot resume {where}: it holds a model but no {STATE_NAME} (not a training run, or one "
                    f"saved without its state); train it further in a new --out with --init-from where the family "
                    f"has it, or start a run there with --overwrite")
        return f"cannot resume: no {STATE_NAME} in {where} (no run there yet): start the run without --resume"

    def _truncate_log(self, step: int):
        """Drop log lines past the saved step: the interrupted part of the run is about to be redone."""
        log = self.out_dir / LOG_NAME
        if self.dist.main and log.is_file():
            lines = [line for line in log.read_text().splitlines() if line.strip()]
            kept = [line for line in lines if json.loads(line).get("step", 0) <= step]
            if len(kept) != len(lines):
                log.write_text("".join(line + "\n" for line in kept))

    # -- precision and optimisation
    def autocast(self):
        enabled = self.amp_dtype != torch.float32
        return torch.autocast(self.device.type, dtype=self.amp_dtype if enabled else torch.bfloat16, enabled=enabled)

    def scaler(self, name: str = "model") -> torch.amp.GradScaler:
        """A GradScaler per optimizer (enabled for float16 only); its state is saved and restored with the run."""
        if name not in self.scalers:
            enabled = self.amp_dtype == torch.float16
            self.scalers[name] = torch.amp.GradScaler("cuda" if enabled else "cpu", enabled=enabled)
            saved = (self.state or {}).get("scalers", {}).get(name)
            if enabled and saved:  # a run saved with scaling off (bf16, fp32) has no scale to restore
                self.scalers[name].load_state_dict(saved)
        return self.scalers[name]

    def backward(self, loss: torch.Tensor, scaler: str = "model") -> None:
        self.scaler(scaler).scale(loss).backward()

    def optimizer_step(self, optimizer, parameters, scaler: str = "model", grad_clip: float | None = None) -> None:
        """Average gradients over ranks, unscale, clip, step, and zero the gradients."""
        parameters = [p for p in parameters if p.requires_grad]
        self.dist.average_gradients(parameters)
        scale = self.scaler(scaler)
        if grad_clip:
            scale.unscale_(optimizer)
            torch.nn.utils.clip_grad_norm_(parameters, grad_clip)
        scale.step(optimizer)
        scale.update()
        optimizer.zero_grad(set_to_none=True)

    # -- resume
    def restore(self, models: dict | None = None, optimizers: dict | None = None, extra=None) -> dict:
        """Load the saved modules, optimizers and this rank's random states; returns the family's saved extras."""
        if self.state is None:
            return {}
        for name, module in (models or {}).items():
            module.load_state_dict(self.state["models"][name])
        for name, optimizer in (optimizers or {}).items():
            optimizer.load_state_dict(self.state["optimizers"][name])
        rank = min(self.dist.rank, len(self.state["rng"]) - 1)  # steps=0 may evaluate with another process count
        set_rng_state(self.state["rng"][rank], self.data_rng)
        return self.state.get("extra", {})

    # -- logging
    def due(self, step: int, every: int) -> bool:
        """Every `every` steps (0: never), and at the last step (known once progress(total) was called)."""
        return step == self.total or (every > 0 and step % every == 0)

    def save_due(self, step: int) -> bool:
        """A save every save_every steps, at the last step, and whenever a checkpoint is to be kept."""
        keep = self.config.keep_every
        return self.due(step, self.config.save_every) or (keep > 0 and step % keep == 0) or self.interrupted()

    def progress(self, total: int):
        """Start the progress bar (rank 0, if config.progress) for a run of `total` steps."""
        from tqdm.auto import tqdm

        self.total = total
        self._bar = tqdm(total=total, initial=self.step, desc=f"train {self.family}", unit="step", dynamic_ncols=True,
                         disable=not (self.config.progress and self.dist.main))
        return self._bar

    def log(self, step: int, losses: dict, lr: float | None = None) -> None:
        """Record one step's losses: the bar shows them at once; log.jsonl gets their mean every log_every."""
        self.step = step
        for k, v in losses.items():
            self._window.setdefault(k, []).append(float(v))
        if self._bar is not None:
            self._bar.set_postfix({k: f"{float(v):.4f}" for k, v in losses.items()}, refresh=False)
            self._bar.update(step - self._bar.n)
        if not self.due(step, self.config.log_every):
            return
        means = {k: self.dist.mean(sum(v) / len(v)) for k, v in self._window.items()}
        self._window = {}
        record = {"step": step, **{k: round(v, 6) for k, v in means.items()}}
        if lr is not None:
            record["lr"] = lr
        record["seconds"] = round(self.seconds, 2)
        self.history.append(record)
        if self.dist.main:
            self.out_dir.mkdir(parents=True, exist_ok=True)
            with open(self.out_dir / LOG_NAME, "a") as f:
                f.write(json.dumps(record) + "\n")
            if not self.config.progress:
                print(" ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}" for k, v in record.items()),
                      flush=True)

    @property
    def seconds(self) -> float:
        return self._seconds_before + time.time() - self._started

    def sample_path(self, step: int, suffix: str = ".png") -> Path:
        return self.out_dir / SAMPLES_DIR / f"step-{step:07d}{suffix}"

    # -- saving
    def save(self, step: int, save_model, models: dict, optimizers: dict, extra: dict | None = None) -> None:
        """Write the model (save_model(folder)), then train_state.pt; keep a copy every keep_every steps.

        Every rank must call it (the random states are gathered); only rank 0 writes."""
        rngs = self.dist.gather(rng_state(self.data_rng))
        if not self.dist.main:
            if self._interrupted:
                raise Interrupted(f"interrupted at step {step} (rank {self.dist.rank}): the run is saved by rank 0")
            return
        self.out_dir.mkdir(parents=True, exist_ok=True)
        save_model(self.out_dir)
        state = {"family": self.family, "step": step, "config": json.loads(json.dumps(asdict(self.config), default=str)), "seconds": self.seconds,
                 "models": {k: m.state_dict() for k, m in models.items()},
                 "optimizers": {k: o.state_dict() for k, o in optimizers.items()},
                 "scalers": {k: s.state_dict() for k, s in self.scalers.items() if s.is_enabled()},
                 "rng": rngs, "extra": extra or {}}
        save_state(self.out_dir / STATE_NAME, state)
        if self.config.keep_every and step % self.config.keep_every == 0:
            save_model(self.out_dir / CHECKPOINTS_DIR / f"step-{step}")
        plot_losses(self.out_dir / LOG_NAME, self.out_dir / PLOT_NAME)
        if self._interrupted:
            raise Interrupted(f"interrupted at step {step}: the run is saved in {self.out_dir}; continue it with "
                              f"`genzoo train {self.family} --out {self.out_dir} --resume` (library: resume=True)")

    def evaluation(self, metrics: dict, model=None) -> TrainResult:
        """steps=0: record the starting model's evaluation (metrics: name -> number, averaged over ranks), print it,
        and write it to log.jsonl in a new run folder (a resumed run's folder is only read). Nothing else is
        written."""
        record = {"step": self.step, **{k: round(self.dist.mean(float(v)), 6) for k, v in metrics.items()},
                  "seconds": round(self.seconds, 2)}
        self.history.append(record)
        if self.dist.main:
            if self.state is None:
                self.out_dir.mkdir(parents=True, exist_ok=True)
                with open(self.out_dir / LOG_NAME, "a") as f:
                    f.write(json.dumps(record) + "\n")
            where = f"{self.out_dir}/{LOG_NAME}" if self.state is None else "not written: the run's folder is only read"
            print(f"evaluation of the {self.family} model at step {self.step} (steps=0, nothing trained): "
                  + " ".join(f"{k} {v:.4f}" for k, v in record.items() if k not in ("step", "seconds"))
                  + f" ({where})", flush=True)
        result = self.result(model)
        result.eval_only = True
        return result

    def result(self, model=None) -> TrainResult:
        last = self.history[-1] if self.history else {}
        losses = {k: v for k, v in last.items() if k not in ("step", "lr", "seconds", "epoch")}
        return TrainResult(self.out_dir, self.step, losses, self.history, self.seconds, model,
                           start_step=self.start_step, family=self.family)


# --- the loss plot ----------------------------------------------------------------------------------------------

COLORS = [(31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189), (140, 86, 75),
          (227, 119, 194), (127, 127, 127)]


def plot_losses(log_path, png_path, width: int = 640, height: int = 400) -> Path | None:
    """Draw every loss column of log.jsonl against the step, one colour each, with a legend; Pillow only."""
    from PIL import Image, ImageDraw, ImageFont

    log_path = Path(log_path)
    if not log_path.is_file():
        return None
    records = [json.loads(line) for line in log_path.read_text().splitlines() if line.strip()]
    names = [k for k in dict.fromkeys(k for r in records for k in r) if k not in ("step", "lr", "seconds", "epoch")]
    series = {k: [(r["step"], r[k]) for r in records if isinstance(r.get(k), (int, float)) and r[k] == r[k]]
              for k in names}
    points = [p for s in series.values() for p in s]
    if not points:
        return None
    image = Image.new("RGB", (width, height), "white")
    draw, font = ImageDraw.Draw(image), ImageFont.load_default()
    left, right, top, bottom = 60, width - 15, 15, height - 35
    x0, x1 = min(p[0] for p in points), max(p[0] for p in points)
    y0, y1 = min(p[1] for p in points), max(p[1] for p in points)
    x1, y1 = (x1 if x1 > x0 else x0 + 1), (y1 if y1 > y0 else y0 + 1)

    def xy(step, value):
        return (left + (step - x0) / (x1 - x0) * (right - left), bottom - (value - y0) / (y1 - y0) * (bottom - top))

    draw.rectangle((left, top, right, bottom), outline="black")
    for i in range(5):  # axis ticks: 5 values on each axis
        value, step = y0 + (y1 - y0) * i / 4, x0 + (x1 - x0) * i / 4
        y, x = xy(x0, value)[1], xy(step, y0)[0]
        draw.line((left - 4, y, left, y), fill="black")
        draw.text((2, y - 6), f"{value:.3g}", fill="black", font=font)
        draw.line((x, bottom, x, bottom + 4), fill="black")
        draw.text((x - 12, bottom + 6), f"{step:.0f}", fill="black", font=font)
    draw.text(((left + right) // 2 - 10, height - 14), "step", fill="black", font=font)
    for i, (name, pts) in enumerate(series.items()):
        color = COLORS[i % len(COLORS)]
        if len(pts) > 1:
            draw.line([xy(*p) for p in pts], fill=color, width=2)
        elif pts:
            x, y = xy(*pts[0])
            draw.ellipse((x - 2, y - 2, x + 2, y + 2), fill=color)
        draw.line((right - 110, top + 10 + 14 * i, right - 90, top + 10 + 14 * i), fill=color, width=3)
        draw.text((right - 85, top + 4 + 14 * i), name, fill="black", font=font)
    png_path = Path(png_path)
    tmp = png_path.with_name(f".{png_path.name}.{os.getpid()}.part")
    image.save(tmp, format="PNG")
    os.replace(tmp, png_path)
    return png_path


# --- command lines ------------------------------------------------------------------------------------------------

class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """--help with every option's default, including options without help text; flags (--flip) show none."""

    _NO_HELP = "\0"

    def _format_action(self, action):
        if action.help is None and action.option_strings:
            action.help = self._NO_HELP
        return super()._format_action(action)

    def _get_help_string(self, action):
        if action.help == self._NO_HELP:
            return "default: %(default)s"
        if action.nargs == 0:
            return action.help
        return super()._get_help_string(action)


def add_common_arguments(parser, defaults: TrainConfig, epochs: bool = False) -> None:
    """The options every `genzoo train F` shares, spelled the same everywhere (defaults from the family's config)."""
    parser.add_argument("--out", dest="out_dir", default=defaults.out_dir, help="run folder")
    parser.add_argument("--resume", action="store_true", help="continue the run in --out with its own settings")
    parser.add_argument("--overwrite", action="store_true", help="replace the run already in --out")
    parser.add_argument("--steps", type=int, default=defaults.steps,
                        help="optimizer steps in all (0: evaluate the starting model, train nothing)")
    if epochs:
        parser.add_argument("--epochs", type=int, default=defaults.epochs, help="passes over the data (replaces --steps)")
    parser.add_argument("--batch-size", type=int, default=defaults.batch_size, help="examples per optimizer step")
    parser.add_argument("--grad-accum", type=int, default=defaults.grad_accum,
                        help="split each batch into this many micro-batches (same result, less memory)")
    parser.add_argument("--lr", type=float, default=defaults.lr, help="learning rate")
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument("--save-every", type=int, default=defaults.save_every, help="steps between saves")
    parser.add_argument("--keep-every", type=int, default=defaults.keep_every,
                        help="steps between kept checkpoints/step-N (0: none)")
    parser.add_argument("--sample-every", type=int, default=defaults.sample_every,
                        help="steps between samples/ files (0: only at the end)")
    parser.add_argument("--log-every", type=int, default=defaults.log_every, help="steps between log.jsonl lines")
    parser.add_argument("--device", default=defaults.device, help="auto, cpu, cuda, cuda:1, mps")
    parser.add_argument("--dtype", default=defaults.dtype, choices=PRECISIONS,
                        help="autocast precision (auto: bf16/fp16 on CUDA, fp32 on CPU)")
    parser.add_argument("--threads", type=int, default=defaults.threads, help="CPU threads (torch.set_num_threads)")
    parser.add_argument("--no-progress", dest="progress", action="store_false",
                        help="plain log lines instead of the progress bar")


def parse_args(parser, argv):
    """parser.parse_args(argv), plus the set of options the user actually typed (args.explicit): a resume takes
    every other setting from the run, even one typed with its default value."""
    unset = object()
    probe = argparse.Namespace(**{a.dest: unset for a in parser._actions if a.dest != "help"})
    parser.parse_args(argv, namespace=probe)
    args = parser.parse_args(argv)
    args.explicit = {k for k, v in vars(probe).items() if v is not unset}
    return args


def config_from_args(config_class, args, **overrides):
    """Build config_class from an argparse namespace: attributes named like its fields, then overrides (computed
    from options of the same name). Records which fields the user typed (see parse_args)."""
    names = {f.name for f in fields(config_class)}
    values = {k: v for k, v in vars(args).items() if k in names}
    config = config_class(**{**values, **overrides})
    if hasattr(args, "explicit"):
        config.explicit_fields = set(args.explicit) & names
    return config
