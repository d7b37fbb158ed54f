"""Text classification through the transformers pipeline; labels come from the model's config."""

from __future__ import annotations

from pathlib import Path

import torch
from transformers import pipeline

from shared.settings import WorkerSettings
from shared.task_schemas import ClassifyInput, ClassifyParams
from shared.tasks import TaskName
from worker.handlers.base import Handler, JobPayload, TaskOutput

ClassifyItem = tuple[str, int | None]  # (text, top_k)


class ClassifyHandler(Handler[ClassifyItem]):
    task = TaskName.CLASSIFY

    def __init__(self, model_path: Path, device: str, dtype: torch.dtype, settings: WorkerSettings) -> None:
        super().__init__(model_path, device, dtype, settings)
        # top_k=None: every label with its score, best first (softmax or sigmoid per the config).
        self.pipe = pipeline(
            "text-classification", model=str(model_path), device=device, dtype=dtype, top_k=None
        )

    def prepare(self, payload: JobPayload) -> ClassifyItem:
        assert isinstance(payload.input, ClassifyInput) and isinstance(payload.params, ClassifyParams)
        return payload.input.text, payload.params.top_k

    def run(self, items: list[ClassifyItem]) -> list[TaskOutput]:
        # Texts longer than the model's window are truncated rather than refused: a label for
        # the first 512 tokens is what users of sentiment/topic models expect.
        texts = [text for text, _ in items]
        all_scores = self.pipe(texts, truncation=True, batch_size=len(texts))
        outputs = []
        for (_, top_k), scores in zip(items, all_scores, strict=True):
            ranked = sorted(
                ({"label": s["label"], "score": float(s["score"])} for s in scores),
                key=lambda s: s["score"],
                reverse=True,
            )
            outputs.append(
                TaskOutput(
                    result={
                        "label": ranked[0]["label"],
                        "score": ranked[0]["score"],
                        "scores": ranked[:top_k] if top_k else ranked,
                    }
                )
            )
        return outputs

    def warmup(self) -> None:
        self.pipe(["Hello."], truncation=True)
