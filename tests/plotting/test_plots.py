"""Figures: labels, drawing order, layouts that keep every label inside the saved figure, the new plots."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import loglik_map as lm

from ..conftest import make_matrix

plt = pytest.importorskip("matplotlib.pyplot", reason="plot tests need the 'plot' extra (matplotlib)")
from matplotlib.text import Text  # noqa: E402

from loglik_map import plotting  # noqa: E402


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def drawn_texts(fig) -> list[Text]:
    """The text artists a saved figure shows: tick labels in view, axis labels, titles, texts, legends."""
    out = list(fig.texts)
    for ax in fig.axes:
        legend = ax.get_legend()
        for axis in (ax.xaxis, ax.yaxis):
            lo, hi = sorted(axis.get_view_interval())
            span = 1e-9 * max(abs(lo), abs(hi), 1.0)
            out += [label for loc, label in zip(axis.get_majorticklocs(), axis.get_majorticklabels())
                    if lo - span <= loc <= hi + span]  # ticks beyond the view are not drawn
            out.append(axis.label)
        out += [ax.title, *ax.texts, *(legend.get_texts() if legend else [])]
    return [t for t in out if t.get_visible() and t.get_text().strip()]


def texts_outside(fig) -> list[str]:
    """Drawn text artists whose window extent leaves the figure's bbox (1 px tolerance)."""
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    W, H = fig.bbox.width, fig.bbox.height
    out = []
    for t in drawn_texts(fig):
        box = t.get_window_extent(renderer)
        if box.x0 < -1 or box.y0 < -1 or box.x1 > W + 1 or box.y1 > H + 1:
            out.append(f"{t.get_text()!r} at {box.bounds}")
    return out


def check_saved(ax, tmp_path, name: str):
    """Save the figure as a PNG and check every label lies inside it."""
    fig = ax.figure
    path = tmp_path / f"{name}.png"
    fig.savefig(path, dpi=80)
    assert path.stat().st_size > 1000
    assert texts_outside(fig) == []
    return path


@pytest.fixture
def stepped():
    m = make_matrix(K=6, N=200, model_coords={"step": [0, 1000, 2000, 3000, 4000, 5000],
                                              "family": ["pythia"] * 3 + ["a-much-longer-family-name"] * 3})
    return lm.ModelMap(m.rename_models(lambda s: f"EleutherAI/pythia-410m@{s}"))


def test_plot_map_labels_all_or_named_models_above_the_lines(stepped, tmp_path):
    traj = lm.Trajectory(stepped)
    ax = plotting.plot_map(stepped, color="step", trajectory=traj, labels=True)
    names = [t.get_text() for t in ax.texts]
    assert sorted(names) == sorted(map(str, stepped.models))
    assert min(c.get_zorder() for c in ax.collections) > max(line.get_zorder() for line in ax.lines)
    check_saved(ax, tmp_path, "map_step_labels")
    ax = plotting.plot_map(stepped, color="family", labels=["EleutherAI/pythia-410m@m2"])
    assert [t.get_text() for t in ax.texts] == ["EleutherAI/pythia-410m@m2"]
    check_saved(ax, tmp_path, "map_family")
    with pytest.raises(lm.LoglikMapError, match="not on the map"):
        plotting.plot_map(stepped, labels=["m2"])
    with pytest.raises(lm.LoglikMapError, match="colour by"):
        plotting.plot_map(stepped, color="sizes")


def test_a_colour_bar_keeps_the_axis_label_inside_a_saved_figure(stepped, tmp_path):
    ax = plotting.plot_map(stepped, color="step")
    assert any(t.get_text() == "step" for t in ax.figure.findobj(Text))  # the colour bar's label
    check_saved(ax, tmp_path, "map_colorbar")


def test_plot_kl_scale_labels_ticks_as_plain_numbers(stepped, tmp_path):
    pairs = lm.kl_scale_pairs(stepped, {"consecutive checkpoints, last 50k steps": lm.consecutive_checkpoints(),
                                        "random pairs across all models": lm.random_pairs(10)})
    pairs.loc[0, "kl"] = 3.12243e-2  # the value that used to read 3.12243×10⁻²
    ax = plotting.plot_kl_scale(pairs)
    ax.figure.canvas.draw()
    labels = [t.get_text() for t in ax.get_yticklabels() if t.get_text()]
    assert labels and all("×" not in s and "$" not in s for s in labels)
    values = [float(s.replace("−", "-")) for s in labels]
    assert values == sorted(values) and len(values) >= 3 and values[0] == 0
    check_saved(ax, tmp_path, "kl_scale")


def test_plot_kl_scale_draws_a_tiny_kl_apart_from_zero(tmp_path):
    pairs = pd.DataFrame({"setting": ["quantized", "quantized", "checkpoints", "checkpoints"],
                          "kl": [1e-5, 3e-5, 0.4, 2.0]})
    ax = plotting.plot_kl_scale(pairs)
    to_pixels = ax.transData.transform
    y0, y_tiny, y_top = (to_pixels([(0.0, v)])[0, 1] for v in (0.0, 1e-5, 2.0))
    assert y_tiny - y0 > 0.05 * (y_top - y0)  # a visible gap: 1e-5 bits/byte is not drawn as 0
    assert ax.get_ylim()[0] == 0.0
    check_saved(ax, tmp_path, "kl_scale_tiny")


def two_families() -> lm.ModelMap:
    ex = lm.make_markov_example(n_families=2, members_per_family=3, n_texts=300, seed=0)
    shuffled = ex.matrix.isel(model=[0, 3, 1, 4, 2, 5])
    return lm.ModelMap(shuffled)


