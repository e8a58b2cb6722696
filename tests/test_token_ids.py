"""Window heads tokenized in two parts give the ids of the whole text, and only where that is known to hold;
target masks read from token lengths are the masks offsets give.

Each accepted pre-tokenizer (GPT-2's ``ByteLevel`` regex, the Llama 3 split
and the tiny student's) is checked on generated texts cut after ``[...`` and
before a space and a digit, normalizer NFC included (combining marks around the
cut); tokenizers that could merge across the cut (no pre-tokenizer, another
normalizer, an added token holding a ``.``) must be refused. The same
tokenizers get span masks from their ids' byte lengths (``TokenLengths``)
equal to the offsets' masks on generated text with multi-byte characters;
tokenizers whose offsets the lengths cannot give are refused.
"""

from __future__ import annotations

import unicodedata
from array import array

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerFast

from tracetune.engines.tokenizer import load_tokenizer
from tracetune.prepare.planner import MARKER
from tracetune.prepare.token_ids import KNOWN_SPLIT_REGEXES, HeadIds, splits_before_count, token_ids, token_lengths

CORPUS = ["def main():\n    print('hi')\n\n[... 3 earlier messages omitted ...]\n", "Ünïcödé e\u0301 [x](y)\n\n[1, 2]",
          "the quick brown fox\r\n\t[tool] 123 4567 ...]\n\n"] * 20
TEXT = st.text(alphabet="ab Z1 2\n\r\t.[]{}'é\u0301\u0308-_<|>", max_size=30)


def _trained(pre, normalizer=None, added=()) -> PreTrainedTokenizerFast:
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre
    tok.normalizer = normalizer
    tok.train_from_iterator(CORPUS, trainers.BpeTrainer(vocab_size=400, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                                        show_progress=False))
    out = PreTrainedTokenizerFast(tokenizer_object=tok)
    out.add_special_tokens({"additional_special_tokens": ["<|im_start|>", *added]})
    return out


def _split(regex: str):
    return pre_tokenizers.Sequence([pre_tokenizers.Split(pattern=_Regex(regex), behavior="isolated"),
                                    pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])


def _Regex(pattern: str):
    from tokenizers import Regex

    return Regex(pattern)


@pytest.fixture(scope="module")
def accepted(tiny_student):
    llama3, digits = sorted(KNOWN_SPLIT_REGEXES, key=len, reverse=True)
    return {
        "gpt2": _trained(pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)),
        "llama3": _trained(_split(llama3)),
        "nfc": _trained(_split(digits), normalizers.NFC()),
        "tiny": load_tokenizer(tiny_student),
    }


def test_the_accepted_tokenizers_are_recognised(accepted):
    assert all(splits_before_count(tok) for tok in accepted.values())


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(before=TEXT, digit=st.sampled_from("0123456789"), after=TEXT, name=st.sampled_from(["gpt2", "llama3", "nfc", "tiny"]))
def test_cutting_before_the_count_changes_no_id(accepted, before, digit, after, name):
    tok = accepted[name]
    a, b = "<|im_start|>user\n" + before + "[...", " " + digit + after
    whole, = token_ids(tok, [a + b])
    assert whole == tok(a + b, add_special_tokens=False)["input_ids"]
    left, right = token_ids(tok, [a, b])
    assert whole == left + right


def test_heads_tokenize_as_whole_texts_with_the_task_tokenized_once(accepted):
    tok = accepted["tiny"]
    task = "<|im_start|>user\nFix the parser.\n[see] issue 12 [... ] [...x\n\n[..."
    heads = [task[:-4] + MARKER.format(n=n) + "<|im_end|>\n" for n in (3, 17, 250)]
    heads.append("<|im_start|>user\nno marker here\n[x]<|im_end|>\n")
    ids_of = HeadIds(tok)
    assert ids_of.safe
    got = ids_of(heads)
    assert [list(g) for g in got] == token_ids(tok, heads)
    assert list(ids_of._before) == [task]  # cut once, right before the marker, and remembered
    again = ids_of([task[:-4] + MARKER.format(n=4)])
    assert list(again[0]) == token_ids(tok, [task[:-4] + MARKER.format(n=4)])[0]
    assert all(isinstance(g, array) for g in got)


def test_tokenizers_that_could_merge_across_the_cut_are_refused(accepted):
    assert not splits_before_count(_trained(pre_tokenizers.Metaspace()))
    assert not splits_before_count(_trained(pre_tokenizers.ByteLevel(add_prefix_space=True, use_regex=True)))
    assert not splits_before_count(_trained(_split(r"\n\[|[^\n]+|\n")))
    assert not splits_before_count(_trained(pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True),
                                                  normalizers.Lowercase()))
    assert not splits_before_count(_trained(pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True),
                                                  added=("<|file.sep|>",)))
    refused = HeadIds(_trained(pre_tokenizers.Metaspace()))
    text = "<|im_start|>user\ntask\n" + MARKER.format(n=2)
    assert list(refused([text])[0]) == token_ids(refused.tokenizer, [text])[0] and not refused._before


