"""The labelled result of :func:`loglik_map.exact_kl` and its llama.cpp-style summary (torch-free).

Two models that share a vocabulary give, at every scored position ``t`` of a text, two full
next-token distributions ``p_a(·|x_<t)`` and ``p_b(·|x_<t)``. The result keeps, per position
(dimension ``token``), KL in both directions, both models' log-probability of the true token and
whether their most likely tokens agree; per text (dimension ``text``) the sums; and the summary
statistics ``llama-perplexity --kl-divergence`` prints (``tools/perplexity/perplexity.cpp``):

* mean per-token KL ± SE, maximum, 99.9/99/95/90 %, median, 10/5/1/0.1 % and minimum;
* Δp = p_b(true token) − p_a(true token): mean ± SE and the same percentiles (with 75/25 %);
* RMS Δp ± SE, and the rate at which both models' top tokens agree ("same top p") with its
  binomial SE.

``model_a`` plays llama.cpp's *base* (the reference whose logits it saves), so ``kl_ab`` is its
KLD. As in llama.cpp, SEs of per-token means treat tokens as independent, which they are not
within a text; the bits/byte averages (``kl_ab_bits_per_byte`` …) get SEs over texts, which are
independent draws, and are on the scale of the model map.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import xarray as xr

from .._units import LN2
from ..errors import LoglikMapError

__all__ = ["QUANTILES", "exact_kl_dataset", "exact_kl_report", "select_texts", "summarize_exact_kl"]

#: Quantiles of the per-token statistics, as llama.cpp prints them (KL omits 75/25 %, Δp has them).
QUANTILES = (0.0, 0.001, 0.01, 0.05, 0.10, 0.25, 0.5, 0.75, 0.90, 0.95, 0.99, 0.999, 1.0)

_TOKEN_VARS = ("token_kl_ab", "token_kl_ba", "token_logp_a", "token_logp_b", "token_dp", "token_same_top")


def _mean_se(x: np.ndarray) -> tuple[float, float]:
    """Mean and its SE ``sqrt(var_pop / (n − 1))`` — llama.cpp's ``mean_and_uncertainty``; NaN SE for n < 2."""
    x = np.asarray(x, dtype=np.float64)
    n = x.size
    if n == 0:
        return math.nan, math.nan
    mean = float(x.mean())
    if n < 2:
        return mean, math.nan
    var = float(np.mean((x - mean) ** 2))
    return mean, math.sqrt(var / (n - 1))


def _scalar(value: float, units: str, description: str) -> xr.DataArray:
    return xr.DataArray(float(value), attrs={"units": units, "description": description})


