"""Char-level tokenizer for the tiny model, built locally with ``tokenizers`` (no download).

Every byte is one token, so arithmetic reasoning is spelled out digit by digit. The tokenizer is a
byte-level BPE with no merges and exactly Qwen2's pre-tokenizer/normalizer/decoder pipeline. Why:
transformers 5.x forces ``Qwen2Tokenizer`` for every ``qwen2`` model folder (``qwen2`` is in
``MODELS_WITH_INCORRECT_HUB_TOKENIZER_CLASS``, so the pinned ``tokenizer_class`` is ignored) and
that class rebuilds the pipeline from vocab + merges; a WordLevel char vocab then silently loses
spaces and newlines (seen with transformers 5.19 and 5.23). Built this way, ``Qwen2Tokenizer``,
``PreTrainedTokenizerFast`` and vLLM's tokenizer all produce the same ids, and since all 256 bytes
are in the vocabulary no input character is ever dropped. It is wrapped as
``PreTrainedTokenizerFast`` with a compact ChatML-like chat template (one special token per role); the class is still pinned in
``tokenizer_config.json`` for loaders that honour it.
"""

from __future__ import annotations

import json
from pathlib import Path

from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers
from transformers import PreTrainedTokenizerFast

PAD, BOS, EOS, UNK = "<pad>", "<s>", "</s>", "<unk>"
IM_START, IM_END = "<|im_start|>", "<|im_end|>"
ROLE_TOKENS = ["<|system|>", "<|user|>", "<|assistant|>"]
SPECIAL_TOKENS = [PAD, BOS, EOS, UNK, IM_START, IM_END, *ROLE_TOKENS]
# Qwen2's pre-tokenizer regex (transformers.models.qwen2.tokenization_qwen2.PRETOKENIZE_REGEX),
# copied so this module does not depend on a private constant.
QWEN2_PRETOKENIZE_REGEX = r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"""
# Model vocabulary (embedding rows): 9 special + 256 byte tokens, padded to a multiple of 64.
VOCAB_SIZE = 320


def _byte_alphabet() -> list[str]:
    """GPT-2's byte-to-unicode map: printable stand-ins for all 256 bytes (space is "Ġ", newline "Ċ")."""
    printable = (
        list(range(ord("!"), ord("~") + 1)) + list(range(0xA1, 0xAC + 1)) + list(range(0xAE, 0xFF + 1))
    )
    codes = printable[:]
    extra = 0
    for b in range(256):
        if b not in printable:
            printable.append(b)
            codes.append(256 + extra)
            extra += 1
    table = dict(zip(printable, codes))
    return [chr(table[b]) for b in range(256)]


def token_id_of_byte(byte: int) -> int:
    """Id of the token for one byte (e.g. ``token_id_of_byte(ord("7"))``)."""
    return len(SPECIAL_TOKENS) + byte


# One special token per role instead of ChatML's spelled-out "<|im_start|>user\n": with a char
# vocabulary that saves ~16 tokens per prompt, about a third of the tiny task's compute.
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|' + message['role'] + '|>' + message['content'] + '<|im_end|>' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|assistant|>' }}{% endif %}"
)


def build_tokenizer() -> PreTrainedTokenizerFast:
    """Build the char-level tokenizer in memory (deterministic, ~10 ms).

    Returns:
        A fast tokenizer whose eos is ``<|im_end|>`` (the end of an assistant turn), so vLLM and HF
        generation stop at the end of a chat answer without extra stop-token settings.
    """
    vocab = {tok: i for i, tok in enumerate(SPECIAL_TOKENS + _byte_alphabet())}
    if len(vocab) > VOCAB_SIZE:
        raise ValueError(f"vocabulary ({len(vocab)}) exceeds VOCAB_SIZE={VOCAB_SIZE}")
    # Mirrors Qwen2Tokenizer.__init__ so both loading paths tokenize identically.
    core = Tokenizer(
        models.BPE(
            vocab=vocab, merges=[], unk_token=None, continuing_subword_prefix="", end_of_word_suffix=""
        )
    )
    core.normalizer = normalizers.NFC()
    core.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(QWEN2_PRETOKENIZE_REGEX), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    core.decoder = decoders.ByteLevel()
    core.add_special_tokens(SPECIAL_TOKENS)
    tok = PreTrainedTokenizerFast(
        tokenizer_object=core,
        bos_token=BOS,
        eos_token=IM_END,
        pad_token=PAD,
        unk_token=UNK,
        additional_special_tokens=[IM_START, EOS, *ROLE_TOKENS],
        chat_template=CHAT_TEMPLATE,
        model_max_length=512,
        padding_side="left",
        clean_up_tokenization_spaces=False,
    )
    return tok


def save_tokenizer(out_dir: str | Path) -> PreTrainedTokenizerFast:
    """Write the tokenizer to ``out_dir`` with the class pinned for ``AutoTokenizer``.

    Args:
        out_dir: Model folder (created if missing).

    Returns:
        The tokenizer that was saved.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tok = build_tokenizer()
    tok.save_pretrained(out)
    cfg_path = out / "tokenizer_config.json"
    cfg = json.loads(cfg_path.read_text())
    cfg["tokenizer_class"] = "PreTrainedTokenizerFast"
    cfg_path.write_text(json.dumps(cfg, indent=2, sort_keys=True) + "\n")
    return tok
