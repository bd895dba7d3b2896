"""``TextSet``: the ordered texts a map is scored on, with stable content-derived ids."""

from __future__ import annotations

import json
import random
from collections.abc import Iterable, Iterator, Mapping, Sequence
from os import PathLike
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import LoglikMapError, WrongTypeError
from ._chunking import read_jsonl_records, split_utf8
from ._ids import text_id

__all__ = ["TextSet"]


class TextSet:
    """Ordered, unique texts with stable ids, UTF-8 byte lengths and optional domain labels.

    Parameters
    ----------
    texts : sequence of str
        The texts, in order. Each must be non-empty and unique.
    domains : sequence of str, optional
        A domain label per text (like the Pile's ``pile_set_name``).
    metadata : mapping of str to sequence, optional
        Further per-text fields (e.g. ``pile_idx``, ``chunk_idx``), kept as text coordinates.

    Attributes
    ----------
    ids : ndarray of str
        ``text_id(text)`` for each text: matrices scored in different runs align on these.
    n_bytes : ndarray of int
        UTF-8 length of each text.

    Examples
    --------
    >>> ts = TextSet(["a first text", "a second, longer text"], domains=["x", "y"])
    >>> len(ts), ts.n_bytes.tolist()
    (2, [12, 21])
    """

    __slots__ = ("_domains", "_ids", "_metadata", "_n_bytes", "_texts")

    def __init__(
        self,
        texts: Sequence[str],
        *,
        domains: Sequence[str] | None = None,
        metadata: Mapping[str, Sequence[Any]] | None = None,
    ) -> None:
        if isinstance(texts, (str, bytes)):
            raise WrongTypeError(f"texts must be a sequence of texts, got one {type(texts).__name__} "
                                 f"({texts[:40]!r}{'…' if len(texts) > 40 else ''}); for a single text pass a list: [text]")
        texts = list(texts)
        if not texts:
            raise LoglikMapError("a TextSet needs at least one text")
        n_bytes = np.empty(len(texts), dtype=np.int64)
        for i, t in enumerate(texts):
            if isinstance(t, bytes):
                try:
                    t = texts[i] = t.decode("utf-8")
                except UnicodeDecodeError as err:
                    raise LoglikMapError(f"text {i} is not valid UTF-8 ({err.reason} at byte {err.start})") from None
            if not isinstance(t, str):
                raise WrongTypeError(f"text {i} is a {type(t).__name__}, not a string")
            if not t:
                raise LoglikMapError(f"text {i} is empty")
            try:
                n_bytes[i] = len(t.encode("utf-8"))
            except UnicodeEncodeError as err:
                raise LoglikMapError(f"text {i} cannot be encoded as UTF-8 ({err.reason}: lone surrogate?)") from None
        ids = [text_id(t) for t in texts]
        seen: dict[str, int] = {}
        for i, tid in enumerate(ids):
            if tid in seen:
                raise LoglikMapError(f"text {i} duplicates text {seen[tid]}: {texts[i][:60]!r}…")
            seen[tid] = i
        if domains is not None:
            domains = [str(d) for d in domains]
            if len(domains) != len(texts):
                raise LoglikMapError(f"{len(domains)} domain labels for {len(texts)} texts")
        meta = {}
        for key, values in (metadata or {}).items():
            values = list(values)
            if len(values) != len(texts):
                raise LoglikMapError(f"metadata {key!r} has {len(values)} entries for {len(texts)} texts")
            meta[key] = values
        self._texts = texts
        self._ids = np.array(ids, dtype=object)
        self._n_bytes = n_bytes
        self._domains = domains
        self._metadata = meta

    @classmethod
    def coerce(cls, texts: TextSet | Sequence[str]) -> TextSet:
        """``texts`` as a TextSet: a TextSet itself, or a TextSet of a sequence of texts.

        Every public function that takes texts calls this once, where it is entered.

        Parameters
        ----------
        texts : TextSet or sequence of str
            A TextSet (returned as is, its domains and metadata kept) or the texts in order
            (a list, a tuple or an array of strings).

        Returns
        -------
        TextSet
            ``texts`` itself, or a new TextSet of them.

        Raises
        ------
        WrongTypeError
            For anything else (one string, a set, a generator, a mapping, …), saying what to pass.

        Examples
        --------
        >>> ts = TextSet.coerce(["a first text", "a second text"])
        >>> TextSet.coerce(ts) is ts
        True
        """
        if isinstance(texts, cls):
            return texts
        if isinstance(texts, (str, bytes)):
            return cls(texts)  # its message: one text, pass a list
        if isinstance(texts, (Sequence, np.ndarray)) and not isinstance(texts, Mapping):
            return cls(list(texts))
        raise WrongTypeError(f"texts must be a TextSet or a sequence of strings (a list of texts), got "
                             f"{type(texts).__name__}; pass TextSet(texts) or list(texts)")

    # ------------------------------------------------------------------ loaders
    @classmethod
    def from_jsonl(cls, path: str | PathLike[str]) -> TextSet:
        """Load the reference format: one JSON object per line.

        Each object has ``text`` and optionally ``pile_set_name`` (→ domain), ``pile_idx`` and
        ``chunk_idx``.

        Parameters
        ----------
        path : str or path
            The file.

        Returns
        -------
        TextSet
        """
        records = read_jsonl_records(path)
        domains = [r.get("pile_set_name", "") for r in records] if any("pile_set_name" in r for r in records) else None
        meta = {k: [r[k] for r in records] for k in ("pile_idx", "chunk_idx") if all(k in r for r in records)}
        return cls([r["text"] for r in records], domains=domains, metadata=meta)

    @classmethod
    def from_json(cls, path: str | PathLike[str]) -> TextSet:
        """Load a JSON file holding a list of strings.

        Parameters
        ----------
        path : str or path
            The file.

        Returns
        -------
        TextSet
        """
        try:
            data = json.loads(Path(path).read_bytes().decode("utf-8"))
        except UnicodeDecodeError:
            raise LoglikMapError(f"{path}: not valid UTF-8") from None
        except json.JSONDecodeError as err:
            raise LoglikMapError(f"{path}: not valid JSON ({err.msg})") from None
        if not isinstance(data, list) or not all(isinstance(t, str) for t in data):
            raise LoglikMapError(f"{path}: expected a JSON list of strings")
        return cls(data)

    @classmethod
    def load(cls, path: str | PathLike[str]) -> TextSet:
        """Load ``.jsonl`` (reference format) or ``.json`` (list of strings) by suffix.

        Parameters
        ----------
        path : str or path
            The file.

        Returns
        -------
        TextSet
        """
        suffix = Path(path).suffix.lower()
        if suffix == ".jsonl":
            return cls.from_jsonl(path)
        if suffix == ".json":
            return cls.from_json(path)
        raise LoglikMapError(f"{path}: use a .jsonl (one object with 'text' per line) or .json (list of strings) file")

    @classmethod
    def from_corpus(
        cls,
        documents: Iterable[str | Mapping[str, Any]],
        *,
        max_bytes: int = 1024,
        min_bytes: int = 256,
        domain_key: str = "pile_set_name",
    ) -> TextSet:
        """Split documents into UTF-8-safe chunks exactly as :ref:`method-loglik` (and shimo-lab/modelmap) do.

        Each document is split by :func:`split_utf8`; chunks of ``min_bytes`` bytes or fewer are
        dropped. Documents may be strings or mappings with a ``text`` field (and a domain under
        ``domain_key``). Chunks keep ``doc_idx`` and ``chunk_idx``. Repeated chunks keep their
        first occurrence only.

        Parameters
        ----------
        documents : iterable of str or mapping
            Documents: strings, or mappings with ``text`` (and a domain under ``domain_key``).
        max_bytes : int, default 1024
            Longest chunk, in UTF-8 bytes.
        min_bytes : int, default 256
            Chunks of this many bytes or fewer are dropped.
        domain_key : str, default "pile_set_name"
            Field of a mapping document holding its domain.

        Returns
        -------
        TextSet
        """
        texts, domains, doc_idx, chunk_idx = [], [], [], []
        seen = set()
        has_domain = False
        for d, doc in enumerate(documents):
            if isinstance(doc, Mapping):
                text, domain = doc.get("text"), doc.get(domain_key, "")
                has_domain |= domain_key in doc
            else:
                text, domain = doc, ""
            if not isinstance(text, str):
                raise LoglikMapError(f"document {d} has no text")
            for c, chunk in enumerate(split_utf8(text, max_bytes)):
                if len(chunk.encode("utf-8")) > min_bytes and chunk not in seen:
                    seen.add(chunk)
                    texts.append(chunk)
                    domains.append(str(domain))
                    doc_idx.append(d)
                    chunk_idx.append(c)
        if not texts:
            raise LoglikMapError(f"no chunk of more than {min_bytes} bytes in the corpus")
        return cls(texts, domains=domains if has_domain else None,
                   metadata={"doc_idx": doc_idx, "chunk_idx": chunk_idx})

    @classmethod
    def from_samples(cls, texts: Sequence[str], prompts: str | Sequence[str] | None = None, *,
                     model: str | None = None, include_prompts: bool = False, temperature: float | None = None,
                     top_p: float | None = None, top_k: int | None = None, duplicates: str = "count") -> TextSet:
        """Texts generated by a (closed) model, to score with open models and place it (:func:`loglik_map.place_by_samples`).

        A sample drawn more than once is kept once with its count (``n_draws``), so the
        estimates weigh it as often as it was drawn. Generate with temperature 1 and no top-p
        or top-k truncation: otherwise the samples are those of a distorted distribution (the
        recorded values make :func:`~loglik_map.place_by_samples` warn). Generate a fixed number
        of tokens where the API allows it: a sample that stopped at an end-of-text token has a
        term (the stop's probability) that scoring the text leaves out.

        Parameters
        ----------
        texts : sequence of str
            The generated texts (continuations, without the prompt), non-empty.
        prompts : str or sequence of str, optional
            The prompt each sample was conditioned on (one for all, or one per sample), recorded
            as the ``prompt`` text coordinate. The texts scored are the continuations alone
            unless ``include_prompts``: their distribution is then the mixture of ``q(·|prompt)``
            over the prompts used, and that mixture is what is placed.
        model : str, optional
            Name of the model sampled (the ``sampled_from`` coordinate, the ``closed`` name of
            :func:`~loglik_map.place_by_samples`).
        include_prompts : bool, default False
            Score ``prompt + continuation`` (the joint distribution of prompts and samples).
        temperature, top_p, top_k : optional
            The sampling settings used, recorded per text.
        duplicates : {"count", "error"}, default "count"
            Repeated samples: counted in ``n_draws``, or refused.

        Returns
        -------
        TextSet
            Unique texts in first-drawn order with metadata ``n_draws`` and ``sampled_from`` (and
            ``prompt``, ``temperature``, ``top_p``, ``top_k`` when given); byte lengths as usual
            (UTF-8).

        Examples
        --------
        >>> ts = TextSet.from_samples(["the cat sat", "a dog ran", "the cat sat"], model="api-model",
        ...                           temperature=1.0)
        >>> len(ts), ts.text_coords()["n_draws"].tolist()
        (2, [2, 1])
        """
        from ._samples import samples_text_set

        return samples_text_set(cls, texts, prompts, model=model, include_prompts=include_prompts,
                                temperature=temperature, top_p=top_p, top_k=top_k, duplicates=duplicates)

    # ------------------------------------------------------------------ access
    def __len__(self) -> int:
        return len(self._texts)

    def __iter__(self) -> Iterator[str]:
        return iter(self._texts)

    def __getitem__(self, index: int | slice | Sequence[int]) -> str | TextSet:
        if isinstance(index, (int, np.integer)):
            return self._texts[index]
        idx = range(len(self))[index] if isinstance(index, slice) else [int(i) for i in index]
        return self._subset(list(idx))

    def __repr__(self) -> str:
        dom = f", {len(set(self._domains))} domains" if self._domains else ""
        return f"<TextSet: {len(self)} texts, mean {self.n_bytes.mean():.1f} bytes{dom}>"

    @property
    def texts(self) -> list[str]:
        """The texts (a copy of the list)."""
        return list(self._texts)

    @property
    def ids(self) -> np.ndarray:
        """Content-derived ids, shape (N,)."""
        return self._ids.copy()

    @property
    def n_bytes(self) -> np.ndarray:
        """UTF-8 lengths in bytes, shape (N,)."""
        return self._n_bytes.copy()

    @property
    def domains(self) -> list[str] | None:
        """Domain labels, or None."""
        return None if self._domains is None else list(self._domains)

    def text_coords(self) -> dict[str, np.ndarray]:
        """Per-text coordinates for a :class:`~loglik_map.LogLikelihoodMatrix` (domain, metadata).

        Returns
        -------
        dict of str to numpy.ndarray
            ``domain`` (if any) and every metadata field, one value per text.
        """
        out: dict[str, np.ndarray] = {}
        if self._domains is not None:
            out["domain"] = np.array(self._domains, dtype=object)
        for k, v in self._metadata.items():
            out[k] = np.asarray(v)
        return out

    def _subset(self, idx: list[int]) -> TextSet:
        new = TextSet.__new__(TextSet)
        new._texts = [self._texts[i] for i in idx]
        new._ids = self._ids[idx]
        new._n_bytes = self._n_bytes[idx]
        new._domains = None if self._domains is None else [self._domains[i] for i in idx]
        new._metadata = {k: [v[i] for i in idx] for k, v in self._metadata.items()}
        if not new._texts:
            raise LoglikMapError("the selection is empty")
        return new

    def matching(self, selection: Any) -> TextSet:
        """The texts of a matrix (e.g. from :func:`loglik_map.resample_texts`), in its order, with its weights.

        Score new models on the result (``lm.score_models(specs, texts=textset.matching(selection),
        store=...)``): their rows then carry the selection's ``text_weight``, ``selection_count``
        and ``selection_probability`` coordinates and join the weighted map
        (:meth:`LogLikelihoodMatrix.concat <loglik_map.LogLikelihoodMatrix.concat>`) or are
        projected onto it (:meth:`ModelMap.project <loglik_map.ModelMap.project>`).

        Parameters
        ----------
        selection : LogLikelihoodMatrix
            A matrix whose texts all come from this text set.

        Returns
        -------
        TextSet
            The matching texts; the selection's per-text coordinates ride along as metadata.
        """
        data = getattr(selection, "data", None)
        if data is None or "text" not in getattr(data, "dims", ()):
            raise WrongTypeError(f"matching needs a LogLikelihoodMatrix, got {type(selection).__name__}")
        position = {tid: i for i, tid in enumerate(self._ids)}
        wanted = [str(t) for t in data["text"].values]
        missing = [t for t in wanted if t not in position]
        if missing:
            raise LoglikMapError(f"{len(missing)} of the selection's {len(wanted)} texts are not in this text set "
                                 f"(first: {missing[0]!r}); use the text set the matrix was scored on")
        out = self._subset([position[t] for t in wanted])
        for name in ("text_weight", "selection_count", "selection_probability"):
            if name in data.coords:
                out._metadata[name] = list(np.asarray(data.coords[name].values))
        return out

    def sample(self, n: int, seed: int = 42) -> TextSet:
        """``n`` texts drawn without replacement, in draw order, by ``random.Random(seed).sample``.

        For large sets this is the reference procedure (``random.seed(42)``, ``random.sample``):
        Python draws the first ``n`` of a larger sample identically.

        Parameters
        ----------
        n : int
            Number of texts, at most ``len(self)``.
        seed : int, default 42
            Seed of :class:`random.Random` (the reference procedure's 42).

        Returns
        -------
        TextSet
            A new text set of ``n`` texts drawn without replacement.
        """
        if not 1 <= n <= len(self):
            raise LoglikMapError(f"cannot sample {n} texts from {len(self)}")
        return self._subset(random.Random(seed).sample(range(len(self)), n))

    def to_jsonl(self, path: str | PathLike[str]) -> None:
        """Write the reference JSONL format (``text``, ``pile_set_name`` if domains, metadata).

        Parameters
        ----------
        path : str or path
            The file to write (replaced if it exists).
        """
        with open(path, "w", encoding="utf-8") as fh:
            for i, t in enumerate(self._texts):
                rec: dict[str, Any] = {"text": t}
                if self._domains is not None:
                    rec["pile_set_name"] = self._domains[i]
                for k, v in self._metadata.items():
                    rec[k] = v[i].item() if isinstance(v[i], np.generic) else v[i]
                fh.write(json.dumps(rec, ensure_ascii=False) + "\n")
