"""A small built-in corpus for the tiny student's tokenizer: code, JSON tool calls, shell, prose.

Generated from a seed (no files, no network), so the tokenizer trained on it is
reproducible. It only needs to make common coding-agent text cheap to encode.
"""

from __future__ import annotations

import json
import random
from typing import Iterator

WORDS = (
    "the a to of and in is it that for on with as this be are file read write edit run test tests "
    "function class return import from def self value error result path line lines code change fix "
    "bug build install check output input list string number name type data config user agent tool "
    "call command directory project module package update add remove new old first next last all "
    "now let me look at see found need should will can we I you here there because then done ok "
    "please make sure about after before again also always another any around back been being both "
    "but by came come could did does doing each even every few get give go going good great had has "
    "have help how if into just keep know like long look made many may more most much must my never "
    "no not only or other our out over own part people place put same say set show small so some "
    "still such take than their them these they thing think those through time too under up use very "
    "want was way well were what when where which while who why work would year your missing failed "
    "passed running expected actual instead current default option options argument arguments local "
    "remote branch commit merge status diff stage staged version release server client request "
    "response header body json yaml markdown python typescript javascript node npm pip cargo rust "
    "go java shell script loop array object dict map set key keys values item items index length size "
    "count total empty null none true false undefined async await promise callback handler event "
    "stream buffer bytes text encoding utf decode encode format parse parser render template cache "
    "memory process thread queue worker job task session message messages history context window "
    "token tokens model training dataset split train eval loss metric score student teacher prompt "
    "able above accept access action active actually added adding address after against allow almost "
    "already although among amount answer anything appear apply approach area arrow assert assistant "
    "attempt attribute available avoid based basic become begin behavior below best better between "
    "block bottom boundary break browser bytes calculate called calling cannot case cause center "
    "character children choose clean clear click close collapse color column combine comment common "
    "compact compaction compare compile complete component compute condition connect consider console "
    "constant contain content continue control convert copy correct create created creating cursor "
    "custom debug declare decrease define delete depend describe design detail detect different "
    "display document during dynamic edge editor element else enable end ensure entry environment "
    "equal escape every exact example exist exit expand explain export extension extract factory "
    "fallback feature field filter final find fixed flag focus folder follow font footer force form "
    "format forward frame full general generate global group handle happen height hidden hide "
    "highlight hook ignore image implement include increase indent info initial inline insert inside "
    "instance integer internal invalid issue itself join label language large later layout leave left "
    "level library limit link listen load loaded logic logging lower main manager mark match maybe "
    "measure method might minimal mode modify move multiple name native needed nested network normal "
    "note nothing notice number offset older open operation order original outside overflow package "
    "padding page panel param parent paste pattern pending position possible prefer prefix present "
    "preview previous print private problem progress property provide provider query quick quote "
    "random range reason receive recent record reduce refactor reference register regular related "
    "reload remain remember rename repeat replace report require reset resize resolve rest result "
    "retry reuse right root round rule safe save scroll search second section select selected send "
    "separate service setting settings shape share short should side signal simple single skip slice "
    "sort source space special specific spinner start state static step stop storage store style "
    "submit success suffix summary support switch symbol sync system table target terminal theme "
    "thinking three timeout title toggle top track transform tree trigger trim try turn tui unique "
    "unit unknown until update upper usage valid validate variable verify view visible wait warning "
    "watch whole width within without word wrap write wrong yet zero"
).split()
IDENTS = (
    "getValue", "setValue", "readFile", "writeFile", "toString", "isEmpty", "parseArgs", "loadConfig",
    "__init__", "__name__", "self", "cls", "kwargs", "args", "None", "True", "False", "print", "len",
    "range", "enumerate", "isinstance", "dataclass", "Optional", "Path", "json", "os", "sys", "re",
    "console.log", "module.exports", "require", "process.env", "JSON.stringify", "Array.isArray",
    "const", "let", "function", "export", "interface", "type", "async", "await", "return", "new", "this",
    "string", "number", "boolean", "void", "null", "undefined", "private", "public", "readonly", "extends",
    "import", "from", "default", "catch", "throw", "Error", "Promise", "Record", "Map", "Set", "length",
)
INDENTS = ("", "\t", "\t\t", "\t\t\t", "\t\t\t\t", "    ", "        ", "  ", "    ")
TS_LINES = (
    "const {a} = {n}.{b}({c});",
    "if (!{a}) {{",
    "}} else {{",
    "return {a};",
    "}}",
    "}});",
    "export function {n}({a}: string, {b}?: number): {N} {{",
    "import {{ {N}, type {M} }} from \"./{n}.js\";",
    "for (const {a} of {b}) {{",
    "await this.{n}({a}, {{ {b}: true }});",
    "// {sentence}",
    "expect({a}).toBe({c});",
    "private {a}: {N} | undefined;",
    "throw new Error(`{sentence} ${{{a}}}`);",
)
NAMES = ("main", "parse", "load", "save", "render", "config", "utils", "reader", "session", "token", "model", "index")
EXTS = (".py", ".ts", ".js", ".json", ".md", ".toml", ".txt", ".sh", ".jsonl", ".yaml")
TOOLS = ("read", "bash", "edit", "write", "grep", "find", "ls")
SHELL = (
    "ls -la", "git status", "git diff", "npm test", "pytest -q", "python -m pytest tests/ -x", "cat README.md",
    "grep -rn TODO src/", "npm run build", "pip install -e .", "make", "cd src && ls", "node --version",
)
CODE = (
    "def {n}(self, {a}):\n    return self.{a}\n",
    "import {n}\nfrom pathlib import Path\n\n",
    "class {N}:\n    def __init__(self, {a}: str) -> None:\n        self.{a} = {a}\n",
    "for {a} in range(10):\n    print({a})\n",
    "if {a} is None:\n    raise ValueError(\"{a} is required\")\n",
    "export function {n}({a}: string): number {{\n  return {a}.length;\n}}\n",
    "const {a} = await {n}({{ path: \"{p}\" }});\n",
    "    assert {n}({a}) == {a}\n",
    "{{\n  \"name\": \"{n}\",\n  \"version\": \"1.0.0\"\n}}\n",
)


