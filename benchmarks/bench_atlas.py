"""The interactive atlas at scale: build time, file size, and the time headless Chromium takes to open it.

Run by hand (not a test), in the project's virtual environment (needs the ``viz`` and ``test`` extras and
Debian's ``chromium``):

    python benchmarks/bench_atlas.py [--runs-per-family 100] [--checkpoints 20] [--texts 500] [--k 10]

The defaults make a zoo-like synthetic map (:func:`loglik_map.synthetic.make_zoo_like_matrix`) of
10 families × 100 runs × 20 checkpoints plus logit-lens layers, quantized copies and children:
20,100 models. It times the exact k-NN and the rest of :func:`loglik_map.plotting.atlas`, writes the
HTML, and opens it in headless Chromium with every network request blocked, timing (from navigation)
until the plot is drawn and the atlas's script is ready, then a click on a model until its neighbours
are shown. ``--cpus`` pins the browser to that many cores (``taskset``; default 2, the goal's machine).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

READY = "() => { const gd = document.querySelector('.js-plotly-plot'); return gd && gd._fullLayout && gd.atlasSelect; }"


def open_in_chromium(path: Path, cpus: int) -> dict[str, float]:
    """Seconds from navigation to a drawn, scripted atlas, and for a click's selection; run in a child process
    pinned to ``cpus`` cores so the browser gets no more."""
    code = f"""
import json, time
from playwright.sync_api import sync_playwright
errors, blocked = [], []
with sync_playwright() as p:
    b = p.chromium.launch(executable_path={shutil.which("chromium")!r}, headless=True,
                          args=["--no-sandbox", "--enable-unsafe-swiftshader", "--use-angle=swiftshader"])
    page = b.new_page(viewport={{"width": 1400, "height": 1000}})
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.route("**/*", lambda r: r.continue_() if r.request.url.startswith("file:") else (blocked.append(r.request.url),
                                                                                       r.abort()))
    t0 = time.perf_counter()
    page.goto({path.as_uri()!r}, timeout=300_000)
    page.wait_for_function({READY!r}, timeout=300_000, polling=100)
    page.evaluate("() => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))")
    opened = time.perf_counter() - t0
    t1 = time.perf_counter()
    page.evaluate("() => document.querySelector('.js-plotly-plot').atlasSelect(123)")
    page.evaluate("() => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))")
    select = time.perf_counter() - t1
    n = page.evaluate("() => {{ const gd = document.querySelector('.js-plotly-plot'); "
                      "return gd._fullData.find(d => d.uid === 'models').x.length; }}")
    b.close()
print(json.dumps({{"open_s": opened, "select_s": select, "points": n, "errors": errors, "blocked": blocked}}))
"""
    cmd = [sys.executable, "-c", code]
    if shutil.which("taskset") and cpus < (os.cpu_count() or cpus):
        cmd = ["taskset", "-c", ",".join(map(str, range(cpus))), *cmd]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    import json

    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    import numpy as np

    import loglik_map as lm
    from loglik_map.plotting._atlas import atlas_figure
    from loglik_map.plotting._atlas_data import atlas_data
    from loglik_map.synthetic import make_zoo_like_matrix

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--families", type=int, default=10)
    ap.add_argument("--runs-per-family", type=int, default=100)
    ap.add_argument("--checkpoints", type=int, default=20)
    ap.add_argument("--texts", type=int, default=500)
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--cpus", type=int, default=2)
    ap.add_argument("--keep", help="also copy the HTML here")
    args = ap.parse_args()

    t = time.perf_counter()
    matrix = make_zoo_like_matrix(args.families, args.runs_per_family, args.checkpoints, n_texts=args.texts, seed=0)
    mm = lm.ModelMap(matrix)
    made = time.perf_counter() - t
    print(f"map: {len(mm):,} models × {mm.n_texts} texts (made in {made:.1f} s); numpy {np.__version__}, "
          f"{os.cpu_count()} cores")
    t = time.perf_counter()
    data = atlas_data(mm, k=args.k, pin=str(mm.models[0]), progress=False)
    numbers = time.perf_counter() - t
    t = time.perf_counter()
    fig = atlas_figure(data)
    figure = time.perf_counter() - t
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "atlas.html"
        t = time.perf_counter()
        fig.write_html(path)
        written = time.perf_counter() - t
        size = path.stat().st_size / 2**20
        if args.keep:
            shutil.copy(path, args.keep)
        browser = open_in_chromium(path, args.cpus)
    print("| step | seconds |")
    print("|---|---|")
    print(f"| atlas numbers: exact {args.k}-NN, PCA, paired tests, 2-D kept share, KL to the pin | {numbers:.1f} |")
    print(f"| plotly figure (hover text, colour menu, lines) | {figure:.1f} |")
    print(f"| write_html | {written:.1f} |")
    print(f"| headless Chromium on {args.cpus} cores: open until drawn and scripted (network blocked) | "
          f"{browser['open_s']:.1f} |")
    print(f"| a selection (k nearest drawn and listed) | {browser['select_s']:.2f} |")
    print(f"\nfile: {size:.1f} MiB; points drawn: {browser['points']:,}; console errors: {len(browser['errors'])}; "
          f"network requests: {len(browser['blocked'])}; mean share of the {args.k} nearest kept in 2-D "
          f"{float(data.kept.mean()):.2f}")
    if browser["errors"]:
        print("errors:", browser["errors"][:5])


if __name__ == "__main__":
    main()
