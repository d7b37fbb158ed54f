"""Text generation with a causal language model (prompt or chat messages)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from shared.task_schemas import GenerateInput, GenerateParams
from shared.tasks import TaskName
from worker.errors import InvalidInput
from worker.handlers.base import Handler, HandlerConfig, TaskOutput
from worker.stopping import stopping_criteria


@dataclass
class GenerateItem:
    input_ids: torch.Tensor  # shape (1, prompt length)
    max_new_tokens: int
    temperature: float
    top_p: float


class GenerateHandler(Handler[GenerateInput, GenerateParams, GenerateItem]):
    """Prompts longer than the model's context are refused (``invalid_input``), never truncated:
    cutting from the left would silently drop a chat's system prompt or the start of the task.
    When the prompt fits but prompt + max_new_tokens does not, max_new_tokens is reduced to the
    room left, so the job still answers.
    """

    task = TaskName.GENERATE
    input_type = GenerateInput
    params_type = GenerateParams

    def __init__(self, config: HandlerConfig) -> None:
        super().__init__(config)
        self.tokenizer = AutoTokenizer.from_pretrained(str(self.model_path))
        model = AutoModelForCausalLM.from_pretrained(str(self.model_path), dtype=self.dtype)
        # transformers' decorator on PreTrainedModel.to hides its self from type checkers.
        self.model = model.to(self.device).eval()  # type: ignore[arg-type]
        self.context_length = _context_length(self.model.config)
        self.pad_token_id = (
            self.tokenizer.pad_token_id
            if self.tokenizer.pad_token_id is not None
            else self.model.generation_config.eos_token_id
        )

    def prepare(self, job_input: GenerateInput, params: GenerateParams) -> GenerateItem:
        request = job_input
        if request.messages is not None:
            if not self.tokenizer.chat_template:
                raise InvalidInput(
                    "this generation model has no chat template; send 'prompt' (plain text) "
                    "instead of 'messages'"
                )
            messages = [m.model_dump() for m in request.messages]
            text = self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
            # The template already contains the special tokens the model expects.
            ids = self.tokenizer(text, add_special_tokens=False, return_tensors="pt").input_ids
        else:
            ids = self.tokenizer(request.prompt, return_tensors="pt").input_ids
        prompt_length = ids.shape[1]
        if prompt_length >= self.context_length:
            raise InvalidInput(
                f"the input is {prompt_length} tokens long; this model's context is "
                f"{self.context_length} tokens, so shorten the prompt"
            )
        max_new = min(
            params.max_new_tokens, self.settings.MAX_NEW_TOKENS, self.context_length - prompt_length
        )
        return GenerateItem(
            input_ids=ids, max_new_tokens=max_new, temperature=params.temperature, top_p=params.top_p
        )

    def run(self, items: list[GenerateItem]) -> list[TaskOutput]:
        # One generate() per job: jobs differ in sampling settings and length, and batching
        # them needs left padding; that belongs with the batching scheduler.
        return [self._run_one(item) for item in items]

    def _run_one(self, item: GenerateItem) -> TaskOutput:
        ids = item.input_ids.to(self.device)
        kwargs: dict[str, Any] = {
            "max_new_tokens": item.max_new_tokens,
            "pad_token_id": self.pad_token_id,
            # Stops at the next token once the batch's jobs are canceled or past their time limit.
            "stopping_criteria": stopping_criteria(),
        }
        if item.temperature > 0:
            kwargs.update(do_sample=True, temperature=item.temperature, top_p=item.top_p)
        else:
            # Greedy; clear sampling knobs an instruct model's generation_config may set.
            kwargs.update(do_sample=False, temperature=None, top_p=None, top_k=None)
        with torch.inference_mode():
            output = self.model.generate(ids, attention_mask=torch.ones_like(ids), **kwargs)
        new_ids = output[0, ids.shape[1] :]
        text = self.tokenizer.decode(new_ids, skip_special_tokens=True)
        return TaskOutput(result={"text": text, "generated_tokens": int(new_ids.shape[0])})

    def warmup(self) -> None:
        ids = self.tokenizer("Hello", return_tensors="pt").input_ids
        self._run_one(GenerateItem(input_ids=ids, max_new_tokens=1, temperature=0.0, top_p=1.0))


def _context_length(config: Any) -> int:
    for name in ("max_position_embeddings", "n_positions", "max_sequence_length", "seq_length"):
        value = getattr(config, name, None)
        if isinstance(value, int) and value > 0:
            return value
    # Models with relative positions have no hard limit; this only bounds memory use.
    return 32_768
