"""Scoring's plumbing written once: texts coerced at the entry, one torch accessor, one progress helper."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import pytest

import loglik_map as lm
import loglik_map.scoring


def _scoring_functions():
    for info in pkgutil.iter_modules(loglik_map.scoring.__path__):
        if "triton" in info.name:
            continue  # needs triton (a GPU); it takes no torch argument either
        module = importlib.import_module(f"loglik_map.scoring.{info.name}")
        for name, obj in vars(module).items():
            if inspect.isfunction(obj) and obj.__module__ == module.__name__:
                yield f"{module.__name__}.{name}", obj
            elif inspect.isclass(obj) and obj.__module__ == module.__name__:
                for meth_name, meth in vars(obj).items():
                    if inspect.isfunction(meth):
                        yield f"{module.__name__}.{name}.{meth_name}", meth


def test_no_scoring_function_takes_the_torch_module_as_an_argument():
    takers = [name for name, func in _scoring_functions() if "torch" in inspect.signature(func).parameters]
    assert not takers, f"use loglik_map.scoring._torch.torch_module() instead of a torch parameter: {takers}"


@pytest.mark.parametrize("bad", [{"one text", "two texts"}, 42])
def test_public_scoring_entries_refuse_what_is_not_texts(bad, tmp_path):
    with pytest.raises(lm.errors.WrongTypeError, match="TextSet or a sequence of strings"):
        lm.score_models(["some/model"], bad, tmp_path / "store", progress=False)
