"""``SetFitClassifier``: contrastive fine-tuning of an encoder body plus a classifier head.

Phase 1 fine-tunes a private copy of the pretrained body on pairs of labelled texts
(:mod:`fewshot.setfit._training`). Phase 2 embeds the training texts with the fine-tuned body
and fits the head. The estimator here only checks, orchestrates and predicts; the
folder format lives in :mod:`fewshot.model_folder`.

The training loop is ours, written on torch rather than wrapped around
``setfit.Trainer``: setfit's sampler builds all O(n²) pairs and seeds itself with a
constant, and its model always runs every layer. Here pairs come from
:mod:`fewshot.setfit._pairs` (bounded memory, drawn by ``random_state``), and the body is cut
at ``layer`` and embeds through the same encoding path as :class:`DistilEmbedder`, so
a fine-tuned body embeds exactly as it trained.
"""

from ._classifier import SetFitClassifier
from ._lora import LoRA
from ._pairs import SAMPLING, Pairs, sample_pairs

__all__ = ["SAMPLING", "LoRA", "Pairs", "SetFitClassifier", "sample_pairs"]