def summarize_exact_kl(ds: xr.Dataset) -> xr.Dataset:
    """Recompute the summary variables of an :func:`~loglik_map.exact_kl` result.

    The summaries are computed from the per-token and per-text variables, e.g. after selecting
    texts (``ds.isel(text=…)`` does not select the matching tokens: use :func:`select_texts`).

    Parameters
    ----------
    ds : xarray.Dataset
        An :func:`~loglik_map.exact_kl` result (its per-token variables are kept).

    Returns
    -------
    xarray.Dataset
        ``ds`` with the summary variables replaced (see :func:`exact_kl_dataset`).
    """
    out = ds.drop_vars([v for v in ds.data_vars if ds[v].attrs.get("summary")], errors="ignore")
    summary: dict[str, xr.DataArray] = {}
    qs = np.asarray(QUANTILES)
    for name, what in (("token_kl_ab", "KL(p_a || p_b)"), ("token_kl_ba", "KL(p_b || p_a)"),
                       ("token_dp", "Δp = p_b(true) − p_a(true)")):
        x = ds[name].values.astype(np.float64)
        unit = "nats per token" if name != "token_dp" else "probability"
        mean, se = _mean_se(x)
        summary[f"{name}_mean"] = _scalar(mean, unit, f"mean per-token {what}")
        summary[f"{name}_mean_se"] = _scalar(se, unit, f"SE of the mean per-token {what} (tokens as independent)")
        quant = np.quantile(x, qs) if x.size else np.full(qs.size, np.nan)
        summary[f"{name}_quantiles"] = xr.DataArray(quant, dims=("quantile",), coords={"quantile": qs},
                                                   attrs={"units": unit, "description": f"quantiles of {what}"})
    dp2 = ds["token_dp"].values.astype(np.float64) ** 2
    mse, mse_se = _mean_se(dp2)
    rms = math.sqrt(mse) if np.isfinite(mse) else math.nan
    summary["token_dp_rms"] = _scalar(rms, "probability", "RMS of Δp")
    summary["token_dp_rms_se"] = _scalar(0.5 / rms * mse_se if rms > 0 else math.nan, "probability",
                                         "SE of the RMS of Δp (delta method, as llama.cpp)")
    same = ds["token_same_top"].values.astype(np.float64)
    n_tok = same.size
    p = float(same.mean()) if n_tok else math.nan
    summary["same_top"] = _scalar(p, "fraction", "rate at which both models' most likely tokens agree")
    summary["same_top_se"] = _scalar(math.sqrt(p * (1 - p) / (n_tok - 1)) if n_tok > 1 else math.nan, "fraction",
                                     "binomial SE of same_top, sqrt(p (1 − p) / (n − 1))")
    ratio, ratio_se = _mean_se(ds["token_logp_a"].values.astype(np.float64) - ds["token_logp_b"].values)
    summary["ln_ppl_ratio"] = _scalar(ratio, "nats per token", "ln(PPL(b) / PPL(a)): mean of log p_a − log p_b")
    summary["ln_ppl_ratio_se"] = _scalar(ratio_se, "nats per token", "SE of ln_ppl_ratio (tokens as independent)")
    n_bytes = ds["n_bytes"].values.astype(np.float64)
    scale = float(n_bytes.mean()) * LN2
    n_texts = n_bytes.size
    for direction, what in (("ab", "KL(p_a || p_b)"), ("ba", "KL(p_b || p_a)"), ("sym", "(KL_ab + KL_ba) / 2")):
        per_text = ds[f"kl_{direction}"].values.astype(np.float64)
        mean = float(per_text.mean())
        se = float(per_text.std(ddof=1)) / math.sqrt(n_texts) if n_texts > 1 else math.nan
        summary[f"kl_{direction}_bits_per_byte"] = _scalar(
            mean / scale, "bits/byte", f"teacher-forced {what} summed over each text, mean over texts / (B̄ ln 2)")
        summary[f"kl_{direction}_bits_per_byte_se"] = _scalar(
            se / scale, "bits/byte", "SE over texts (texts as independent draws, B̄ fixed as in the map)")
    for value in summary.values():
        value.attrs["summary"] = 1
    return out.assign(summary)


def select_texts(ds: xr.Dataset, index: Any) -> xr.Dataset:
    """Some texts of an exact-KL result, with their tokens, and the summary recomputed.

    Parameters
    ----------
    ds : xarray.Dataset
        A :func:`~loglik_map.exact_kl` result.
    index : array_like of int or bool
        Positions (or a mask) along ``text``, e.g. ``ds.domain.values == "code"``.

    Returns
    -------
    xarray.Dataset
        The selected texts and their tokens (``token_text`` renumbered), summaries recomputed
        (:func:`summarize_exact_kl`).

    Raises
    ------
    LoglikMapError
        If the selection has no texts.
    """
    idx = np.arange(ds.sizes["text"])[np.asarray(index)]
    if idx.size == 0:
        raise LoglikMapError("the selection has no texts")
    keep = np.isin(ds["token_text"].values, idx)
    renumber = np.full(ds.sizes["text"], -1)
    renumber[idx] = np.arange(idx.size)
    sub = ds.isel(text=idx, token=np.flatnonzero(keep))
    sub = sub.assign_coords(token_text=("token", renumber[sub["token_text"].values]))
    return summarize_exact_kl(sub)


