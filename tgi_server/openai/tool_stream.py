"""A streamed tool call, delta by delta, as TGI 3.x streams one and OpenAI's clients assemble it.

The model writes TGI's tool grammar, `{"function": {"_name": "<tool>", <its arguments>}}`. While
it writes the name, nothing is sent. Then one delta names the call (`id`, `type`,
`function.name`, empty `arguments`), and the arguments follow as they come: `{`, then the
model's own text after the comma that follows `_name`, each piece as soon as it cannot be the
end of the call (a trailing run of `}` and white space is held back until more text follows
it), and last what was held back, without the call's own closing brace. Joined, the argument
deltas are the JSON object of the call's arguments, its keys in the model's order; `finish`
checks that they parse to the arguments of the whole output.

A call the token budget cut short ends with what was generated of it (`finish(..., cut=True)`),
as OpenAI ends one, rather than with an error; a call cut inside its name is still an error.

Sent whole once the model is done: `no_tool` (the model answers in text; one content delta),
and a call whose `_name` is not its first member (a grammar that orders keys otherwise writes
arguments before the name is known): the name delta, then all the arguments in one.

Pure: text in, deltas (the `delta` objects of chat chunks) out.
"""

from __future__ import annotations

import json
import re
from typing import Any

from tgi_server.errors import ToolError
from tgi_server.openai.requests import NO_TOOL, cut_tool_call, tool_call

__all__ = ["TOOL_CALL_ID", "ToolCallStream"]

JSON = dict[str, Any]

TOOL_CALL_ID = "0"
"""The one tool call's id, as TGI gives it (a request makes at most one call)."""

_NAME_FIRST = re.compile(
    r'\s*\{\s*"function"\s*:\s*\{\s*"_name"\s*:\s*("(?:[^"\\]|\\.)*")\s*([,}])'
)
"""The output's beginning up to its name and what follows it: `,` (arguments) or `}` (none)."""
_HELD = " \t\r\n}"
"""What may end the arguments' text: held back until something else follows."""


class ToolCallStream:
    """One tool call's deltas from the text of its tokens (`push`, then `finish` once). Each
    token's text is looked at once: the work is in proportion to the output."""

    def __init__(self) -> None:
        self._head = ""
        """The output while its name is unknown."""
        self._name: str | None = None
        self._streaming = False
        """The name is known and arguments follow it: they are being sent."""
        self._opening = True
        """The arguments' `{` is still to be sent, before their first piece."""
        self._held = ""
        """The end of the arguments so far that may close the call: sent once text follows."""
        self._sent: list[str] = []
        """The arguments' pieces sent so far."""

    def push(self, text: str) -> list[JSON]:
        """The deltas that the output so far, `text` appended, lets us send now."""
        deltas: list[JSON] = []
        if self._name is None:
            self._head += text
            found = _NAME_FIRST.match(self._head)
            if found is None:
                return deltas
            self._name = str(json.loads(found.group(1)))
            if self._name == NO_TOOL:
                return deltas
            deltas.append(_name_delta(self._name))
            self._streaming = found.group(2) == ","
            text = self._head[found.end() :]
        if self._streaming:
            deltas += self._arguments(text)
        return deltas

    def finish(self, generated_text: str, *, cut: bool = False) -> list[JSON]:
        """The last deltas, once the model is done and wrote `generated_text` (all of the
        output; `cut` when the token budget ended it); ToolError when it is not a tool call (nor
        one cut after its name), or when the arguments sent so far are not those of the call."""
        try:
            name, arguments = tool_call(generated_text)
        except ToolError:
            if not cut:
                raise
            return self._cut_short(generated_text)
        if name is None:
            return [{"role": "assistant", "content": str(arguments.get("content", ""))}]
        if self._name is None:  # `_name` came after the arguments: all of it now
            return [_name_delta(name), _arguments_delta(json.dumps(arguments))]
        # What was held back but the call's own closing brace; `{}` for a call with no arguments
        last = self._held.rstrip().removesuffix("}").rstrip() if self._streaming else "{}"
        whole = "".join(self._sent) + last
        if name != self._name or not _same_arguments(whole, arguments):
            raise ToolError(f"the streamed tool call does not match the output {generated_text!r}")
        return [_arguments_delta(last)] if last else []

    def _cut_short(self, generated_text: str) -> list[JSON]:
        """The last deltas of a call cut short: what was generated of it and not yet sent."""
        answer = cut_tool_call(generated_text)
        if answer is None:
            raise ToolError(f"the tool call was cut short in its name: {generated_text!r}")
        name, so_far = answer
        if name is None:
            return [{"role": "assistant", "content": so_far}]
        if self._name is None:  # `_name` came after the arguments: all of it now
            return [_name_delta(name), _arguments_delta(so_far)]
        rest = ("{" if self._opening else "") + self._held
        return [_arguments_delta(rest)] if rest else []

    def _arguments(self, text: str) -> list[JSON]:
        """The delta of what `text` adds to the arguments and lets us send, if anything."""
        pending = self._held + text
        piece = pending.rstrip(_HELD)
        self._held = pending[len(piece) :]
        if self._opening:
            piece, self._opening = "{" + piece, False
        if not piece:
            return []
        self._sent.append(piece)
        return [_arguments_delta(piece)]


def _arguments_delta(piece: str) -> JSON:
    return {"tool_calls": [{"index": 0, "function": {"arguments": piece}}]}


def _name_delta(name: str) -> JSON:
    call = {
        "index": 0,
        "id": TOOL_CALL_ID,
        "type": "function",
        "function": {"name": name, "arguments": ""},
    }
    return {"role": "assistant", "tool_calls": [call]}


def _same_arguments(text: str, arguments: JSON) -> bool:
    try:
        return bool(json.loads(text) == arguments)
    except ValueError:
        return False
