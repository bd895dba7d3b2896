"""TextSet: ids, loading, SPEC §1 chunking, sampling, bad input."""

from __future__ import annotations

import itertools
import json
import random

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import loglik_map as lm


def test_ids_and_byte_lengths():
    ts = lm.TextSet(["abc", "naïve", "日本"], domains=["a", "b", "c"])
    assert list(ts.ids) == [lm.texts.text_id(t) for t in ["abc", "naïve", "日本"]]
    assert list(ts.n_bytes) == [3, 6, 6]
    assert ts.domains == ["a", "b", "c"] and len(ts) == 3 and ts[1] == "naïve"
    assert list(ts[[2, 0]]) == ["日本", "abc"]
    assert "3 texts" in repr(ts)


@pytest.mark.parametrize(
    "texts, message",
    [([], "at least one"), (["ok", ""], "text 1 is empty"), (["a", b"\xff\xfe"], "text 1 is not valid UTF-8"),
     (["same", "other", "same"], "text 2 duplicates text 0"), (["a", 3], "not a string"),
     (["bad \ud800 surrogate"], "cannot be encoded")],
)
def test_bad_texts_get_clear_errors(texts, message):
    with pytest.raises(lm.LoglikMapError, match=message):
        lm.TextSet(texts)


def test_jsonl_round_trip_in_the_reference_format(tmp_path):
    path = tmp_path / "texts.jsonl"
    with open(path, "w", encoding="utf-8") as fh:
        for k in range(3):
            fh.write(json.dumps({"text": f"text number {k} ✓", "pile_set_name": "ArXiv", "pile_idx": k, "chunk_idx": 0}) + "\n")
    ts = lm.TextSet.from_jsonl(path)
    assert ts.texts[2] == "text number 2 ✓" and ts.domains == ["ArXiv"] * 3
    assert list(ts.text_coords()["pile_idx"]) == [0, 1, 2]
    out = tmp_path / "again.jsonl"
    ts.to_jsonl(out)
    again = lm.TextSet.load(out)
    assert list(again.ids) == list(ts.ids) and again.domains == ts.domains
    (tmp_path / "list.json").write_text(json.dumps(["x y", "z"]), encoding="utf-8")
    assert lm.TextSet.load(tmp_path / "list.json").texts == ["x y", "z"]
    (tmp_path / "bad.jsonl").write_bytes(b'{"text": "ok"}\n{"nope": 1}\n')
    with pytest.raises(lm.LoglikMapError, match="bad.jsonl:2"):
        lm.TextSet.load(tmp_path / "bad.jsonl")
    with pytest.raises(lm.LoglikMapError, match=r"\.jsonl"):
        lm.TextSet.load(tmp_path / "texts.txt")


@given(st.text(min_size=0, max_size=3000), st.integers(4, 300))
def test_split_utf8_is_lossless_and_respects_the_byte_limit(text, max_bytes):
    chunks = lm.texts.split_utf8(text, max_bytes)
    assert "".join(chunks) == text
    assert all(0 < len(c.encode("utf-8")) <= max_bytes for c in chunks)
    # every chunk but the last is as long as possible without splitting a character
    for c, nxt in itertools.pairwise(chunks):
        assert len(c.encode("utf-8")) + len(nxt[0].encode("utf-8")) > max_bytes


def test_from_corpus_chunks_like_the_reference():
    doc = ("é" * 700) + ("x" * 900) + "日本" + ("y" * 100)  # 1400 + 900 + 6 + 100 bytes
    ts = lm.TextSet.from_corpus([{"text": doc, "pile_set_name": "Books3"}, "short"], max_bytes=1024, min_bytes=256)
    data = doc.encode("utf-8")
    assert ts.texts[0].encode("utf-8") == data[:1024]  # 1024 is a character boundary ("é" = 2 bytes)
    assert len(ts.texts[1].encode("utf-8")) <= 1024
    assert "".join(ts.texts) == doc  # the last chunk is > 256 bytes, nothing dropped
    assert ts.domains == ["Books3"] * len(ts)
    small = lm.TextSet.from_corpus(["a" * 1024 + "b" * 256, "c" * 257])
    assert [len(t) for t in small.texts] == [1024, 257]  # the 256-byte tail is dropped (≤ min_bytes)
    with pytest.raises(lm.LoglikMapError, match="no chunk"):
        lm.TextSet.from_corpus(["tiny"])


def test_sample_matches_python_random_sample():
    ts = lm.TextSet([f"text {i}" for i in range(500)])
    s = ts.sample(20, seed=42)
    expected = random.Random(42).sample(range(500), 20)
    assert s.texts == [f"text {i}" for i in expected]
    assert ts.sample(20, seed=42).texts == s.texts and ts.sample(20, seed=1).texts != s.texts
    with pytest.raises(lm.LoglikMapError, match="cannot sample"):
        ts.sample(501)
    assert np.array_equal(s.n_bytes, [len(t) for t in s.texts])


def test_coerce_returns_a_textset_unchanged_and_wraps_a_sequence():
    ts = lm.TextSet(["one text", "another text"], domains=["a", "b"])
    assert lm.TextSet.coerce(ts) is ts  # domains and metadata kept
    for seq in (["one text", "another text"], ("one text", "another text"), np.array(["one text", "another text"])):
        out = lm.TextSet.coerce(seq)
        assert isinstance(out, lm.TextSet) and list(out.ids) == list(ts.ids)


@pytest.mark.parametrize("bad", [{"x": "a text"}, {"one text", "two texts"}, (t for t in ["a text"]), 3, None])
def test_coerce_refuses_anything_else_saying_what_to_pass(bad):
    with pytest.raises(lm.errors.WrongTypeError, match="TextSet or a sequence of strings"):
        lm.TextSet.coerce(bad)
    with pytest.raises(lm.errors.WrongTypeError, match="for a single text pass a list"):
        lm.TextSet.coerce("one text")