def exact_kl_dataset(*, texts: Any, token_text: np.ndarray, token_target: np.ndarray, kl_ab: np.ndarray,
                     kl_ba: np.ndarray, logp_a: np.ndarray, logp_b: np.ndarray, same_top: np.ndarray,
                     attrs: dict[str, Any], n_tokens_dropped: np.ndarray | None = None) -> xr.Dataset:
    """Assemble the result of :func:`~loglik_map.exact_kl` from per-token arrays (in text order).

    Parameters
    ----------
    texts : TextSet
        The texts, in order; text ``k`` owns the tokens with ``token_text == k``.
    token_text, token_target : ndarray of int, shape (T,)
        Owning text and index of the predicted token in the text's token ids.
    kl_ab, kl_ba, logp_a, logp_b : ndarray of float32, shape (T,)
        Per-token KL in both directions and the true token's log-probability under each model (nats).
    same_top : ndarray of bool, shape (T,)
    n_tokens_dropped : ndarray of int, shape (N,), optional
        Tokens of each text that truncation left unscored (default none).
    attrs : dict
        Recorded as the dataset's attributes (models, layers, conventions, …).

    Returns
    -------
    xarray.Dataset
        Dimensions ``text`` (N), ``token`` (T) and ``quantile``. Per text: ``kl_ab``, ``kl_ba``,
        ``kl_sym`` (nats per text, float64 sums), the same divided by the text's ``n_bytes · ln 2``
        (``kl_ab_bpb`` …, bits/byte), ``logp_a``, ``logp_b`` (the texts' log-likelihoods, nats,
        as :meth:`HFScorer.score` gives them), ``n_tokens`` (positions scored) and
        ``n_tokens_dropped`` (tokens truncation cut). Per token
        (``token_*``): ``token_kl_ab``, ``token_kl_ba``, ``token_logp_a``, ``token_logp_b`` (nats),
        ``token_dp`` and ``token_same_top``, with coordinates ``token_text`` and ``token_target``.
        Summary variables (attribute ``summary``): see :func:`summarize_exact_kl`.
    """
    n = len(texts)
    token_text = np.asarray(token_text, dtype=np.int64)
    n_tokens = np.bincount(token_text, minlength=n)
    if np.any(n_tokens == 0):
        raise LoglikMapError(f"text {int(np.argmin(n_tokens))} has no scored token")

    def per_text(x: np.ndarray) -> np.ndarray:
        return np.bincount(token_text, weights=np.asarray(x, dtype=np.float64), minlength=n)

    n_bytes = np.asarray(texts.n_bytes, dtype=np.int64)
    nats = {"units": "nats per text"}
    bpb = {"units": "bits/byte"}
    sums = {"ab": per_text(kl_ab), "ba": per_text(kl_ba)}
    sums["sym"] = 0.5 * (sums["ab"] + sums["ba"])
    data: dict[str, Any] = {}
    for d, s in sums.items():
        data[f"kl_{d}"] = ("text", s, nats)
        data[f"kl_{d}_bpb"] = ("text", s / (n_bytes * LN2), bpb)
    data["logp_a"] = ("text", per_text(logp_a), nats)
    data["logp_b"] = ("text", per_text(logp_b), nats)
    data["n_tokens"] = ("text", n_tokens)
    dropped = np.zeros(n, dtype=np.int64) if n_tokens_dropped is None else np.asarray(n_tokens_dropped, dtype=np.int64)
    data["n_tokens_dropped"] = ("text", dropped)
    tok = {"units": "nats per token"}
    p_a = np.exp(np.asarray(logp_a, dtype=np.float64))
    p_b = np.exp(np.asarray(logp_b, dtype=np.float64))
    data.update({
        "token_kl_ab": ("token", np.asarray(kl_ab, dtype=np.float32), tok),
        "token_kl_ba": ("token", np.asarray(kl_ba, dtype=np.float32), tok),
        "token_logp_a": ("token", np.asarray(logp_a, dtype=np.float32), tok),
        "token_logp_b": ("token", np.asarray(logp_b, dtype=np.float32), tok),
        "token_dp": ("token", (p_b - p_a).astype(np.float32), {"units": "probability"}),
        "token_same_top": ("token", np.asarray(same_top, dtype=bool)),
    })
    coords = {"text": texts.ids, "n_bytes": ("text", n_bytes),
              **{k: ("text", v) for k, v in texts.text_coords().items()},
              "token_text": ("token", token_text), "token_target": ("token", np.asarray(token_target, dtype=np.int64))}
    ds = xr.Dataset(data, coords=coords, attrs=dict(attrs, mean_bytes=float(n_bytes.mean())))
    return summarize_exact_kl(ds)


