"""Short text reprs and notebook (HTML) reprs: sizes, unit, provenance, first labels."""

from __future__ import annotations

from html.parser import HTMLParser

import numpy as np
import pytest

import loglik_map as lm
from loglik_map import demo

from .conftest import make_matrix

_VOID = {"br", "hr", "img", "meta", "input", "col"}


class _Balanced(HTMLParser):
    """Collects text and checks that every tag is closed in order."""

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        if tag not in _VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag):
        assert self.stack and self.stack[-1] == tag, f"</{tag}> closes {self.stack[-1:]}"
        self.stack.pop()

    def handle_data(self, data):
        self.text.append(data)


def rendered_text(obj) -> str:
    """The text a notebook shows for ``obj``'s HTML repr (the HTML must be well formed)."""
    parser = _Balanced()
    parser.feed(obj._repr_html_())
    parser.close()
    assert parser.stack == [], f"unclosed tags {parser.stack}"
    return " ".join(parser.text)


def check_short(obj, name: str, unit: str) -> str:
    text = repr(obj)
    lines = text.splitlines()
    assert lines[0].startswith(f"<{name}") and unit in lines[0]
    assert len(lines) <= 14 and max(map(len, lines)) <= 120, text
    shown = rendered_text(obj)
    assert name in shown and unit in shown
    return text


@pytest.fixture
def matrix_and_map():
    m = make_matrix(K=5, model_coords={"step": [0, 1000, 2000, 3000, 4000], "dtype": ["float32"] * 5,
                                       "convention": ["reference"] * 5})
    return m, lm.ModelMap(m.clip(0.02))


def test_matrix_repr_shows_sizes_unit_labels_and_provenance(matrix_and_map):
    m, mm = matrix_and_map
    text = check_short(m, "LogLikelihoodMatrix", "nats")
    assert "(model: 5, text: 300)" in text and "float64" in text
    assert "models: m0, m1, m2, … (5 in all)" in text and "clip: none" in text
    assert "convention: reference" in text and "dtype: float32" in text
    clipped = repr(mm.matrix)
    assert "clip: lower 2 % quantile" in clipped and f"{mm.matrix.attrs['clip_value_nats']:.6g} nats" in clipped


def test_matrix_repr_says_when_rows_disagree_or_texts_were_cut():
    m = make_matrix(K=3, N=40, model_coords={"convention": ["reference", "bos", "bos"]},
                    cell_coords={"n_tokens_dropped": np.where(np.arange(40) < 4, 7, 0)[None, :].repeat(3, 0)})
    text = repr(m)
    assert "convention: mixed: bos (2), reference (1)" in text
    assert "truncated: 4 texts lost tokens" in text


def test_map_repr_shows_unit_clip_and_whether_its_errors_can_be_read(matrix_and_map):
    _, mm = matrix_and_map
    text = check_short(mm, "ModelMap", "bits/byte")
    assert "(model: 5, text: 300)" in text and "clip: lower 2 % quantile" in text and "reliable (N = 300" in text
    few = lm.ModelMap(make_matrix(K=3, N=10))
    assert "unreliable: N = 10 < 32 texts" in repr(few)


def test_html_reprs_escape_labels():
    m = make_matrix(K=2, N=40).rename_models({"m0": "<script>x</script>"})
    html = m._repr_html_()
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert "<script>x</script>" in rendered_text(m)


def test_result_reprs(matrix_and_map):
    m, mm = matrix_and_map
    est = mm.compare("m0", "m1")
    text = check_short(est, "KLEstimate", "bits/byte")
    assert f"{est.kl:.4g} ± {est.se:.2g}" in text and str(est.confidence_interval()) in text
    check_short(mm.compare("m0", "m1", unit="nats"), "KLEstimate", "nats")
    proj = mm.project(m.isel(model=[0]).rename_models({"m0": "new"}))
    assert "new models: new" in check_short(proj, "ModelProjection", "bits/byte")
    traj = lm.Trajectory(mm, exclude=["m2"])
    text = check_short(traj, "Trajectory", "bits/byte")
    assert "excluded: m2" in text and "1 of 5 grid slots without a kept point" in text and "step: 0 to 4000" in text
    fit = lm.fit_power_law(np.arange(1, 9), np.arange(1, 9) ** 1.2 * np.exp(np.cos(np.arange(8)) / 40))
    text = check_short(fit, "PowerLawFit", "lag^c")
    assert f"c = {fit.exponent:.4g}" in text and str(fit.confidence_interval()) in text
    holder = lm.holder_exponent(fit, fit)
    assert "α = 1" in check_short(holder, "HolderEstimate", "unitless")


def test_zoo_reprs_are_short(tmp_path):
    cfg = demo.ZooConfig.fast()
    text = check_short(cfg, "ZooConfig", "")
    assert "neox-s-seed0 (32×2)" in text and cfg.fingerprint() in text and "9 per run" in text
    zoo = demo.Zoo(tmp_path, demo.ZooConfig())
    text = check_short(zoo, "Zoo", "")
    assert len(text) < 400 and "built: no" in text and "…, 256" in text
