"""Many renders of one Episode's messages with the chat template, each message prepared once.

``apply_chat_template`` prepares its whole input again on every call: it drops
``None`` values, copies every message into plain JSON types and aliases the
reasoning fields, then renders the compiled template. ``pieces`` renders each
Episode thousands of times in small slices (a segment after its context, a
generation prompt, a window), so that preparation, not the template, was most
of the time (0.18 ms a call against 0.06 ms for the template alone, on pi's
before-compaction session).

``TemplateRenderer`` does the same steps with transformers' own functions, but
prepares each message (and the tool list) once and passes the same prepared
objects to every render. The sandbox transformers renders in cannot change
them, so sharing is safe. The template, its compilation and the variables it
sees (the tokenizer's special tokens) are those ``apply_chat_template`` uses.

Trust rests on comparison, not on reading transformers. The caller
(``pieces.RenderedEpisode.build``) renders every Episode whole the official
way, and its segments, rendered here, must end it exactly: each segment is
checked against ``apply_chat_template``'s own text. ``agrees`` renders one
generation prompt both ways, and the whole Episode both ways when the
segments do not fit; a transformers version whose helpers moved or changed
makes ``fast`` false there, and every render goes through
``apply_chat_template`` as before.

The template is compiled a second time, in an overlay of transformers' own
sandboxed environment (same filters, globals and extensions) whose attribute
lookup on a plain ``dict`` reads the key straight away when ``dict`` has no
attribute of that name (``message.role``). Jinja's own lookup tries the
attribute first and catches the ``AttributeError``: the same result, at about a
fifth of a segment's render time. Names that ``dict`` does have
(``message.items``, ``__class__``) go through the sandbox's checks as before.
Its ``tojson`` filter remembers the JSON of the lists and dicts it has dumped
(tool schemas, tool-call arguments), which every render would dump again.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any, Sequence

from tracetune.prepare.render import apply_template

Messages = Sequence[dict[str, Any]]


def _helpers():
    """transformers' message preparation and compiled-template cache, or None when they are not where expected."""
    try:
        from transformers.utils import chat_template_utils as ctu

        return (ctu._normalize_chat_messages, ctu._plain_template_data, ctu._alias_reasoning_fields,
                ctu._compile_jinja_template)
    except (ImportError, AttributeError):
        return None


_DICT_NAMES = frozenset(dir(dict))


@lru_cache(maxsize=8)
def _dict_first(compile_, template: str):
    """``template`` compiled in an overlay of ``compile_(template)``'s environment that looks plain dicts' keys up first."""
    env = compile_(template).environment.overlay()
    sandboxed = env.getattr

    def getattr_(obj, attribute):
        if type(obj) is dict and attribute not in _DICT_NAMES:
            try:
                return obj[attribute]
            except KeyError:
                return env.undefined(obj=obj, name=attribute)
        return sandboxed(obj, attribute)

    env.getattr = getattr_
    env.filters = {**env.filters, "tojson": _remembered(env.filters["tojson"])}
    return env.from_string(template)


#: Objects ``_remembered`` keeps the JSON of at most, per template.
REMEMBERED = 4096


def _remembered(tojson):
    """``tojson`` answering again from memory for a list or dict it has seen (the object kept, so its id stays its own).

    Every render of a segment or window dumps the same tool schemas and tool-call arguments again;
    they are the prepared copies ``TemplateRenderer`` shares between renders, which the sandboxed
    template cannot change.
    """
    seen: dict[tuple, tuple[Any, str]] = {}

    def cached(value, *args, **kwargs):
        if type(value) not in (dict, list):
            return tojson(value, *args, **kwargs)
        key = (id(value), args, tuple(sorted(kwargs.items())))
        try:
            hit = seen.get(key)
        except TypeError:  # an option that cannot be a key (a list of separators): dumped every time
            return tojson(value, *args, **kwargs)
        if hit is None or hit[0] is not value:
            if len(seen) >= REMEMBERED:
                seen.clear()
            hit = seen[key] = (value, tojson(value, *args, **kwargs))
        return hit[1]

    return cached


class TemplateRenderer:
    """Renders message lists as ``apply_template`` does, preparing each message object once."""

    def __init__(self, tokenizer):
        self.tokenizer = tokenizer
        self.fast = False
        self._prepared: dict[int, tuple[dict, dict]] = {}  # id(message) -> (message, prepared), the message kept alive
        self._tools: dict[int, tuple[Any, Any]] = {}
        self._compiled: dict[bool, Any] = {}
        helpers = _helpers()
        if helpers is not None:
            self._normalize, self._plain, self._alias, self._compile = helpers
            try:
                self._variables = self._plain({**tokenizer.special_tokens_map})
                self.fast = True
            except Exception:  # a tokenizer without the usual attributes: the official path only
                pass

    def render(self, messages: Messages, tools: Sequence[dict] | None = None, *, generation: bool = False) -> str:
        """``apply_template(tokenizer, messages, tools, generation=generation)``, without re-preparing known messages."""
        if not self.fast:
            return apply_template(self.tokenizer, messages, tools, generation=generation)
        has_tools = bool(tools)
        compiled = self._compiled.get(has_tools)
        if compiled is None:
            template = self.tokenizer.get_chat_template(None, list(tools) if tools else None)
            compiled = self._compiled[has_tools] = _dict_first(self._compile, template)
        return compiled.render(messages=[self._message(m) for m in messages], tools=self._tool_schemas(tools),
                               documents=None, add_generation_prompt=generation, **self._variables)

    def agrees(self, messages: Messages, tools: Sequence[dict] | None = None, *, generation: bool = False) -> str:
        """``messages`` rendered the official way; ``fast`` turns false when this renderer gives anything else."""
        official = apply_template(self.tokenizer, messages, tools, generation=generation)
        if self.fast:
            try:
                same = self.render(messages, tools, generation=generation) == official
            except Exception:
                same = False
            self.fast = same
        return official

    def _message(self, message: dict) -> dict:
        entry = self._prepared.get(id(message))
        if entry is None or entry[0] is not message:
            prepared = self._alias(self._plain(self._normalize([message])))[0]
            entry = self._prepared[id(message)] = (message, prepared)
        return entry[1]

    def _tool_schemas(self, tools: Sequence[dict] | None):
        if not tools:
            return None
        entry = self._tools.get(id(tools))
        if entry is None or entry[0] is not tools:
            entry = self._tools[id(tools)] = (tools, self._plain(list(tools)))
        return entry[1]
