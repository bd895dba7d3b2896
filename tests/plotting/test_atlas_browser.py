"""The written atlas in a real browser: headless Chromium (Debian's ``chromium``, driven by playwright)
opens the file with every network request blocked.

Needs the ``test`` extra (playwright, without its browser download) and a Chromium binary:
``LOGLIK_MAP_CHROMIUM`` or ``chromium`` on the PATH (``apt install chromium``).
"""

from __future__ import annotations

import os
import shutil

import numpy as np
import pytest

import loglik_map as lm
from loglik_map.synthetic import make_zoo_like_matrix

pytest.importorskip("plotly", reason="the atlas needs the 'viz' extra (plotly)")
sync_api = pytest.importorskip("playwright.sync_api", reason="browser tests need playwright (the 'test' extra)")
CHROMIUM = os.environ.get("LOGLIK_MAP_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
if CHROMIUM is None:
    pytest.skip("browser tests need a Chromium binary: apt install chromium (or set LOGLIK_MAP_CHROMIUM)",
                allow_module_level=True)

K_NEAREST = 4
#: The plot element once plotly and the atlas's script are done.
READY = "() => { const gd = document.querySelector('.js-plotly-plot'); return gd && gd._fullLayout && gd.atlasSelect; }"
MODELS = "document.querySelector('.js-plotly-plot')"


@pytest.fixture(scope="module")
def opened(tmp_path_factory):
    """The zoo-like map's atlas opened offline: (map, page, console errors, blocked requests)."""
    mm = lm.ModelMap(make_zoo_like_matrix(n_families=2, runs_per_family=2, n_checkpoints=4, n_layers=3, n_children=2,
                                          n_texts=200))
    path = tmp_path_factory.mktemp("atlas") / "atlas.html"
    lm.plotting.atlas(mm, k=K_NEAREST, pin=mm.models[3], progress=False).write_html(path)
    errors: list[str] = []
    blocked: list[str] = []

    def route(r):
        if r.request.url.startswith("file:"):
            r.continue_()
        else:
            blocked.append(r.request.url)
            r.abort()

    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True,
                                    args=["--no-sandbox", "--enable-unsafe-swiftshader", "--use-angle=swiftshader"])
        try:
            page = browser.new_page(viewport={"width": 1200, "height": 900})
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.route("**/*", route)
            page.goto(path.as_uri(), timeout=120_000)
            page.wait_for_function(READY, timeout=120_000)
            yield mm, page, errors, blocked
        finally:
            browser.close()


def _click(page, i: int) -> None:
    """A real mouse click on model ``i``'s point (hover first, as a user's pointer would)."""
    x, y = page.evaluate(f"""() => {{ const gd = {MODELS}; const t = gd._fullData.find(d => d.uid === 'models');
        const fl = gd._fullLayout, box = gd.querySelector('.nsewdrag').getBoundingClientRect();
        return [box.left + fl.xaxis.l2p(t.x[{i}]), box.top + fl.yaxis.l2p(t.y[{i}])]; }}""")
    page.mouse.move(x - 3, y - 3)
    page.mouse.move(x, y)
    page.wait_for_timeout(200)
    page.mouse.click(x, y)
    page.wait_for_function(f"() => {MODELS}.atlasSelection !== null && {MODELS}.atlasSelection !== undefined",
                           timeout=10_000)


def test_opens_offline_with_one_point_per_model_and_names_in_the_hover(opened):
    mm, page, errors, blocked = opened
    n, names, hover = page.evaluate(f"""() => {{ const gd = {MODELS}; const i = gd.data.findIndex(d => d.uid === 'models');
        return [gd._fullData[i].x.length, Array.from(gd.data[i].text), Array.from(gd.data[i].hovertext)]; }}""")
    assert n == len(mm) and names == list(mm.models)
    assert all(name in text for name, text in zip(mm.models, hover))
    assert not errors, errors
    assert not blocked, f"the atlas asked the network for {blocked}"


def test_a_click_selects_the_exact_k_nearest_and_greys_the_tied(opened):
    mm, page, errors, _ = opened
    target = int(np.flatnonzero(mm.models == mm.models[5])[0])
    _click(page, target)
    chosen = page.evaluate(f"() => {MODELS}.atlasSelection")
    assert chosen["model"] == mm.models[target]
    test = mm.nearest(mm.models[target], k=K_NEAREST, test=True, correction="holm")
    assert chosen["neighbours"] == list(test.model.values)
    assert chosen["tied"][1:] == list(~test["distinguishable"].values[1:])
    drawn = page.evaluate(f"""() => {{ const gd = {MODELS}; const n = u => gd.data.find(d => d.uid === u).x.length;
        return n('near') + n('tied'); }}""")
    assert drawn == K_NEAREST
    # the search box selects too
    page.fill("input[type=search]", str(mm.models[0]))
    page.press("input[type=search]", "Enter")
    page.wait_for_function(f"() => {MODELS}.atlasSelection.model === {str(mm.models[0])!r}", timeout=10_000)
    assert not errors, errors
