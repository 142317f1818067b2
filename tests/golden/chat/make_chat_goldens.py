#!/usr/bin/env python3
"""Makes the chat-template goldens that chat_template_golden_test compares attune against.

    python3 make_chat_goldens.py OUTDIR

Runs on the GPU machine (transformers 5.x, tokenizers, jinja2; no network, no hub). For every
folder beside this script that holds a chat_template.jinja (the public templates of Llama 3.1 /
3.2 Instruct, Qwen2.5 Instruct, Qwen3, Mistral Instruct v0.3, Gemma 2 / 3, Phi-3.5 / Phi-4 and
SmolLM2, plus smollm2-generation, SmolLM2's template with {% generation %} blocks added), it
writes OUTDIR/<template>/ with:
  chat_template.jinja, tokenizer_config.json  copied from here
  tokenizer.json       a word-level tokenizer built here (deterministic): a ByteLevel
                       pre-tokenizer, a WordLevel vocabulary of the corpus' words (the rarest are
                       left out, so [UNK] occurs), the template's special tokens as added tokens
  conversations.jsonl  the corpus, one {"messages": [...], "tools": [...]} record a line
  golden.jsonl         per line of conversations.jsonl: {"text", "ids", "mask"} as transformers
                       renders and tokenizes it, or {"error": "..."} when the template raises
  template_kwargs.json the extra template variables used (a fixed date_string, so that Llama 3.2's
                       strftime_now does not make the goldens depend on the day they were made)

The mask: with {% generation %} blocks it is transformers' own
(apply_chat_template(..., return_assistant_tokens_mask=True)). Without them it is attune's rule
for "assistant spans found by rendering prefixes", computed here with transformers' rendering:
for each assistant message (weight != 0) the span starts where its content starts (the first
character where the full rendering and the rendering with that content replaced by a sentinel
differ) and ends after what the template writes after the content when the message ends the
conversation (its end-of-turn text, e.g. "<|im_end|>\n"), as far as the full rendering has it
(a partial match cut back to whitespace or a tag's end). When the template does not render the
content at all (Llama's tool calls), the span is the message's turn found by rendering the
prefixes before and through it; when those are not prefixes of the whole, the conversation is an
error. The same rule is in server/engine/chat/render_helper.py (run by attuned). Spans become token masks as transformers does it: from the token holding the span's first
character to the token holding its last.

Writes nothing outside OUTDIR. Takes well under two minutes.
"""
import json
import random
import shutil
import sys
from collections import Counter
from pathlib import Path

HERE = Path(__file__).resolve().parent
SENTINEL = "\ue000\ue001\ue002"
TEMPLATE_KWARGS = {"date_string": "26 Jul 2024"}
NUM_CONVERSATIONS = 220

WORDS = (
    "the a model learns to answer questions about weather code math history and music "
    "please explain why sky is blue write short poem list three colors sum of two numbers "
    "function returns value error happened again thanks very much okay sure here you go "
    "first second third step result final done maybe never always often sometimes"
).split()
UNICODE = ["héllo wörld", "naïve café", "中文测试句子", "日本語のテキスト", "مرحبا بالعالم",
           "Ωμέγα λόγος", "emoji 😀🎉", "tab\there", "line\nbreak", "  leading and trailing  ",
           "ZWJ 👩‍💻 sequence", "math ∑∫√∞"]
TEMPLATE_LIKE = ["<|im_start|>user\nnot really<|im_end|>", "{{ bos_token }}", "{% if x %}y{% endif %}",
                 "[INST] nested [/INST]", "<start_of_turn>model\nfake", "<|eot_id|>",
                 "<think>\nhidden\n</think>\n\nvisible", "<|end|>", "</s> after", "{# comment #}",
                 "<tool_call>{\"name\": \"x\"}</tool_call>", "raise_exception('no')"]
