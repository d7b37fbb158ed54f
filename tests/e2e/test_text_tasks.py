"""Text tasks end to end: HTTP -> gateway -> Redis/Celery -> real worker process -> result."""

from __future__ import annotations

import math

import httpx
import pytest

from tests.utils.jobs import assert_succeeded, run_json_job

pytestmark = pytest.mark.timeout(300)


def _cosine(a: list[float], b: list[float]) -> float:
    dot = sum(x * y for x, y in zip(a, b, strict=True))
    return dot / (math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b)))


def test_embed_with_real_minilm_gives_384_dims_and_ranks_a_paraphrase_closer(client: httpx.Client) -> None:
    texts = [
        "A man is playing a guitar.",
        "Someone plays the guitar.",
        "The stock market fell sharply today.",
    ]
    job = run_json_job(client, "embed", {"texts": texts})
    result = assert_succeeded(job)
    assert result["dimension"] == 384
    vectors = result["embeddings"]
    assert len(vectors) == 3 and all(len(v) == 384 for v in vectors)
    # normalize defaults to true: unit vectors.
    assert all(math.isclose(math.sqrt(sum(x * x for x in v)), 1.0, abs_tol=1e-3) for v in vectors)
    paraphrase, unrelated = _cosine(vectors[0], vectors[1]), _cosine(vectors[0], vectors[2])
    assert paraphrase > unrelated + 0.2, (paraphrase, unrelated)
    assert job["model"], job


def test_embed_accepts_normalize_false(client: httpx.Client) -> None:
    # all-MiniLM-L6-v2 normalises inside the model (its 2_Normalize module), so the vectors
    # are unit length either way; this proves the parameter is accepted and honoured without error.
    result = assert_succeeded(run_json_job(client, "embed", {"texts": ["hello world"]}, {"normalize": False}))
    (vector,) = result["embeddings"]
    assert len(vector) == 384 and result["dimension"] == 384


def test_classify_returns_a_configured_label_and_scores_summing_to_one(client: httpx.Client) -> None:
    result = assert_succeeded(run_json_job(client, "classify", {"text": "I love this service!"}))
    assert result["label"] in {"NEGATIVE", "POSITIVE"}
    scores = result["scores"]
    assert {s["label"] for s in scores} == {"NEGATIVE", "POSITIVE"}
    assert sum(s["score"] for s in scores) == pytest.approx(1.0, abs=1e-3)
    # Best first, and the top-level label/score is the best one.
    assert [s["score"] for s in scores] == sorted((s["score"] for s in scores), reverse=True)
    assert (result["label"], result["score"]) == (scores[0]["label"], pytest.approx(scores[0]["score"]))


def test_classify_top_k_limits_the_scores(client: httpx.Client) -> None:
    result = assert_succeeded(run_json_job(client, "classify", {"text": "meh"}, {"top_k": 1}))
    assert len(result["scores"]) == 1
    assert result["scores"][0]["label"] == result["label"]


def test_generate_from_a_prompt_respects_max_new_tokens(client: httpx.Client) -> None:
    result = assert_succeeded(
        run_json_job(client, "generate", {"prompt": "Write a haiku about queues."}, {"max_new_tokens": 8})
    )
    assert isinstance(result["text"], str) and result["text"].strip()
    assert isinstance(result["generated_tokens"], int)
    assert 1 <= result["generated_tokens"] <= 8


def test_generate_from_chat_messages_uses_the_chat_template(client: httpx.Client) -> None:
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Say hi."}]
    result = assert_succeeded(
        run_json_job(client, "generate", {"messages": messages}, {"max_new_tokens": 6, "temperature": 0.0})
    )
    assert isinstance(result["text"], str)
    assert 1 <= result["generated_tokens"] <= 6
    # The answer is only the new text, not the prompt echoed back.
    assert "Be brief" not in result["text"]


def test_generate_with_sampling_succeeds(client: httpx.Client) -> None:
    result = assert_succeeded(
        run_json_job(
            client,
            "generate",
            {"prompt": "Once upon a time"},
            {"max_new_tokens": 5, "temperature": 0.8, "top_p": 0.9},
        )
    )
    assert 1 <= result["generated_tokens"] <= 5
