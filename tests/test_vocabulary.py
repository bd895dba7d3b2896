"""One word per concept across the public API: parameter names of every public callable."""

from __future__ import annotations

import importlib
import inspect

import loglik_map as lm

FACES = ["loglik_map"] + [f"loglik_map.{name}" for name in
                          ("core", "io", "texts", "dynamics", "scale", "stats", "synthetic", "results", "scoring", "plotting")]
#: A spelling that must not appear as a parameter name → the one the API uses for that concept.
ONE_WORD = {
    "n_bootstrap": "n_boot",
    "n_bootstraps": "n_boot",
    "random_state": "seed",
    "stderr": "se",
    "std_err": "se",
    "n_neighbors": "k",
    "n_neighbours": "k",
    "significance": "level",
    "significance_level": "level",
    "confidence": "confidence_level",
    "within": "by",
    "same": "by",
}
#: ``alpha`` is the Hölder exponent (App. B); a test's significance level is ``level``.
HOLDER_ALPHA = {"HolderEstimate", "TakagiLandsberg", "takagi_landsberg"}


def _public_callables():
    seen = set()
    for face in FACES:
        module = importlib.import_module(face)
        for name in module.__all__:
            obj = getattr(module, name)
            if inspect.ismodule(obj) or id(obj) in seen:
                continue
            seen.add(id(obj))
            if inspect.isclass(obj):
                yield name, obj
                for attr in dir(obj):
                    member = getattr(obj, attr, None)
                    if not attr.startswith("_") and callable(member):
                        yield f"{name}.{attr}", member
            elif callable(obj):
                yield name, obj


def _parameters():
    for where, obj in _public_callables():
        try:
            signature = inspect.signature(obj)
        except (TypeError, ValueError):
            continue
        for parameter in signature.parameters:
            yield where, parameter


def test_each_concept_has_one_parameter_name():
    wrong = sorted(f"{where}({p}=...): use {ONE_WORD[p]!r}" for where, p in _parameters() if p in ONE_WORD)
    assert not wrong, wrong


def test_alpha_is_only_the_holder_exponent():
    wrong = sorted(where for where, p in _parameters() if p == "alpha" and where.split(".")[0] not in HOLDER_ALPHA)
    assert not wrong, f"alpha names the Hölder exponent; a significance level is level=: {wrong}"


def test_the_significance_level_is_level_everywhere():
    from loglik_map.core import ModelTree

    for method in (lm.ModelMap.nearest, ModelTree.significant, ModelTree.check_lineage):
        assert "level" in inspect.signature(method).parameters, method.__qualname__
