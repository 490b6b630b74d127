"""The pretrained transformer under the cross-encoder: loaded (or refused in one line), its tokenizer, and a
one-logit classifier on [CLS] or on the mean of the pair's tokens."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch
from transformers.modeling_outputs import SequenceClassifierOutput

from matching.config import Pooling
from matching.errors import StageError


@contextmanager
def loading(model: str) -> Iterator[None]:
    """A model that cannot be loaded stops the stage with one line naming it."""
    from transformers.utils import logging as transformers_logging

    transformers_logging.set_verbosity_error()  # "newly initialised head" is the point of fine-tuning
    transformers_logging.disable_progress_bar()
    try:
        yield
    except OSError as error:
        raise StageError(
            f"params.yaml: cross_encoder.model is {model!r}, which cannot be loaded ({str(error).splitlines()[0]}); "
            "name a hub model (with a network) or a local folder holding config.json, weights and tokenizer"
        ) from None


def pretrained_tokenizer(model: str):
    from transformers import AutoTokenizer

    with loading(model):
        return AutoTokenizer.from_pretrained(model)


class MeanPooledClassifier(torch.nn.Module):
    """One logit on the mean of the encoder's last hidden states over the pair's tokens (padding left out):
    the vector a sentence-transformers model that pools by mean (all-MiniLM-L6-v2) was trained to make,
    where the model's own head reads a [CLS] token such a model never trained."""

    def __init__(self, encoder: Any):  # a transformers model: its config and input embeddings are read
        super().__init__()
        self.encoder, self.config = encoder, encoder.config
        self.dropout = torch.nn.Dropout(encoder.config.hidden_dropout_prob)
        self.head = torch.nn.Linear(encoder.config.hidden_size, 1)

    def get_input_embeddings(self) -> torch.nn.Module:
        return self.encoder.get_input_embeddings()

    def forward(self, attention_mask: torch.Tensor, **inputs) -> SequenceClassifierOutput:
        hidden = self.encoder(attention_mask=attention_mask, **inputs).last_hidden_state.float()
        mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * mask).sum(1) / mask.sum(1)
        return SequenceClassifierOutput(logits=self.head(self.dropout(pooled)))


def model_pooling(model: str, pooling: Pooling) -> Pooling:
    """`pooling` itself, or for `auto` the way the model pools a sentence where it says so: `mean` where its
    sentence-transformers `Pooling` module (modules.json) takes the tokens' mean, else `cls`."""
    if pooling != "auto":
        return pooling
    from transformers.utils import cached_file

    def read(name: str) -> Any:  # a file of the folder or hub model, None where it has none
        found = cached_file(model, name, _raise_exceptions_for_missing_entries=False)
        return json.loads(Path(found).read_text()) if found else None

    with loading(model):
        modules = read("modules.json") or []
        folder = next((module["path"] for module in modules if module["type"].endswith(".Pooling")), None)
        pooling_config = (read(f"{folder}/config.json") if folder is not None else None) or {}
    # older sentence-transformers wrote a flag a mode (all-MiniLM-L6-v2's folder); 6 writes the mode's name
    mode = pooling_config.get("pooling_mode") or ("mean" if pooling_config.get("pooling_mode_mean_tokens") else None)
    return "mean" if mode == "mean" else "cls"


def classifier_from_config(config, pooling: str) -> torch.nn.Module:
    """An untrained classifier of the architecture `config`, pooled as `pooling` says: saved weights load into it."""
    from transformers import AutoModel, AutoModelForSequenceClassification

    if pooling == "mean":
        return MeanPooledClassifier(AutoModel.from_config(config))
    return AutoModelForSequenceClassification.from_config(config)


def pretrained_classifier(
    model: str, freeze_word_embeddings: bool = False, pooling: Pooling = "cls"
) -> torch.nn.Module:
    """A one-logit classifier over the pretrained encoder `model` (the head newly initialised): the model's
    own sequence-classification head (`cls`) or one on the mean of its tokens (`mean`; `auto`: as the
    model pools, `model_pooling`), its word embeddings left out of training if asked."""
    from transformers import AutoModel, AutoModelForSequenceClassification

    with loading(model):
        if model_pooling(model, pooling) == "mean":
            classifier = MeanPooledClassifier(AutoModel.from_pretrained(model))
        else:
            classifier = AutoModelForSequenceClassification.from_pretrained(model, num_labels=1)
    # Most of a small model's weights (26 M of rubert-tiny2's 29 M): tuned, AdamW's step over them is a
    # large share of a CPU step; kept, the inner split read the same PR-AUC on the real offers (README).
    classifier.get_input_embeddings().weight.requires_grad_(not freeze_word_embeddings)
    return classifier
