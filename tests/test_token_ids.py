"""Window heads tokenized in two parts give the ids of the whole text, and only where that is known to hold.

Each accepted pre-tokenizer (GPT-2's ``ByteLevel`` regex, the Llama 3 split
and the tiny student's) is checked on generated texts cut after ``[...`` and
before a space and a digit, normalizer NFC included (combining marks around the
cut); tokenizers that could merge across the cut (no pre-tokenizer, another
normalizer, an added token holding a ``.``) must be refused.
"""

from __future__ import annotations

from array import array

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerFast

from tracetune.engines.tokenizer import load_tokenizer
from tracetune.prepare.planner import MARKER
from tracetune.prepare.token_ids import KNOWN_SPLIT_REGEXES, HeadIds, splits_before_count, token_ids

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
