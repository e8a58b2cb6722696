"""Practice tasks: many small generated coding tasks that widen the scripted teacher's experience.

The live suite has eight training tasks; a student that sees only those
learns them by heart (their file names, their one fix) and, given a new
task, replays an old fix. A real agent's traces cover many tasks, so the demo
teacher can also work *practice tasks*: small tasks of three kinds (fix a
one-line bug, change a setting, implement a one-line function), drawn from
the tables below with varied module names, neighbouring code, wording and
expected values. They are ``split = "train"`` tasks like the suite's and are
built to stay apart from the held-out ones: no multiplication, maximum,
word reversal or search, and no held-out function or file name
(``tests/test_demo_practice.py`` checks this, and that every reference fix
passes its check while the unfixed code fails it).
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from tracetune.eval.live.tasks import SolutionStep, Task

_MODULES = ["mathx", "helpers", "utils", "core", "textops", "lib", "numbers_util", "tools", "misc", "basic"]
_CONFIGS = ["config", "settings", "constants", "options"]


@dataclass(frozen=True)
class _Fn:
    """A one-line function: ``name(args)``, the right and a wrong body, and (call, expected) test pairs."""

    name: str
    args: str
    doc: str
    right: str
    wrong: str
    cases: tuple[tuple[str, str], ...]


_BUGS = [
    _Fn("subtract", "a, b", "Return a minus b.", "a - b", "a + b", (("subtract(5, 3)", "2"), ("subtract(0, 4)", "-4"))),
    _Fn("halve", "x", "Return half of x.", "x / 2", "x / 3", (("halve(8)", "4"), ("halve(3)", "1.5"))),
    _Fn("remainder", "a, b", "Return the remainder of a divided by b.", "a % b", "a // b", (("remainder(7, 3)", "1"), ("remainder(9, 4)", "1"))),
    _Fn("power", "a, b", "Return a to the power b.", "a ** b", "a ^ b", (("power(2, 3)", "8"), ("power(3, 2)", "9"))),
    _Fn("increment", "x", "Return x plus one.", "x + 1", "x - 1", (("increment(4)", "5"), ("increment(-1)", "0"))),
    _Fn("negate", "x", "Return x with its sign flipped.", "-x", "x", (("negate(3)", "-3"), ("negate(-2)", "2"))),
    _Fn("is_even", "n", "True when n is even.", "n % 2 == 0", "n % 2 == 1", (("is_even(4)", "True"), ("is_even(7)", "False"))),
    _Fn("is_positive", "x", "True when x is above zero.", "x > 0", "x < 0", (("is_positive(3)", "True"), ("is_positive(-2)", "False"))),
    _Fn("last_item", "xs", "Return the last element of xs.", "xs[-1]", "xs[0]", (("last_item([1, 2, 3])", "3"), ("last_item(['a', 'b'])", "'b'"))),
    _Fn("first_item", "xs", "Return the first element of xs.", "xs[0]", "xs[1]", (("first_item([4, 5, 6])", "4"), ("first_item(['x', 'y'])", "'x'"))),
    _Fn("count_items", "xs", "Return how many elements xs has.", "len(xs)", "len(xs) - 1", (("count_items([1, 2, 3])", "3"), ("count_items([])", "0"))),
    _Fn("shout", "text", "Return text in upper case.", "text.upper()", "text.lower()", (("shout('hi')", "'HI'"), ("shout('Ok')", "'OK'"))),
    _Fn("whisper", "text", "Return text in lower case.", "text.lower()", "text.upper()", (("whisper('HI')", "'hi'"), ("whisper('Ok')", "'ok'"))),
    _Fn("trim", "text", "Return text without spaces at either end.", "text.strip()", "text.lstrip()", (("trim('  a b  ')", "'a b'"), ("trim('x ')", "'x'"))),
    _Fn("join_lines", "lines", "Join lines with newlines.", "'\\n'.join(lines)", "' '.join(lines)", (("join_lines(['a', 'b'])", "'a\\nb'"), ("join_lines([])", "''"))),
    _Fn("full_name", "first, last", "Return 'first last'.", "first + ' ' + last", "last + ' ' + first", (("full_name('Ada', 'Lovelace')", "'Ada Lovelace'"),)),
    _Fn("total", "xs", "Return the sum of xs.", "sum(xs)", "len(xs)", (("total([2, 3, 4])", "9"), ("total([])", "0"))),
    _Fn("starts_with_a", "word", "True when word starts with 'a'.", "word.startswith('a')", "word.endswith('a')", (("starts_with_a('apple')", "True"), ("starts_with_a('banana')", "False"))),
]

_TODO = [
    _Fn("count_vowels", "text", "Count the vowels (a, e, i, o, u) in text, any case.", "sum(1 for c in text.lower() if c in 'aeiou')", "",
        (("count_vowels('Hello')", "2"), ("count_vowels('xyz')", "0"))),
    _Fn("first_word", "text", "Return the first word of text, or '' when there is none.", "text.split()[0] if text.split() else ''", "",
        (("first_word('  hello world')", "'hello'"), ("first_word('')", "''"))),
    _Fn("word_lengths", "text", "Return the length of each word in text.", "[len(w) for w in text.split()]", "",
        (("word_lengths('a bb  ccc')", "[1, 2, 3]"), ("word_lengths('')", "[]"))),
    _Fn("capitalize_words", "text", "Capitalize every word, single spaces between them.", "' '.join(w.capitalize() for w in text.split())", "",
        (("capitalize_words('hello  big world')", "'Hello Big World'"),)),
    _Fn("only_even", "xs", "Return the even numbers of xs, in order.", "[x for x in xs if x % 2 == 0]", "",
        (("only_even([1, 2, 3, 4])", "[2, 4]"), ("only_even([])", "[]"))),
    _Fn("count_char", "text, ch", "Count how often ch occurs in text.", "text.count(ch)", "",
        (("count_char('banana', 'a')", "3"), ("count_char('', 'a')", "0"))),
    _Fn("dedupe", "xs", "Return xs without repeats, keeping first occurrences in order.", "list(dict.fromkeys(xs))", "",
        (("dedupe([3, 1, 3, 2, 1])", "[3, 1, 2]"),)),
    _Fn("clamp", "x, low, high", "Return x limited to the range low..high.", "low if x < low else high if x > high else x", "",
        (("clamp(5, 0, 3)", "3"), ("clamp(-1, 0, 3)", "0"), ("clamp(2, 0, 3)", "2"))),
    _Fn("initials", "name", "Return the upper-case first letter of each word of name.", "''.join(w[0].upper() for w in name.split())", "",
        (("initials('grace brewster hopper')", "'GBH'"), ("initials('')", "''"))),
]

_SETTINGS = [
    ("PORT", "8000", "8080", "the server port"), ("TIMEOUT", "30", "60", "the timeout"), ("DEBUG", "True", "False", "debug mode"),
    ("LOG_LEVEL", '"INFO"', '"DEBUG"', "the log level"), ("MAX_USERS", "10", "50", "the user limit"),
    ("PAGE_SIZE", "20", "25", "the page size"), ("VERSION", '"1.0"', '"1.1"', "the version"),
    ("CACHE_SECONDS", "300", "600", "the cache lifetime"), ("WORKERS", "2", "4", "the worker count"),
]

_NEIGHBOURS = [
    ("as_list", "x", "[x]"), ("is_empty", "xs", "len(xs) == 0"), ("as_text", "x", "str(x)"), ("pair", "a, b", "(a, b)"),
]


def _function(fn: _Fn, body: str) -> str:
    return f'def {fn.name}({fn.args}):\n    """{fn.doc}"""\n    {body}\n'


def _test_file(module: str, imports: str, asserts: list[str]) -> str:
    lines = "\n".join(f"        {a}" for a in asserts)
    return (f"import unittest\n\n{imports}\n\n\n"
            f"class Test{module.title().replace('_', '')}(unittest.TestCase):\n    def test_it(self):\n{lines}\n\n\n"
            'if __name__ == "__main__":\n    unittest.main()\n')


def _function_task(fn: _Fn, kind: str, rng: random.Random, n: int) -> Task:
    module = rng.choice(_MODULES)
    other = rng.choice(_NEIGHBOURS)
    neighbour = f"def {other[0]}({other[1]}):\n    return {other[2]}\n"
    broken = f"return {fn.wrong}" if kind == "bug" else "raise NotImplementedError"
    parts = [_function(fn, broken), neighbour]
    rng.shuffle(parts)
    path, test = f"{module}.py", f"test_{module}.py"
    asserts = [f"self.assertEqual({call}, {want})" for call, want in fn.cases]
    call, want = fn.cases[0]
    if kind == "bug":
        instruction = f"{fn.name} in {path} returns the wrong value. Fix it so {test} passes."
        phrasings = [f"{call} should be {want} but {path} gets it wrong. Fix {path}.",
                     f"{test} fails: {fn.name}() in {path} is broken. Please fix it."]
    else:
        instruction = f"Implement {fn.name} in {path}: {fn.doc[0].lower()}{fn.doc[1:]} See {test}."
        phrasings = [f"{fn.name} in {path} is not written yet. Implement it so {test} passes."]
    return Task(
        id=f"practice-{n:02d}-{fn.name}", difficulty="easy", split="train", instruction=instruction, phrasings=phrasings,
        check=f"python3 -m unittest -q test_{module}", files={path: "\n\n".join(parts)},
        check_files={test: _test_file(module, f"from {module} import {fn.name}", asserts)},
        solution=[SolutionStep(tool="edit", path=path, edits=[{"oldText": f"    {broken}", "newText": f"    return {fn.right}"}])],
    )


def _setting_task(setting: tuple[str, str, str, str], rng: random.Random, n: int) -> Task:
    name, old, new, what = setting
    module = rng.choice(_CONFIGS)
    others = [s for s in _SETTINGS if s[0] != name]
    keep = rng.sample(others, 2)
    lines = [f"{name} = {old}", *(f"{k} = {v}" for k, v, _, _ in keep)]
    rng.shuffle(lines)
    path, test = f"{module}.py", f"test_{module}.py"
    asserts = [f"self.assertEqual({module}.{name}, {new})", *(f"self.assertEqual({module}.{k}, {v})" for k, v, _, _ in keep)]
    return Task(
        id=f"practice-{n:02d}-{name.lower()}", difficulty="easy", split="train",
        instruction=f"Change {name} in {path} from {old} to {new} and make sure the tests pass.",
        phrasings=[f"Please set {what} ({name}) in {path} to {new}.", f"{path} should have {name} = {new}. Change it."],
        check=f"python3 -m unittest -q test_{module}", files={path: "\n".join(lines) + "\n"},
        check_files={test: _test_file(module, f"import {module}", asserts)},
        solution=[SolutionStep(tool="edit", path=path, edits=[{"oldText": f"{name} = {old}", "newText": f"{name} = {new}"}])],
    )


def practice_tasks(count: int, seed: int = 0) -> list[Task]:
    """``count`` practice tasks (bug fixes, implementations and settings in turn), deterministic for ``seed``."""
    rng = random.Random(seed)
    pools = [("bug", rng.sample(_BUGS, len(_BUGS))), ("todo", rng.sample(_TODO, len(_TODO))),
             ("setting", rng.sample(_SETTINGS, len(_SETTINGS)))]
    tasks: list[Task] = []
    for n in range(count):
        kind, pool = pools[n % len(pools)]
        item = pool[(n // len(pools)) % len(pool)]
        tasks.append(_setting_task(item, rng, n) if kind == "setting" else _function_task(item, kind, rng, n))
    return tasks