def _fmt_stat(ds: xr.Dataset, name: str, scale: float, unit: str, label: str, qs: tuple[float, ...]) -> list[str]:
    quant = ds[f"{name}_quantiles"]
    lines = [f"Mean    {label}: {scale * float(ds[f'{name}_mean']):10.6f} ± {scale * float(ds[f'{name}_mean_se']):10.6f}{unit}",
             f"Maximum {label}: {scale * float(quant.sel(quantile=1.0)):10.6f}{unit}"]
    for q in qs:
        tag = "Median " if q == 0.5 else f"{100 * q:4.1f}%  "
        lines.append(f"{tag} {label}: {scale * float(quant.sel(quantile=q)):10.6f}{unit}")
    lines.append(f"Minimum {label}: {scale * float(quant.sel(quantile=0.0)):10.6f}{unit}")
    return lines


def exact_kl_report(ds: xr.Dataset) -> str:
    """The summary of an :func:`~loglik_map.exact_kl` result in ``llama-perplexity --kl-divergence`` layout.

    Parameters
    ----------
    ds : xarray.Dataset
        A result of :func:`~loglik_map.exact_kl`.

    Returns
    -------
    str
        Both KL directions, then the per-text totals in bits/byte (the model map's unit).
    """
    a, b = ds.attrs.get("model_a", "a"), ds.attrs.get("model_b", "b")
    kl_q = (0.999, 0.99, 0.95, 0.90, 0.5, 0.10, 0.05, 0.01, 0.001)
    dp_q = (0.999, 0.99, 0.95, 0.90, 0.75, 0.5, 0.25, 0.10, 0.05, 0.01, 0.001)
    lines = [f"exact KL of {b} (b) against {a} (a, the reference) on {ds.sizes['text']} texts, "
             f"{ds.sizes['token']} scored tokens",
             "====== KL divergence statistics: KL(p_a || p_b), nats per token ======"]
    lines += _fmt_stat(ds, "token_kl_ab", 1.0, "", "KLD", kl_q)
    lines.append("====== reverse direction: KL(p_b || p_a), nats per token ======")
    lines += _fmt_stat(ds, "token_kl_ba", 1.0, "", "KLD", kl_q)
    lines.append("====== Token probability statistics (Δp = p_b − p_a of the true token) ======")
    lines += _fmt_stat(ds, "token_dp", 100.0, " %", "Δp ", dp_q)
    lines.append(f"RMS Δp    : {100 * float(ds.token_dp_rms):6.3f} ± {100 * float(ds.token_dp_rms_se):5.3f} %")
    lines.append(f"Same top p: {100 * float(ds.same_top):6.3f} ± {100 * float(ds.same_top_se):5.3f} %")
    lines.append(f"ln(PPL(b)/PPL(a)): {float(ds.ln_ppl_ratio):10.6f} ± {float(ds.ln_ppl_ratio_se):10.6f}")
    lines.append("====== per text, summed over positions, bits/byte (SE over texts) ======")
    for d, what in (("ab", "KL(a || b)"), ("ba", "KL(b || a)"), ("sym", "symmetric ½(ab + ba)")):
        lines.append(f"{what:<22}: {float(ds[f'kl_{d}_bits_per_byte']):.6g} ± "
                     f"{float(ds[f'kl_{d}_bits_per_byte_se']):.2g} bits/byte")
    return "\n".join(lines)