def test_plot_kl_matrix_draws_the_kl_in_clustering_order(tmp_path):
    mm = two_families()
    ax = plotting.plot_kl_matrix(mm)
    order = [t.get_text() for t in ax.get_yticklabels()]
    assert sorted(order) == sorted(map(str, mm.models))
    families = [name.split("-")[0] for name in order]
    assert families[:3] == [families[0]] * 3 and families[3:] == [families[3]] * 3  # families are contiguous
    image = ax.images[0].get_array()
    expected = mm.kl().sel(model=order, model_=order).values
    np.testing.assert_allclose(np.ma.filled(image, 0.0), expected)
    assert np.ma.getmaskarray(image).diagonal().all()  # the zero diagonal is blank on the log scale
    assert any("bits/byte" in t.get_text() for t in ax.figure.findobj(Text))
    check_saved(ax, tmp_path, "kl_matrix")
    ax = plotting.plot_kl_matrix(mm.kl(unit="nats"), order=["family1-member0", "family0-member0"], log=False)
    assert [t.get_text() for t in ax.get_xticklabels()] == ["family1-member0", "family0-member0"]
    assert ax.images[0].get_array()[0, 1] == pytest.approx(mm.kl("family1-member0", "family0-member0", unit="nats"))
    with pytest.raises(lm.LoglikMapError, match="order must be"):
        plotting.plot_kl_matrix(mm, order="alphabetical")


def lens_map() -> lm.ModelMap:
    """Two models' logit-lens rows: layers 0..5 converging on the final layer, plus an ordinary row."""
    rng = np.random.default_rng(1)
    N, rows, names, layers, sources = 120, [], [], [], []
    for src in ("tiny-a", "tiny-b"):
        final = -400 + rng.normal(scale=20, size=N)
        for layer in range(6):
            rows.append(final + rng.normal(scale=2.0 * (5 - layer), size=N))
            names.append(f"{src}@layer{layer}")
            layers.append(float(layer))
            sources.append(src)
    rows.append(rows[5] + rng.normal(size=N))
    names.append("tiny-a")
    layers.append(np.nan)
    sources.append("tiny-a")
    m = lm.LogLikelihoodMatrix(np.array(rows), models=names, texts=[f"t{k}" for k in range(N)], n_bytes=np.full(N, 500),
                               model_coords={"layer": layers, "source_model": sources})
    return lm.ModelMap(m)


def test_plot_logit_lens_draws_kl_to_each_models_final_layer(tmp_path):
    mm = lens_map()
    ax = plotting.plot_logit_lens(mm)
    assert len(ax.lines) == 2 and len(ax.collections) == 2  # a curve and an SE band per model
    x, y = ax.lines[0].get_data()
    np.testing.assert_array_equal(x, np.arange(6))
    np.testing.assert_allclose(y, [mm.kl(f"tiny-a@layer{k}", "tiny-a@layer5") for k in range(6)])
    assert y[-1] == 0 and np.all(np.diff(y) < 0)
    assert "final layer" in ax.get_ylabel() and "bits/byte" in ax.get_ylabel()
    check_saved(ax, tmp_path, "logit_lens")
    with pytest.raises(lm.LoglikMapError, match="no row of the map has a finite 'layer'"):
        plotting.plot_logit_lens(lm.ModelMap(mm.matrix.assign_model_coords(layer=np.nan)))


def test_plot_diffusion_exponents_shades_each_exponents_interval(tmp_path):
    walk = lm.synthetic.fbm(40, 0.5, dim=50, seed=0)
    D = ((walk[:, None] - walk[None]) ** 2).sum(-1)
    traj = lm.Trajectory.from_distances(D, np.arange(41))
    ds = traj.diffusion_exponents(window=10)
    low, high, what = plotting.exponent_band(ds)
    for k in (0, 7, 20):
        ci = traj.diffusion_exponent(float(ds.t0[k]), 10).confidence_interval(0.95)
        assert (low[k], high[k]) == pytest.approx((ci.low, ci.high))
    assert "regression" in what
    ax = plotting.plot_diffusion_exponents(ds, traj.diffusion_exponents(window=5))
    assert len(ax.collections) == 2 and len(ax.lines) == 3
    assert "regression" in " ".join(t.get_text() for t in ax.get_legend().get_texts())
    check_saved(ax, tmp_path, "diffusion")
    boot = ds.assign(bootstrap_low=ds.exponent - 0.1, bootstrap_high=ds.exponent + 0.2)
    low, high, what = plotting.exponent_band(boot)
    np.testing.assert_allclose(high - low, 0.3)
    assert "bootstrap" in what
    assert len(plotting.plot_diffusion_exponents(ds, intervals=False).collections) == 0


def test_plot_step_kl_and_displacement_fit_their_figures(stepped, tmp_path):
    traj = lm.Trajectory(stepped, by="family")
    check_saved(plotting.plot_step_kl(traj.step_kl()), tmp_path, "step_kl")
    walk = lm.synthetic.fbm(40, 0.5, dim=50, seed=0)
    D = ((walk[:, None] - walk[None]) ** 2).sum(-1)
    check_saved(plotting.plot_displacement(lm.Trajectory.from_distances(D, np.arange(41)), 5), tmp_path, "disp")


def test_labels_of_nearby_points_do_not_overlap(tmp_path):
    ex = lm.make_markov_example(n_families=3, members_per_family=3, n_texts=300, seed=0)
    ax = plotting.plot_map(lm.ModelMap(ex.matrix), color="family", labels=True)
    check_saved(ax, tmp_path, "crowded")
    boxes = [t.get_window_extent(ax.figure.canvas.get_renderer()) for t in ax.texts]
    assert len(boxes) == 9
    overlapping = [(i, j) for i in range(9) for j in range(i + 1, 9) if boxes[i].overlaps(boxes[j])]
    assert overlapping == []
