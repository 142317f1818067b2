# The chat-template render helper: attuned runs it as `/usr/bin/python3 -I -c <this file>` and
# talks to it over stdin/stdout, one JSON object a line (server/engine/chat/chat_renderer.h).
#
# Why a Python helper running Debian's python3-jinja2, and not a Jinja engine of our own: chat
# templates are Python-flavoured Jinja (string methods such as .strip() and .split(), namespace(),
# loop controls, filters such as tojson/trim/selectattr, Python truthiness and slicing). The only
# way to render them exactly as transformers' apply_chat_template does is to run the same
# engine, configured the same way; an interpreter of our own would differ in corner cases that
# nobody would notice until a model was trained on a silently different text. Debian 12 ships
# Jinja 3.1 and no C++ Jinja; the helper is a separate process, so a template that loops for
# ever or eats memory is killed (the caller bounds the time per record; limits below bound
# memory and CPU) and never takes the server down.
#
# The environment is transformers' (utils/chat_template_utils.py): ImmutableSandboxedEnvironment
# with trim_blocks, lstrip_blocks, the loopcontrols extension and a {% generation %} extension
# that records where generation blocks start and end; tojson without HTML escaping and with
# indent/separators/sort_keys; raise_exception and strftime_now as globals. The template is
# called as transformers calls it: messages, tools (None when absent), documents=None,
# add_generation_prompt=False, plus the tokenizer's special tokens (bos_token, eos_token, ...).
#
# Protocol. First line: {"template": str, "variables": {...}}; reply {"ok": true} or
# {"error": str} (a syntax error, an unknown tag). Then per request:
#   {"conversation": {"messages": [...], "tools": [...]}, "variables": {...}}
# reply {"text": str, "spans": [[begin, end], ...], "generation": bool} with UTF-8 byte offsets
# of the trained spans, or {"error": str}. The spans are the generation blocks when the template
# has them (minus those of assistant messages with weight 0, when blocks and assistant messages
# pair up), else attune's rule for assistant spans found by rendering (also in
# tests/golden/chat/make_chat_goldens.py, which computes it with transformers): a span starts
# where the assistant message's content starts (where rendering it with the content replaced by
# a sentinel first differs) and ends after the end-of-turn text the template writes after the
# content when the message ends the conversation, as far as the whole rendering has it. When the
# template does not render the content at all (Llama's tool calls) the span is the message's turn
# found by rendering the prefixes before and through it.
import json
import resource
import sys

resource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30))

from contextlib import contextmanager
from datetime import datetime

import jinja2
import jinja2.ext
import jinja2.nodes
from jinja2.sandbox import ImmutableSandboxedEnvironment

SENTINEL = "\ue000\ue001\ue002"


class GenerationTracker(jinja2.ext.Extension):
    """{% generation %}...{% endgeneration %}: renders its body and records where it went."""

    tags = {"generation"}

    def __init__(self, environment):
        super().__init__(environment)
        environment.extend(activate_tracker=self.activate_tracker)
        self._blocks = None
        self._indices = None

    def parse(self, parser):
        lineno = next(parser.stream).lineno
        body = parser.parse_statements(["name:endgeneration"], drop_needle=True)
        return jinja2.nodes.CallBlock(self.call_method("_generation"), [], [], body).set_lineno(lineno)

    @jinja2.pass_eval_context
    def _generation(self, context, caller):
        rv = caller()
        # As transformers: tracking is on once something was rendered or recorded (so a block
        # that opens the output is not recorded; kept for equality).
        if self._blocks or self._indices:
            start = len("".join(self._blocks))
            self._indices.append((start, start + len(rv)))
        return rv

    @contextmanager
    def activate_tracker(self, blocks, indices):
        try:
            self._blocks, self._indices = blocks, indices
            yield
        finally:
            self._blocks, self._indices = None, None


def raise_exception(message):
    raise jinja2.exceptions.TemplateError(message)


def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
    return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)


def strftime_now(format):
    return datetime.now().strftime(format)


def compile_template(source):
    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True,
                                        extensions=[GenerationTracker, jinja2.ext.loopcontrols])
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = strftime_now
    return env.from_string(source)


class Renderer:
    def __init__(self, source, variables):
        self.template = compile_template(source)
        self.has_generation = GENERATION_TAG in source
        self.variables = variables

    def render(self, messages, tools, variables, add_generation_prompt=False):
        return "".join(self._generate(messages, tools, variables, add_generation_prompt))

    def render_tracked(self, messages, tools, variables):
        blocks, indices = [], []
        with self.template.environment.activate_tracker(blocks, indices):
            for block in self._generate(messages, tools, variables, False):
                blocks.append(block)
        return "".join(blocks), indices

    def _generate(self, messages, tools, variables, add_generation_prompt):
        context = dict(self.variables)
        context.update(variables)
        return self.template.generate(messages=messages, tools=tools, documents=None,
                                      add_generation_prompt=add_generation_prompt, **context)


