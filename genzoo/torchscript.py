"""Read the tensors of a TorchScript archive (`torch.jit.script(model).save("model.pt")`) without running it.

A TorchScript archive is a zip: `code/` holds the model's TorchScript source, `data.pkl` pickles the module tree
(objects of classes named `__torch__.<module path>`, each with its attributes: submodules, tensors, flags) and
`data/<n>` holds the raw bytes of each tensor storage. torch.jit.load would compile and run that code; here the
code is never read. data.pkl is unpickled with an unpickler that knows a few names only (the tensor rebuild
function, the storage types, OrderedDict, TorchScript's typed-list builders and a placeholder for every
`__torch__` class); anything else is refused. The module tree then flattens into a state dict with the module's own dotted names.
"""
from __future__ import annotations

import pickle
import zipfile
from collections import OrderedDict
from pathlib import Path

import torch

from .errors import CheckpointError

CONVERSION_HINT = ("in a trusted environment (it runs the archive's code), convert it once with: python -c \"import "
                   "torch; from safetensors.torch import save_file; m = torch.jit.load('{path}', map_location='cpu'); "
                   "save_file({{k: v.contiguous() for k, v in m.state_dict().items()}}, 'model.safetensors')\"")


def is_torchscript(path) -> bool:
    """True for a zip whose data.pkl sits beside a code/ folder (torch.save zips have no code/)."""
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
    except (zipfile.BadZipFile, OSError):
        return False
    return any(n.endswith("/data.pkl") for n in names) and any("/code/" in n for n in names)


class ScriptedModule:
    """Stands in for every `__torch__.*` class: it only keeps the attributes the pickle gives it."""

    qualified_name = "?"


STORAGE_DTYPES = {"FloatStorage": torch.float32, "DoubleStorage": torch.float64, "HalfStorage": torch.float16,
                  "BFloat16Storage": torch.bfloat16, "LongStorage": torch.int64, "IntStorage": torch.int32,
                  "ShortStorage": torch.int16, "CharStorage": torch.int8, "ByteStorage": torch.uint8,
                  "BoolStorage": torch.bool}


def _rebuild_tensor(flat, offset, size, stride, *unused):
    # `flat` is the storage read by persistent_load; the copy keeps the tensor valid after the zip is closed.
    return flat.as_strided(tuple(size), tuple(stride), offset).clone()


# TorchScript pickles typed attributes (a conv's stride, padding ...) through these: plain data in, plain data out.
LIST_BUILDERS = {"build_intlist": list, "build_doublelist": list, "build_boollist": list, "build_tensorlist": list,
                 "build_complexlist": list, "restore_type_tag": lambda value, type_str: value}


class _ArchiveUnpickler(pickle.Unpickler):
    def __init__(self, file, archive: zipfile.ZipFile, prefix: str, path):
        super().__init__(file)
        self.archive, self.prefix, self.path = archive, prefix, path

    def find_class(self, module, name):
        if module.startswith("__torch__"):
            return type(name, (ScriptedModule,), {"qualified_name": f"{module}.{name}"})
        if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
            return _rebuild_tensor
        if module == "torch.jit._pickle" and name in LIST_BUILDERS:
            return LIST_BUILDERS[name]
        if (module, name) == ("collections", "OrderedDict"):
            return OrderedDict
        if module == "torch" and name in STORAGE_DTYPES:
            return STORAGE_DTYPES[name]  # persistent_load only needs the element type
        raise CheckpointError(f"{self.path}: its TorchScript data.pkl needs {module}.{name}, which genzoo does not "
                              f"unpickle (it reads tensors only); " + CONVERSION_HINT.format(path=self.path))

    def persistent_load(self, pid):
        kind, dtype, key, _location, numel = pid
        if kind != "storage" or not isinstance(dtype, torch.dtype):
            raise CheckpointError(f"{self.path}: unknown storage record {pid!r} in the TorchScript archive")
        raw = bytearray(self.archive.read(f"{self.prefix}data/{key}"))
        if not raw:
            return torch.empty(0, dtype=dtype)
        return torch.frombuffer(raw, dtype=dtype)[:numel]


def read_torchscript(path) -> dict[str, torch.Tensor]:
    """Every tensor attribute of a TorchScript module, by dotted name ("encoder.0.weight"), as state_dict() has them."""
    path = Path(path)
    try:
        with zipfile.ZipFile(path) as archive:
            data_pkl = next(n for n in archive.namelist() if n.endswith("/data.pkl"))
            prefix = data_pkl[: -len("data.pkl")]
            with archive.open(data_pkl) as f:
                root = _ArchiveUnpickler(f, archive, prefix, path).load()
    except CheckpointError:
        raise
    except (zipfile.BadZipFile, KeyError, pickle.UnpicklingError, ValueError, TypeError, EOFError) as e:
        raise CheckpointError(f"{path} looks like a TorchScript archive but its tensors could not be read ({e}); "
                              + CONVERSION_HINT.format(path=path)) from e
    state_dict = _flatten(root)
    if not state_dict:
        raise CheckpointError(f"{path} is a TorchScript archive without tensor attributes; "
                              + CONVERSION_HINT.format(path=path))
    return state_dict


def _flatten(obj, prefix: str = "") -> dict[str, torch.Tensor]:
    out = {}
    for name, value in vars(obj).items() if isinstance(obj, ScriptedModule) else ():
        if isinstance(value, torch.Tensor):
            out[prefix + name] = value
        elif isinstance(value, ScriptedModule):
            out.update(_flatten(value, f"{prefix}{name}."))
    return out
