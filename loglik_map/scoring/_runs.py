"""Scoring runs that never lose work: one model at a time into a run store, resumable, distributable.

The store's layout, locking and integrity checks are a file format, in :mod:`loglik_map.io._runstore`. A
model's rows appear by an atomic rename, so they are complete or absent; a rerun skips finished
(and intact) models; every job writes only its own files, so any number of workers (a
``concurrent.futures`` executor, a dask cluster's ``client.get_executor()``, several
``score_models`` calls at once) share one store.
"""

from __future__ import annotations

import datetime as _dt
import os
import traceback
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import Executor, Future, as_completed
from dataclasses import dataclass, field, fields, replace
from os import PathLike
from pathlib import Path
from typing import Any

from .._progress import PROGRESS_DOC, ProgressArg, check_progress, progress_reporter
from .._util import fill_doc, write_json_atomic
from ..errors import LoglikMapError, WrongTypeError
from ..io._runstore import (
    claim,
    failure_path,
    init_store,
    remove_stale_partials,
    row_is_finished,
    row_path,
    write_result,
)
from ..io._storage import storage_error
from ..options import resolve_progress
from ..texts import TextSet
from ._naming import check_model_coords, default_model_name, merge_step
from ._quantization import quantization_label
from ._settings import Execution, Loading, Windowing, check_group, check_optional_text

__all__ = ["ModelSpec", "RunSummary", "score_models"]