GENERATION_TAG = "generation %}"


def common_prefix(a, b):
    n = min(len(a), len(b))
    i = 0
    while i < n and a[i] == b[i]:
        i += 1
    return i


def common_suffix(a, b):
    n = min(len(a), len(b))
    i = 0
    while i < n and a[len(a) - 1 - i] == b[len(b) - 1 - i]:
        i += 1
    return i


def content_bounds(render, messages, i):
    full = render(messages)
    swapped = [dict(m) for m in messages]
    swapped[i]["content"] = SENTINEL
    alt = render(swapped)
    p = common_prefix(full, alt)
    s = common_suffix(full[p:], alt[p:])
    return full, p, len(full) - s


def prefix_bounds(render, messages, i, full):
    before = render(messages[:i], True)
    through = render(messages[: i + 1])
    if not (full.startswith(before) and full.startswith(through) and len(through) >= len(before)):
        raise ValueError("messages[%d]: the template does not render this message's content and "
                         "renders its conversation's prefixes differently; add {%% generation %%} "
                         "blocks to the template" % i)
    return len(before), len(through)


def tail_length(rest, tail):
    """How much of `tail` (the end-of-turn text) `rest` begins with; a partial match is cut back
    to whitespace or the end of a tag ('>' or ']'), so that it never ends inside the next turn's
    marker (Phi-3.5 ends its last turn with <|end|>\n<|endoftext|>, an inner one with <|end|>\n)."""
    m = common_prefix(rest, tail)
    if m < len(tail):
        while m > 0 and not (tail[m - 1].isspace() or tail[m - 1] in ">]"):
            m -= 1
    return m


def assistant_spans(render, messages):
    spans = []
    for i, m in enumerate(messages):
        if m["role"] != "assistant" or m.get("weight", 1) == 0:
            continue
        full, start, end = content_bounds(render, messages, i)
        if start == len(full):
            start, end = prefix_bounds(render, messages, i, full)
        else:
            last, _, last_end = content_bounds(render, messages[: i + 1], i)
            end += tail_length(full[end:], last[last_end:])
        if end > start:
            spans.append((start, end))
    return spans


def generation_spans(indices, messages):
    weights = [m.get("weight", 1) for m in messages if m["role"] == "assistant"]
    if 0 not in weights:
        return indices
    if len(weights) != len(indices):
        raise ValueError("weight: the template's {%% generation %%} blocks (%d) do not pair up with "
                         "the assistant messages (%d), so a weight of 0 cannot skip one"
                         % (len(indices), len(weights)))
    return [span for span, w in zip(indices, weights) if w != 0]


def to_bytes(text, spans):
    """Code-point offsets to UTF-8 byte offsets."""
    out = []
    for start, end in spans:
        b = len(text[:start].encode("utf-8"))
        out.append([b, b + len(text[start:end].encode("utf-8"))])
    return out


def answer(renderer, request):
    conversation = request["conversation"]
    messages = conversation["messages"]
    tools = conversation.get("tools")
    variables = request.get("variables") or {}
    if renderer.has_generation:
        text, indices = renderer.render_tracked(messages, tools, variables)
        spans = generation_spans(indices, messages)
    else:
        render = lambda msgs, gen=False: renderer.render(msgs, tools, variables, gen)
        text = render(messages)
        spans = assistant_spans(render, messages)
    return {"text": text, "spans": to_bytes(text, spans), "generation": renderer.has_generation}


def describe(error):
    return "%s: %s" % (type(error).__name__, error)


def main():
    out = sys.stdout
    first = json.loads(sys.stdin.readline())
    try:
        renderer = Renderer(first["template"], first.get("variables") or {})
        out.write(json.dumps({"ok": True}) + "\n")
    except Exception as e:
        out.write(json.dumps({"error": describe(e)}) + "\n")
        out.flush()
        return
    out.flush()
    for line in sys.stdin:
        try:
            reply = answer(renderer, json.loads(line))
        except MemoryError:
            reply = {"error": "MemoryError: the template used more than 2 GiB"}
        except RecursionError:
            reply = {"error": "RecursionError: the template recursed too deeply"}
        except Exception as e:
            reply = {"error": describe(e)}
        out.write(json.dumps(reply, ensure_ascii=True) + "\n")
        out.flush()


main()
