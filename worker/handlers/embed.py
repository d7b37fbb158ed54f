"""Sentence embeddings with sentence-transformers (which applies the model's own pooling config)."""

from __future__ import annotations

import numpy as np
import torch
from sentence_transformers import SentenceTransformer

from shared.task_schemas import EmbedInput, EmbedParams
from shared.tasks import TaskName
from worker.handlers.base import Handler, HandlerConfig, TaskOutput

EmbedItem = tuple[list[str], bool]  # (texts, normalize)

ENCODE_BATCH_SIZE = 32


class EmbedHandler(Handler[EmbedInput, EmbedParams, EmbedItem]):
    task = TaskName.EMBED
    input_type = EmbedInput
    params_type = EmbedParams

    def __init__(self, config: HandlerConfig) -> None:
        super().__init__(config)
        self.model = SentenceTransformer(str(self.model_path), device=self.device)
        if self.dtype == torch.float16:
            self.model.half()
        dimension = self.model.get_embedding_dimension()
        if dimension is None:
            raise ValueError(f"{self.model_path} does not say its embedding dimension")
        self.dimension = int(dimension)

    def prepare(self, job_input: EmbedInput, params: EmbedParams) -> EmbedItem:
        return job_input.texts, params.normalize

    def run(self, items: list[EmbedItem]) -> list[TaskOutput]:
        # All jobs' texts in one encode call; normalisation is per job, so it is applied after.
        # (A model whose pipeline ends in a Normalize module returns unit vectors either way.)
        texts = [text for item_texts, _ in items for text in item_texts]
        vectors = self.model.encode(
            texts,
            batch_size=ENCODE_BATCH_SIZE,
            convert_to_numpy=True,
            normalize_embeddings=False,
            show_progress_bar=False,  # one progress bar per job would flood the worker log
        ).astype(np.float32)
        outputs, offset = [], 0
        for item_texts, normalize in items:
            block = vectors[offset : offset + len(item_texts)]
            offset += len(item_texts)
            if normalize:
                norms = np.linalg.norm(block, axis=1, keepdims=True)
                block = block / np.maximum(norms, 1e-12)
            outputs.append(TaskOutput(result={"embeddings": block.tolist(), "dimension": self.dimension}))
        return outputs

    def warmup(self) -> None:
        self.model.encode(["Hello."], convert_to_numpy=True, show_progress_bar=False)