TOOLS = [
    {"type": "function", "function": {
        "name": "get_weather", "description": "Current weather in a city",
        "parameters": {"type": "object", "properties": {
            "city": {"type": "string", "description": "City name"},
            "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}},
            "required": ["city"]}}},
    {"type": "function", "function": {
        "name": "add", "description": "Adds two numbers",
        "parameters": {"type": "object", "properties": {
            "a": {"type": "number"}, "b": {"type": "number"}}, "required": ["a", "b"]}}},
]
CITIES = ["Paris", "Zürich", "東京", "New York", "São Paulo"]


def sentence(rng, n):
    return " ".join(rng.choice(WORDS) for _ in range(n))


def content(rng, assistant):
    k = rng.randrange(20)
    if k == 0:
        return ""
    if k == 1:
        return sentence(rng, 300)  # long
    if k in (2, 3):
        return rng.choice(UNICODE) + " " + sentence(rng, rng.randrange(1, 8))
    if k == 4 and assistant:
        return sentence(rng, 3) + " " + rng.choice(TEMPLATE_LIKE) + " " + sentence(rng, 3)
    if k == 5:
        return " " + sentence(rng, rng.randrange(1, 6)) + "\n\n"
    return sentence(rng, rng.randrange(1, 30))


def plain_conversation(rng, with_system, weights):
    messages = []
    if with_system:
        messages.append({"role": "system", "content": "" if rng.random() < 0.1 else content(rng, False)})
    for turn in range(rng.randrange(1, 5)):
        messages.append({"role": "user", "content": content(rng, False)})
        reply = {"role": "assistant", "content": content(rng, True)}
        if weights and rng.random() < 0.15:
            reply["weight"] = 0
        messages.append(reply)
    return {"messages": messages}


def tool_conversation(rng, index):
    call_id = "call%05d" % index  # Mistral wants 9 alphanumerics
    city = rng.choice(CITIES)
    if rng.random() < 0.5:
        name, args, result = "get_weather", {"city": city}, json.dumps({"temp": rng.randrange(-5, 35)})
    else:
        a, b = rng.randrange(100), rng.randrange(100)
        name, args, result = "add", {"a": a, "b": b}, str(a + b)
    messages = []
    if rng.random() < 0.5:
        messages.append({"role": "system", "content": content(rng, False)})
    messages.append({"role": "user", "content": "please use a tool: " + sentence(rng, 5)})
    call = {"role": "assistant", "content": "" if rng.random() < 0.5 else None,
            "tool_calls": [{"id": call_id, "type": "function", "function": {"name": name, "arguments": args}}]}
    messages.append(call)
    messages.append({"role": "tool", "tool_call_id": call_id, "name": name, "content": result})
    messages.append({"role": "assistant", "content": "the tool says " + result})
    return {"messages": messages, "tools": TOOLS}


def make_corpus(has_tools, has_generation):
    rng = random.Random(14)
    corpus = []
    for i in range(NUM_CONVERSATIONS):
        if has_tools and i % 5 == 4:
            corpus.append(tool_conversation(rng, i))
        else:
            corpus.append(plain_conversation(rng, with_system=(i % 3 == 0), weights=not has_generation))
    return corpus


def build_tokenizer(texts, specials):
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers
    pre = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    counts = Counter()
    for t in texts:
        for piece, _ in pre.pre_tokenize_str(t):
            counts[piece] += 1
    words = sorted(counts, key=lambda w: (-counts[w], w))
    words = words[: max(1, int(len(words) * 0.9))]  # leave the rarest out: [UNK] occurs
    vocab = {"[UNK]": 0}
    for w in words:
        vocab.setdefault(w, len(vocab))
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = pre
    tok.decoder = decoders.ByteLevel()
    tok.add_special_tokens([AddedToken(s, special=True, normalized=False) for s in specials])
    return tok


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
    """Where message i's content lies in render(messages): [start, end)."""
    full = render(messages)
    swapped = [dict(m) for m in messages]
    swapped[i]["content"] = SENTINEL
    alt = render(swapped)
    p = common_prefix(full, alt)
    s = common_suffix(full[p:], alt[p:])
    return full, p, len(full) - s


def prefix_bounds(render, messages, i, full):
    """Message i's turn by rendering prefixes, for a template that does not render its content."""
    before = render(messages[:i], add_generation_prompt=True)
    through = render(messages[: i + 1])
    if not (full.startswith(before) and full.startswith(through) and len(through) >= len(before)):
        raise ValueError("messages[%d]: the template does not render this message's content and "
                         "renders its conversation's prefixes differently" % i)
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
        if start == len(full):  # the content is not rendered (e.g. Llama's tool calls)
            start, end = prefix_bounds(render, messages, i, full)
        else:
            last, _, last_end = content_bounds(render, messages[: i + 1], i)
            end += tail_length(full[end:], last[last_end:])
        if end > start:
            spans.append((start, end))
    return spans


def spans_to_mask(encoding, n, spans):
    mask = [0] * n
    for start, end in spans:
        first = encoding.char_to_token(start)
        last = encoding.char_to_token(end - 1)
        assert first is not None and last is not None, (start, end)
        for t in range(first, last + 1):
            mask[t] = 1
    return mask


def flat(ids):
    ids = list(ids)
    return list(ids[0]) if ids and isinstance(ids[0], list) else ids


def golden_for(tok, record, has_generation):
    messages, tools = record["messages"], record.get("tools")
    kwargs = dict(tools=tools, add_generation_prompt=False, **TEMPLATE_KWARGS)
    def render(msgs, add_generation_prompt=False):
        return tok.apply_chat_template(msgs, tokenize=False, tools=tools,
                                       add_generation_prompt=add_generation_prompt, **TEMPLATE_KWARGS)

    try:
        text = tok.apply_chat_template(messages, tokenize=False, **kwargs)
        enc = tok.apply_chat_template(messages, tokenize=True, return_dict=True,
                                      return_assistant_tokens_mask=has_generation, **kwargs)
        spans = None if has_generation else assistant_spans(render, messages)
    except Exception as e:  # the template raised (raise_exception) or failed to render
        return {"error": "%s: %s" % (type(e).__name__, e)}
    ids = flat(enc["input_ids"])
    plain = tok(text, add_special_tokens=False)
    assert flat(plain["input_ids"]) == ids, "apply_chat_template ids differ from tokenizing its text"
    if has_generation:
        mask = flat(enc["assistant_masks"])
    else:
        mask = spans_to_mask(plain, len(ids), spans)
    return {"text": text, "ids": ids, "mask": mask}


def write_jsonl(path, rows):
    with open(path, "w", encoding="utf-8") as f:
        for r in rows:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")


def make_template(name, outdir):
    from transformers import AutoTokenizer
    src = HERE / name
    dst = outdir / name
    dst.mkdir(parents=True, exist_ok=True)
    template = (src / "chat_template.jinja").read_text(encoding="utf-8")
    meta = json.loads((src / "golden_meta.json").read_text(encoding="utf-8"))
    has_generation = "generation %}" in template
    corpus = make_corpus(meta["tools"], has_generation)
    texts = [template] + [m["content"] or "" for r in corpus for m in r["messages"]]
    texts += [json.dumps(t) for t in TOOLS]
    build_tokenizer(texts, meta["special_tokens"]).save(str(dst / "tokenizer.json"))
    shutil.copy(src / "chat_template.jinja", dst / "chat_template.jinja")
    shutil.copy(src / "tokenizer_config.json", dst / "tokenizer_config.json")
    tok = AutoTokenizer.from_pretrained(str(dst))
    tok.chat_template = template
    goldens = [golden_for(tok, r, has_generation) for r in corpus]
    write_jsonl(dst / "conversations.jsonl", corpus)
    write_jsonl(dst / "golden.jsonl", goldens)
    (dst / "template_kwargs.json").write_text(json.dumps(TEMPLATE_KWARGS) + "\n", encoding="utf-8")
    errors = sum(1 for g in goldens if "error" in g)
    return {"conversations": len(corpus), "errors": errors, "generation_blocks": has_generation}


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: make_chat_goldens.py OUTDIR")
    outdir = Path(sys.argv[1])
    outdir.mkdir(parents=True, exist_ok=True)
    import jinja2
    import tokenizers
    import transformers
    summary = {"transformers": transformers.__version__, "tokenizers": tokenizers.__version__,
               "jinja2": jinja2.__version__, "templates": {}}
    names = sorted(d.name for d in HERE.iterdir() if (d / "chat_template.jinja").exists())
    for name in names:
        summary["templates"][name] = make_template(name, outdir)
        print(name, summary["templates"][name], flush=True)
    (outdir / "summary.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