def _offsets_mask(tok, text: str, span: tuple[int, int]) -> tuple[bytes, int]:
    """The mask and boundary count ``pieces.tokenize_pieces`` computes from the tokenizer's offsets."""
    s, e = span
    enc = tok(text, add_special_tokens=False, return_offsets_mapping=True)
    mask, boundary = bytearray(len(enc["input_ids"])), 0
    for j, (a, b) in enumerate(enc["offset_mapping"]):
        if s <= a < e:
            mask[j] = 1
            boundary += b > e
        elif a < s < b:
            boundary += 1
    return bytes(mask), boundary


WIDE = st.text(alphabet="ab Z1 2\n\t.[]{}'é\u0301—→🎉日<|>\x04", max_size=40)
CORPUS_CHARS = set("".join(CORPUS)) - {"\u0301"}


def test_masks_from_token_lengths_are_the_offsets_masks(accepted):
    measured: list[str] = []

    @settings(max_examples=300, deadline=None)
    @given(text=WIDE, cut=st.tuples(st.integers(0, 60), st.integers(0, 60)),
           name=st.sampled_from(["gpt2", "llama3", "nfc", "tiny"]))
    @example(text="x", cut=(0, 60), name="gpt2").via("every tokenizer measured at least once")
    @example(text="x", cut=(0, 60), name="llama3").via("every tokenizer measured at least once")
    @example(text="x", cut=(0, 60), name="nfc").via("every tokenizer measured at least once")
    @example(text="x", cut=(0, 60), name="tiny").via("every tokenizer measured at least once")
    def same(text, cut, name):
        tok = accepted[name]
        text = "<|im_start|>assistant\n" + text + "<|im_end|>\n"
        lo, hi = min(min(cut), len(text)), min(max(cut), len(text))
        got = token_lengths(tok).mask(token_ids(tok, [text])[0], text, (lo, hi))
        if got is None:  # text NFC would change, or a character the small vocabularies lack (the offsets decide)
            assert text != unicodedata.normalize("NFC", text) or any(c not in CORPUS_CHARS for c in text)
            return
        assert got == _offsets_mask(tok, text, (lo, hi))
        measured.append(name)

    same()
    assert {"gpt2", "llama3", "nfc", "tiny"} <= set(measured)
    multibyte = "<|im_start|>assistant\nDone — moved ✓ 3 files → src/ 🎉, naïve café\n<|im_end|>\n"
    ids = token_ids(accepted["gpt2"], [multibyte])[0]
    for span in ((22, len(multibyte) - 11), (23, 40), (30, 31), (0, len(multibyte))):
        assert token_lengths(accepted["gpt2"]).mask(ids, multibyte, span) == _offsets_mask(accepted["gpt2"], multibyte, span)


def test_tokenizers_whose_offsets_lengths_cannot_give_are_refused():
    assert token_lengths(_trained(pre_tokenizers.Metaspace())) is None
    assert token_lengths(_trained(pre_tokenizers.ByteLevel(add_prefix_space=True, use_regex=True))) is None
    assert token_lengths(_trained(pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True),
                                  normalizers.Lowercase())) is None
    stripping = _trained(pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True))
    from tokenizers import AddedToken

    stripping.add_special_tokens({"additional_special_tokens": [AddedToken("<sep>", lstrip=True)]})
    assert token_lengths(stripping) is None
    trimming = _trained(pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True))
    from tokenizers import processors

    trimming.backend_tokenizer.post_processor = processors.ByteLevel(trim_offsets=True)
    assert token_lengths(trimming) is None


def test_model_settings_that_break_either_shortcut_are_refused():
    """Read from the model's attributes, not its JSON: dropout, a subword prefix or a fused unknown token."""
    byte_level = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    plain = _trained(byte_level)
    assert splits_before_count(plain) and token_lengths(plain) is not None
    dropout = _trained(byte_level)
    dropout.backend_tokenizer.model.dropout = 0.1
    assert not splits_before_count(dropout)  # lengths still hold: they are read off the ids drawn
    for setting, value in (("continuing_subword_prefix", "##"), ("end_of_word_suffix", "</w>")):
        changed = _trained(byte_level)
        setattr(changed.backend_tokenizer.model, setting, value)
        assert token_lengths(changed) is None, setting
    fused = _trained(byte_level)
    fused.backend_tokenizer.model.unk_token = "<unk>"
    fused.backend_tokenizer.model.fuse_unk = True
    assert token_lengths(fused) is None


def test_lengths_are_found_again_for_a_tokenizer_that_grew():
    tok = _trained(pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True))
    before = token_lengths(tok)
    assert token_lengths(tok) is before
    tok.add_tokens(["<|new|>"])
    after = token_lengths(tok)
    new_id = tok.convert_tokens_to_ids("<|new|>")
    assert after is not before and after.lengths[new_id] == len("<|new|>") and new_id >= len(before.lengths)
