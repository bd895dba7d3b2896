"""
The logit lens: every layer of a model on the map
=================================================

One forward pass per batch scores every hidden state through the model's final norm and
unembedding (the last layer is the model itself). Needs the hub; not run when the docs are built.
"""

import loglik_map as lm

texts = lm.TextSet.from_jsonl("texts-10k-pile.jsonl").sample(1000, seed=42)

if __name__ == "__main__":
    fast = lm.scoring.Execution(batch_tokens=16384, progress=True)
    rows = lm.LogitLensScorer("EleutherAI/pythia-410m", execution=fast).score(texts)
    mm = lm.ModelMap(rows.clip(0.02))
    layers = lm.Trajectory(mm, order="layer")
    print(layers.step_kl().to_dataframe()[["layer", "layer_next", "kl", "se"]])  # adjacent layers: paper median 3.0 bits/byte