def _path(rng: random.Random) -> str:
    depth = rng.randint(1, 3)
    parts = [rng.choice(("src", "tests", "lib", "docs", "packages", rng.choice(NAMES))) for _ in range(depth)]
    return "/".join(parts) + "/" + rng.choice(NAMES) + rng.choice(EXTS)


def _sentence(rng: random.Random) -> str:
    words = [rng.choice(WORDS) if rng.random() < 0.85 else rng.choice(IDENTS) for _ in range(rng.randint(4, 14))]
    return " ".join(words).capitalize() + rng.choice((".", ".", ":", "?"))


def _tool_call(rng: random.Random) -> str:
    name = rng.choice(TOOLS)
    args: dict[str, object] = {"path": _path(rng)}
    if name == "bash":
        args = {"command": rng.choice(SHELL)}
    elif name == "edit":
        args.update(oldText=_sentence(rng), newText=_sentence(rng))
    elif name in ("grep", "find"):
        args = {"pattern": rng.choice(NAMES), "path": "."}
    call = json.dumps({"name": name, "arguments": args}, ensure_ascii=False)
    return f"<tool_call>\n{call}\n</tool_call>"


def _ts_block(rng: random.Random) -> str:
    lines = []
    for _ in range(rng.randint(2, 10)):
        n, a, b, c = rng.choice(NAMES), rng.choice(WORDS), rng.choice(WORDS), rng.choice(IDENTS)
        line = rng.choice(TS_LINES).format(
            n=n, N=n.capitalize(), M=b.capitalize(), a=a, b=b, c=c, sentence=_sentence(rng)
        )
        lines.append(rng.choice(INDENTS) + line)
    if rng.random() < 0.3:
        lines.insert(0, rng.choice(("─" * rng.randint(3, 40), "│ " + _sentence(rng), "✓ " + _sentence(rng))))
    return "\n".join(lines)


def _code(rng: random.Random) -> str:
    name = rng.choice(NAMES)
    return rng.choice(CODE).format(n=name, N=name.capitalize(), a=rng.choice(("path", "value", "line", "data")), p=_path(rng))


def _turn(rng: random.Random) -> str:
    role = rng.choice(("user", "assistant", "assistant", "tool", "system"))
    if role == "tool":
        body = "<tool_response>\n" + (_code(rng) if rng.random() < 0.5 else _sentence(rng)) + "\n</tool_response>"
    elif role == "assistant" and rng.random() < 0.6:
        body = (_sentence(rng) + "\n" if rng.random() < 0.5 else "") + _tool_call(rng)
    elif role == "assistant" and rng.random() < 0.2:
        body = f"<think>\n{_sentence(rng)}\n</think>\n\n{_sentence(rng)}"
    else:
        body = _sentence(rng)
    return f"<|im_start|>{role}\n{body}<|im_end|>\n"


def _shell(rng: random.Random) -> str:
    return "$ " + rng.choice(SHELL) + "\n" + "\n".join(_path(rng) for _ in range(rng.randint(1, 4)))


def _ident(rng: random.Random) -> str:
    a, b = rng.choice(WORDS), rng.choice(WORDS)
    return rng.choice((f"{a}_{b}", a + b.capitalize(), f"{a}.{b}", f"{a}-{b}", f"{a.upper()}_{b.upper()}"))


def _assignments(rng: random.Random) -> str:
    return "\n".join(f"{_ident(rng)} = {_ident(rng)}({_ident(rng)})" for _ in range(rng.randint(1, 5)))


def _numbers(rng: random.Random) -> str:
    return f"{_path(rng)}:{rng.randint(1, 999)}: {rng.choice(IDENTS)}({rng.randint(0, 4096)}, 0x{rng.getrandbits(32):08x})"


def corpus_lines(seed: int = 0, size: int = 12000) -> Iterator[str]:
    """``size`` pieces of agent-like text, the same for the same seed."""
    rng = random.Random(seed)
    makers = (_turn, _turn, _code, _sentence, _tool_call, _shell, _numbers, _assignments, _ts_block, _ts_block)
    for _ in range(size):
        yield rng.choice(makers)(rng)
