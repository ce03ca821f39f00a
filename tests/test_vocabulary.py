"""The shared vocabulary: genzoo.registry.Registry (one collision policy) and genzoo.cli's common options."""
import argparse

import pytest

from genzoo.cli import add_common_options, add_deprecated_alias, finish_common_options, parse_size
from genzoo.errors import ConfigError
from genzoo.registry import Registry


def test_registry_refuses_a_taken_name_unless_overwrite():
    r = Registry("widget", how="@WIDGETS.register('name')")
    r.register("a", int)
    r.register("a", int)                       # the same object again is not a collision
    with pytest.raises(ConfigError, match="taken by builtins.int.*overwrite=True"):
        r.register("a", float)
    r.register("a", float, overwrite=True)
    assert r.lookup("a") is float


def test_registry_decorator_aliases_case_and_close_names():
    r = Registry("scheduler", case_sensitive=False, how="@register_scheduler('name')")

    @r.register("DDIM", aliases=("ddim-eta",))
    class DDIM:
        pass

    assert r.lookup("ddim") is DDIM and r["ddim-eta"] is DDIM and r.names() == ["ddim", "ddim-eta"]
    with pytest.raises(ConfigError, match=r"--scheduler 'ddm' is not known: one of ddim, ddim-eta.*Did you mean"):
        r.lookup("ddm", option="--scheduler")
    with pytest.raises(ConfigError, match="non-empty string"):
        r.register("", DDIM)


def test_registry_runs_its_check():
    def only_classes(name, obj):
        if not isinstance(obj, type):
            raise ConfigError(f"{name}: a class, please")

    r = Registry("backbone", check=only_classes)
    with pytest.raises(ConfigError, match="a class"):
        r.register("x", 3)
    assert "x" not in r


def parser(**kwargs):
    p = argparse.ArgumentParser()
    add_common_options(p, **kwargs)
    return p


def test_common_options_model_positional_alias_and_default():
    p = parser(model_default="shakespeare-char", n=4, out="x.png")
    assert finish_common_options(p.parse_args([])).model == "shakespeare-char"
    assert finish_common_options(p.parse_args(["gpt2"])).model == "gpt2"
    assert finish_common_options(p.parse_args(["--model", "gpt2"])).model == "gpt2"
    with pytest.raises(ConfigError, match="two models"):
        finish_common_options(p.parse_args(["a", "--model", "b"]))
    with pytest.raises(ConfigError, match="no model given"):
        finish_common_options(parser().parse_args([]))


def test_common_options_bounds_and_size():
    p = parser(n=4, size=True, sample_steps=10, frames=8)
    args = finish_common_options(p.parse_args(["m", "--size", "32", "48"]))
    assert args.size == (32, 48) and args.n == 4 and args.progress is True and args.dtype == "checkpoint"
    assert finish_common_options(p.parse_args(["m", "--size", "64", "--no-progress"])).size == (64, 64)
    for bad, option in ((["--n", "0"], "--n"), (["--threads", "100000"], "--threads"),
                        (["--sample-steps", "0"], "--sample-steps"), (["--frames", "1"], "--frames"),
                        (["--size", "1", "2", "3"], "--size"), (["--size", "0"], "--size")):
        with pytest.raises(ConfigError, match=option):
            finish_common_options(p.parse_args(["m", *bad]))
    assert parse_size(28) == (28, 28)


def test_deprecated_alias_stores_into_the_new_option_and_says_so(capsys):
    p = parser(n=4)
    add_deprecated_alias(p, "--num-samples", "--n", type=int)
    add_deprecated_alias(p, "--no-bars", "--progress", flag=True, const=False)
    args = p.parse_args(["m", "--num-samples", "7", "--no-bars"])
    assert args.n == 7 and args.progress is False
    err = capsys.readouterr().err
    assert "--num-samples is deprecated" in err and "use --n" in err and "use --progress" in err
