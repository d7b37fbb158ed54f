"""Text classification through the transformers pipeline; labels come from the model's config."""

from __future__ import annotations

from typing import Any, cast

from transformers import pipeline

from shared.task_schemas import ClassifyInput, ClassifyParams
from shared.tasks import TaskName
from worker.handlers.base import Handler, HandlerConfig, TaskOutput

ClassifyItem = tuple[str, int | None]  # (text, top_k)


class ClassifyHandler(Handler[ClassifyInput, ClassifyParams, ClassifyItem]):
    task = TaskName.CLASSIFY
    input_type = ClassifyInput
    params_type = ClassifyParams

    def __init__(self, config: HandlerConfig) -> None:
        super().__init__(config)
        # top_k=None: every label with its score, best first (softmax or sigmoid per the config).
        self.pipe = pipeline(
            "text-classification",
            model=str(self.model_path),
            device=self.device,
            dtype=self.dtype,
            top_k=None,
        )

    def prepare(self, job_input: ClassifyInput, params: ClassifyParams) -> ClassifyItem:
        return job_input.text, params.top_k

    def run(self, items: list[ClassifyItem]) -> list[TaskOutput]:
        # Texts longer than the model's window are truncated rather than refused: a label for
        # the first 512 tokens is what users of sentiment/topic models expect.
        texts = [text for text, _ in items]
        # One list of {"label", "score"} per text (top_k=None); the pipeline's types cannot say so.
        all_scores = cast(
            list[list[dict[str, Any]]], self.pipe(texts, truncation=True, batch_size=len(texts))
        )
        outputs = []
        for (_, top_k), scores in zip(items, all_scores, strict=True):
            ranked: list[dict[str, Any]] = sorted(
                ({"label": s["label"], "score": float(s["score"])} for s in scores),
                key=lambda s: float(s["score"]),
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