@dataclass(frozen=True)
class ModelSpec:
    """One model of a run: what to load and how to score it. Every field is checked when the spec is made.

    Parameters
    ----------
    model : str or path
        Hub id or local folder (its existence is checked where it is scored).
    name : str, optional
        Row label (default: short and stable — the hub id or the folder's base name, then
        ``@revision`` and ``[quantization]``; see :func:`~loglik_map.scoring.default_model_name`);
        logit-lens rows add ``@layer<l>``.
    revision : str, optional
        Hub revision (e.g. ``"step1000"``, which also sets ``step``).
    step : int, optional
        Training step, recorded as the ``step`` model coordinate (e.g. for
        :class:`~loglik_map.Trajectory`); read from a ``"stepN"`` revision or a checkpoint folder
        name (``step24``, ``checkpoint-500``) when not given.
    coords : mapping, optional
        Further model coordinates of this model's rows, e.g. ``{"seed": 1, "size": "410m"}``.
    logit_lens : bool
        Score every layer (:class:`~loglik_map.LogitLensScorer`).
    final_norm : str, optional
        The logit lens' final norm (:class:`~loglik_map.LogitLensScorer`); needs ``logit_lens=True``.
    loading : Loading, optional
        How this model's weights are loaded (:class:`~loglik_map.scoring.Loading`, e.g.
        ``Loading(quantization="8bit")``). Given, it replaces the run's ``loading`` as a whole
        (:func:`~loglik_map.score_models`); None: the run's.
    windowing : Windowing, optional
        Which tokens are scored (:class:`~loglik_map.scoring.Windowing`); replaces the run's
        as a whole; None: the run's.
    execution : Execution, optional
        How fast (:class:`~loglik_map.scoring.Execution`); replaces the run's as a whole;
        None: the run's.

    Examples
    --------
    >>> import loglik_map as lm
    >>> spec = lm.ModelSpec("EleutherAI/pythia-160m", revision="step1000", coords={"seed": 0})
    >>> spec.label, spec.step
    ('EleutherAI/pythia-160m@step1000', 1000)
    >>> lm.ModelSpec("EleutherAI/pythia-160m", loading=lm.scoring.Loading(quantization="8bit")).label
    'EleutherAI/pythia-160m[8bit]'
    """

    model: str
    name: str | None = None
    revision: str | None = None
    step: int | None = None
    coords: Mapping[str, Any] = field(default_factory=dict)
    logit_lens: bool = False
    final_norm: str | None = None
    loading: Loading | None = None
    windowing: Windowing | None = None
    execution: Execution | None = None

    def __post_init__(self) -> None:
        if isinstance(self.model, PathLike):
            object.__setattr__(self, "model", os.fspath(self.model))
        if not isinstance(self.model, str) or not self.model:
            raise LoglikMapError(f"ModelSpec needs a hub id or a folder, got {self.model!r}")
        if not isinstance(self.logit_lens, bool):
            raise LoglikMapError(f"logit_lens must be True or False, got {self.logit_lens!r}")
        check_optional_text("name", self.name)
        check_optional_text("revision", self.revision)
        check_optional_text("final_norm", self.final_norm)
        if self.final_norm is not None and not self.logit_lens:
            raise LoglikMapError("final_norm is an option of the logit lens: give logit_lens=True with it")
        check_group(self.loading, Loading, "ModelSpec")
        check_group(self.windowing, Windowing, "ModelSpec")
        check_group(self.execution, Execution, "ModelSpec")
        coords = merge_step(check_model_coords(self.coords, "ModelSpec coords"), self.step, self.revision, None)
        object.__setattr__(self, "coords", coords)
        object.__setattr__(self, "step", coords.get("step"))

    @classmethod
    def coerce(cls, spec: ModelSpec | str | PathLike[str]) -> ModelSpec:
        """A ``ModelSpec`` from a spec, a hub id or a folder.

        Parameters
        ----------
        spec : ModelSpec, str or path
            A spec (returned as is), a hub id or a local folder.

        Returns
        -------
        ModelSpec
        """
        if isinstance(spec, ModelSpec):
            return spec
        if isinstance(spec, (str, PathLike)):
            return cls(str(spec))
        raise WrongTypeError(f"cannot make a ModelSpec from {spec!r}; give a ModelSpec, a hub id or a folder")

    def scorer(self, *, loading: Loading | None = None, windowing: Windowing | None = None,
               execution: Execution | None = None) -> Any:
        """The scorer this spec describes.

        Parameters
        ----------
        loading, windowing, execution : Loading, Windowing, Execution, optional
            The run's settings, for the groups this spec does not give (a group the spec gives
            replaces the run's as a whole).

        Returns
        -------
        HFScorer or LogitLensScorer
            The scorer this spec describes (the model loads when it first scores).
        """
        from ._hf import HFScorer
        from ._lens import LogitLensScorer

        coords = {k: v for k, v in self.coords.items() if k != "step"}
        filled = self._filled(loading, windowing, execution)
        loading, windowing, execution = filled.loading, filled.windowing, filled.execution
        if self.logit_lens:
            return LogitLensScorer(self.model, name=self.name, revision=self.revision, step=self.step, coords=coords,
                                   final_norm=self.final_norm, loading=loading, windowing=windowing,
                                   execution=execution)
        return HFScorer(self.model, name=self.name, revision=self.revision, step=self.step, coords=coords,
                        loading=loading, windowing=windowing, execution=execution)

    def _filled(self, loading: Loading | None, windowing: Windowing | None,
                execution: Execution | None) -> ModelSpec:
        """This spec with the given groups wherever it gives none (a group it gives replaces them as a whole)."""
        return replace(self, loading=self.loading or loading, windowing=self.windowing or windowing,
                       execution=self.execution or execution)

    @property
    def label(self) -> str:
        """The run's key for this spec: the row name (the scorer's default unless ``name`` is given),
        with ``@lens`` appended for logit-lens specs, whose rows are named ``<name>@layer<l>``."""
        label = self.name
        if not label:
            quantization = self.loading.quantization if self.loading is not None else None
            quant = quantization_label(quantization) if quantization is not None else None
            label = default_model_name(self.model, self.revision, quant, must_exist=False)
        return label + ("@lens" if self.logit_lens else "")


