"""Pre-tokens cut by Python (``word_ids.WordIds``) give the Rust tokenizer's ids, and only where that is known to hold.

Compared both ways on generated text for each accepted pre-tokenizer (GPT-2's
``ByteLevel`` regex, the Llama 3 split, the tiny student's with NFC), with
added tokens, contractions, whitespace runs, newlines and non-ASCII characters
on either side of the safe cuts; on every text of the shared traces; and
tokenizers matched otherwise must be refused, a wrong regex found by the probe.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_token_ids import _split, _trained, accepted  # noqa: F401  (the accepted tokenizers, a fixture)
from tokenizers import AddedToken, normalizers, pre_tokenizers

from tracetune.prepare import word_ids
from tracetune.prepare.token_ids import _plain_backend, _pre_regex, description, token_ids
from tracetune.prepare.word_ids import WordIds

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "traces"
TRACES = sorted(SHARED.rglob("*.jsonl")) if SHARED.is_dir() else []
PARTS = st.sampled_from(["a", "Zed", "'s", "'LL", "'re", "12345", " ", "  ", "\t", "\n", "\n\n", " \n", "\r\n", "\x0b",
                         "\x1c", ".", "...", "[", "]", "{", "\"", "'", "-", "_", "<|im_start|>", "<|im_end|>", "é",
                         "e\u0301", "—", "─", "→", "🎉", "日本", "\xa0", "\x85", "\u2028", "١٢", "x\ny", "}\n"])
TEXT = st.lists(PARTS, max_size=24).map("".join)


def _words(tok) -> WordIds | None:
    backend = _plain_backend(tok)
    return WordIds.of(backend, description(tok), _pre_regex(description(tok)["pre"]), tok.added_tokens_decoder)


def _lists(arrays) -> list[list[int]]:
    return [ids.tolist() for ids in arrays]


def _rust(tok, texts: list[str]) -> list[list[int]]:
    return [e.ids for e in _plain_backend(tok).encode_batch_fast(texts, add_special_tokens=False)]


def test_the_accepted_tokenizers_get_word_ids(accepted):
    assert all(_words(tok) is not None for tok in accepted.values())


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(texts=st.lists(TEXT, min_size=1, max_size=4), name=st.sampled_from(["gpt2", "llama3", "nfc", "tiny"]))
def test_word_ids_are_the_rust_tokenizers(accepted, texts, name):
    tok = accepted[name]
    assert _lists(_words(tok)(texts)) == _rust(tok, texts)


def test_safe_cuts_fall_after_a_lone_newline_between_non_spaces():
    assert word_ids.SAFE_CUT.split("a\nb\n\nc \nd\n e;\n—") == ["a\n", "b\n\nc \nd\n e;\n", "—"]


@pytest.mark.skipif(not TRACES, reason="shared traces absent")
def test_every_text_of_the_shared_traces(accepted):
    texts = []
    for path in TRACES:
        with path.open(encoding="utf-8") as fh:
            for line in fh:
                try:
                    record = json.loads(line)
                except ValueError:  # the traces' own damaged lines
                    continue
                texts.extend(s for s in _strings(record) if len(s) > 1)
    assert sum(map(len, texts)) > 1_000_000 and any(not t.isascii() for t in texts)
    for name in ("gpt2", "tiny"):
        tok = accepted[name]
        for at in range(0, len(texts), 2000):
            batch = texts[at : at + 2000]
            assert _lists(_words(tok)(batch)) == _rust(tok, batch), name


def _strings(value):
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


def test_tokenizers_matched_otherwise_are_refused(accepted):
    assert _words(_trained(pre_tokenizers.Metaspace())) is None
    assert _words(_trained(pre_tokenizers.ByteLevel(add_prefix_space=True, use_regex=True))) is None
    assert _words(_trained(pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True), normalizers.Lowercase())) is None
    assert _words(_trained(_split(r"\n\[|[^\n]+|\n"))) is None
    for token in (AddedToken("<sep>", lstrip=True), AddedToken("<w>", single_word=True), AddedToken("<nl>\n")):
        tok = _trained(pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True))
        tok.add_special_tokens({"additional_special_tokens": [token]})
        assert _words(tok) is None, token
    dropout = _trained(pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True))
    dropout.backend_tokenizer.model.dropout = 0.1
    assert _words(dropout) is None


def test_a_regex_that_cuts_otherwise_is_caught_by_the_probe(accepted, monkeypatch):
    wrong = word_ids.ASCII_REGEXES["ByteLevel"].replace(r"\s+(?!\S)|", "")  # whitespace runs kept whole
    monkeypatch.setitem(word_ids.ASCII_REGEXES, "ByteLevel", wrong)
    assert _words(accepted["gpt2"]) is None
    text = "a  b\n\n  c"
    assert token_ids(accepted["gpt2"], [text]) == _rust(accepted["gpt2"], [text])


def test_the_word_cache_stays_bounded_and_right(accepted, monkeypatch):
    monkeypatch.setattr(word_ids, "CACHE_WORDS", 50)
    tok = accepted["tiny"]
    words = _words(tok)
    texts = [f"word{n} other{n * 7} <|im_start|>x{n}'s" for n in range(300)]
    assert _lists(words(texts)) == _rust(tok, texts)
    assert len(words.cache) <= 50 + len(words.cache.fixed)
    assert _lists(words(["<|im_start|><|im_end|>"])) == _rust(tok, ["<|im_start|><|im_end|>"])


def test_token_ids_uses_them_for_the_student(accepted):
    from tracetune.prepare.token_ids import word_ids as found

    tok = accepted["tiny"]
    assert found(tok, _plain_backend(tok)) is found(tok, _plain_backend(tok)) is not None
    text = "<|im_start|>user\nFix it — now.\n  ok<|im_end|>\n"
    assert token_ids(tok, [text]) == [tok(text, add_special_tokens=False)["input_ids"]]


def test_only_characters_other_for_both_engines_are_split_by_python(accepted):
    words = _words(accepted["nfc"])
    assert words.splits("box ─── → done — ✓ 🎉") and {"─", "→", "—", "✓", "🎉"} <= words.other
    for text in ("café", "x\xa0y", "line\u2028break", "١٢٣", "e\u0301"):  # a letter, spaces, digits, text NFC changes
        assert not words.splits(text), text
    assert {"é", "\xa0", "\u2028", "١"} <= words.refused and not words.other & words.refused
    text = "ok ─\ncafé\nnext ─ line\n"
    assert _lists(words([text])) == _rust(accepted["nfc"], [text])
