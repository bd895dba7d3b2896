"""Weight distances on real transformers checkpoints saved with save_pretrained (fp32 and bf16)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import loglik_map as lm

from . import tiny


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_weight_distances_of_saved_models(tmp_path, tokenizers, dtype):
    models = [tiny.build_model("gpt_neox", tokenizers["neox"], seed=s).to(dtype) for s in (0, 1, 2)]
    folders = []
    for k, m in enumerate(models):
        m.save_pretrained(tmp_path / f"ckpt{k}")
        folders.append(tmp_path / f"ckpt{k}")
    D = lm.weight_distances(folders, chunk_elements=4096)
    from safetensors.torch import load_file

    sd = [load_file(f / "model.safetensors") for f in folders]
    assert sd[0]["gpt_neox.embed_in.weight"].dtype == dtype
    assert sum(t.numel() for t in sd[0].values()) == sum(p.numel() for p in models[0].parameters())
    for i, j in [(0, 1), (1, 2), (0, 2)]:
        direct = sum(float(((sd[i][n].double() - sd[j][n].double()) ** 2).sum()) for n in sd[0])
        assert D.values[i, j] == pytest.approx(direct, rel=1e-12)
    assert np.all(np.diag(D.values) == 0)