@dataclass(frozen=True)
class RunSummary:
    """What a :func:`score_models` call did.

    Attributes
    ----------
    scored : tuple of str
        Models scored in this call.
    skipped : tuple of str
        Models already finished in the store.
    failed : dict
        Model → error message, for models that failed (recorded in the store).
    store : str
    elsewhere : tuple of str
        Models another live process (a second run on the same store) was scoring when this run
        reached them; rerun, or open the store once that process is done, to get their rows.
    """

    scored: tuple[str, ...]
    skipped: tuple[str, ...]
    failed: Mapping[str, str]
    store: str
    elsewhere: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        """True if no model failed."""
        return not self.failed

    def __str__(self) -> str:
        lines = [f"run store {self.store}: {len(self.scored)} scored, {len(self.skipped)} already finished, "
                 f"{len(self.failed)} failed" + (f", {len(self.elsewhere)} being scored by another process"
                                                 if self.elsewhere else "")]
        for name, err in self.failed.items():
            lines.append(f"  FAILED {name}: {err}")
        return "\n".join(lines)


# ---------------------------------------------------------------------- jobs
def _spec_record(spec: ModelSpec | None) -> dict[str, Any] | None:
    """The spec as the failure record keeps it: :func:`dataclasses.asdict`'s layout (the groups nested).

    Only the spec and its groups are unpacked; any other value (a torch dtype, a
    ``BitsAndBytesConfig``, a progress callable) stays whole, for the JSON writer's ``repr``.
    """
    def plain(value: Any) -> Any:
        if isinstance(value, (ModelSpec, Loading, Windowing, Execution)):
            return {f.name: plain(getattr(value, f.name)) for f in fields(value)}
        if isinstance(value, Mapping):
            return {str(k): plain(v) for k, v in value.items()}
        return value

    return None if spec is None else plain(spec)


def _write_failure(store: Path, label: str, spec: ModelSpec | None, err: BaseException) -> str:
    message = f"{type(err).__name__}: {err}"
    if row_path(store, label).is_dir():
        return message  # another run finished this model meanwhile: its rows stand, no failure to record
    record = {
        "model": label,
        "spec": _spec_record(spec),
        "error": message,
        "traceback": "".join(traceback.format_exception(type(err), err, err.__traceback__)),
        "time": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }
    try:
        write_json_atomic(failure_path(store, label), record, default=repr)  # torch dtypes, BitsAndBytesConfig
    except OSError as io_err:
        raise storage_error(io_err, failure_path(store, label), "record the failure of a model in") from io_err
    return message


def _score_one(spec: ModelSpec, texts: TextSet, store: str) -> tuple[str, str, str]:
    """Score one model and write its rows (or its failure) to the store. Runs on any worker."""
    label = spec.label
    path = Path(store)
    with claim(path, label) as mine:
        if not mine:
            return label, "elsewhere", "being scored by another process"
        if row_is_finished(path, label):  # another run finished it between the plan and the claim
            return label, "skipped", ""
        try:
            scorer = spec.scorer()
            matrix = scorer.score(texts)
            write_result(path, label, matrix)
            return label, "scored", ""
        except Exception as err:
            return label, "failed", _write_failure(path, label, spec, err)


def _with_run_settings(spec: ModelSpec, loading: Loading | None, windowing: Windowing | None,
                       execution: Execution | None, batch_progress: bool) -> ModelSpec:
    """``spec`` with the run's group wherever it gives none, and a per-batch progress decided by the run."""
    spec = spec._filled(loading, windowing, execution or Execution())
    assert spec.execution is not None
    if spec.execution.progress is None:
        spec = replace(spec, execution=replace(spec.execution, progress=batch_progress))
    return spec


@fill_doc(progress=PROGRESS_DOC)
def score_models(
    specs: Iterable[ModelSpec | str | PathLike[str]],
    texts: TextSet | Sequence[str],
    store: str | PathLike[str],
    *,
    executor: Executor | None = None,
    progress: ProgressArg = None,
    retry_failed: bool = True,
    loading: Loading | None = None,
    windowing: Windowing | None = None,
    execution: Execution | None = None,
) -> RunSummary:
    """Score many models into a resumable run store.

    Parameters
    ----------
    specs : iterable of ModelSpec, hub id or folder
        The models to score; a hub id or folder is ``ModelSpec(name)``.
    texts : TextSet or sequence of str
        The same texts for every model (a store is bound to one text set).
    store : path
        Run-store directory (created if missing).
    executor : concurrent.futures.Executor, optional
        Where models are scored, e.g. a ``ProcessPoolExecutor`` or a dask ``Client``'s
        ``get_executor()``; every job writes only its own files. Default: this process, in order.
    progress : bool, callable or None, default None
        Progress over models; a bar also shows each model's batches, without an executor, unless
        the model's ``execution`` sets its own ``progress``.
        {progress}
    retry_failed : bool
        Rescore models whose earlier attempt failed (default); finished models are always skipped,
        unless their stored rows fail their checksum: those are moved to the store's ``corrupt/``
        folder (with a :class:`~loglik_map.errors.DataIntegrityWarning`) and scored again.
    loading, windowing, execution : Loading, Windowing, Execution, optional
        The run's settings (:class:`~loglik_map.scoring.Loading`, ...), for every spec that
        does not give the group itself: a group a :class:`ModelSpec` gives replaces the run's
        as a whole (fields are not merged), so ``ModelSpec(m, loading=Loading(quantization="8bit"))``
        in a run with ``loading=Loading(device="cpu")`` loads on ``device="auto"``; give the
        spec ``Loading(quantization="8bit", device="cpu")`` to keep both.

    Returns
    -------
    RunSummary
        Open the results with :func:`loglik_map.open_matrix` (store).
    """
    check_progress(progress)
    check_group(loading, Loading, "score_models")
    check_group(windowing, Windowing, "score_models")
    check_group(execution, Execution, "score_models")
    texts = TextSet.coerce(texts)
    batch_progress = not callable(progress) and resolve_progress(progress) and executor is None
    coerced = [_with_run_settings(ModelSpec.coerce(s), loading, windowing, execution, batch_progress) for s in specs]
    labels = [s.label for s in coerced]
    dup = {lab for lab in labels if labels.count(lab) > 1}
    if dup:
        raise LoglikMapError(f"model names repeat in the run: {sorted(dup)}; give ModelSpec(name=...)")
    path = Path(store)
    init_store(path, texts, labels)
    remove_stale_partials(path)  # leftovers of killed runs (live writers hold a lock on theirs)
    todo, skipped = [], []
    for spec in coerced:
        failed_before = failure_path(path, spec.label).is_file()
        if row_is_finished(path, spec.label) or (failed_before and not retry_failed):
            skipped.append(spec.label)
        else:
            todo.append(spec)
    scored: list[str] = []
    elsewhere: list[str] = []
    failed: dict[str, str] = {}
    with progress_reporter(progress, len(todo), desc="models", unit="model") as bar:

        def record(label: str, status: str, message: str) -> None:
            if status == "scored":
                scored.append(label)
            elif status == "skipped":
                skipped.append(label)
            elif status == "elsewhere":
                elsewhere.append(label)
            else:
                failed[label] = message
            bar.set_postfix_str(label[-40:])
            bar.update(1)

        if executor is None:
            for spec in todo:
                record(*_score_one(spec, texts, str(path)))
        else:
            futures: dict[Future, ModelSpec] = {executor.submit(_score_one, spec, texts, str(path)): spec
                                                for spec in todo}
            for fut in as_completed(futures):
                spec = futures[fut]
                try:
                    record(*fut.result())
                except Exception as err:
                    record(spec.label, "failed", _write_failure(path, spec.label, spec, err))
    return RunSummary(scored=tuple(s for s in labels if s in scored), skipped=tuple(s for s in labels if s in skipped),
                      failed={lab: failed[lab] for lab in labels if lab in failed}, store=str(path),
                      elsewhere=tuple(s for s in labels if s in elsewhere))
