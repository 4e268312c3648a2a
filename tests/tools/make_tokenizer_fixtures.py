#!/usr/bin/env python3
"""Writes the hand-made tokenizer.json fixtures in tests/data/tokenizers/ (run from the
repository root). Both use the same tiny byte-level BPE: the 256 byte characters of GPT-2's
bytes_to_unicode() with id = byte value (so "a" is 97 and "Ġ", the space byte, is 32), then the
merges below, whose ids and ranks tests/tokenizer/hf_tokenizer_test.cc reasons about.

  gpt2_tiny.json    GPT-2/OPT style: ByteLevel pre-tokenizer (GPT-2 regex), merges as "a b"
                    strings, <|endoftext|>, no BOS.
  llama3_tiny.json  Llama 3 style: Split(Llama 3 regex) + ByteLevel(use_regex=false), merges as
                    [a, b] pairs, ignore_merges, <|begin_of_text|> added by TemplateProcessing.
"""
import json


def bytes_to_unicode():
    printable = list(range(33, 127)) + list(range(161, 173)) + list(range(174, 256))
    out, n = {}, 0
    for b in range(256):
        if b in printable:
            out[b] = chr(b)
        else:
            out[b] = chr(256 + n)
            n += 1
    return out


B = bytes_to_unicode()
SP, NL = B[0x20], B[0x0A]  # "Ġ", "Ċ"

# (left, right) in merge rank order; the merged token gets id 256 + rank.
MERGES = [
    (SP, "t"),       # 0 -> 256 "Ġt"
    ("h", "e"),      # 1 -> 257 "he"
    ("l", "l"),      # 2 -> 258 "ll"
    ("ll", "o"),     # 3 -> 259 "llo"
    ("he", "llo"),   # 4 -> 260 "hello"
    (SP + "t", "he"),  # 5 -> 261 "Ġthe"
    (SP, "w"),       # 6 -> 262 "Ġw"
    ("o", "r"),      # 7 -> 263 "or"
    (SP + "w", "or"),  # 8 -> 264 "Ġwor"
    ("l", "d"),      # 9 -> 265 "ld"
    (SP + "wor", "ld"),  # 10 -> 266 "Ġworld"
    ("'", "s"),      # 11 -> 267 "'s"
    ("i", "n"),      # 12 -> 268 "in"
    ("in", "g"),     # 13 -> 269 "ing"
    (B[0xC3], B[0xA9]),  # 14 -> 270 "Ã©" (é in UTF-8)
    (SP, SP),        # 15 -> 271 "ĠĠ"
    ("a", "a"),      # 16 -> 272 "aa"
    (NL, NL),        # 17 -> 273 "ĊĊ"
    ("3", "4"),      # 18 -> 274 "34"
]


def vocab():
    v = {B[b]: b for b in range(256)}
    for rank, (a, b) in enumerate(MERGES):
        assert a + b not in v
        v[a + b] = 256 + rank
    v["xyz"] = 275  # reachable by no merge: only ignore_merges produces it
    return v


def added(id_, content, special=True):
    return {"id": id_, "content": content, "single_word": False, "lstrip": False,
            "rstrip": False, "normalized": False, "special": special}


def gpt2():
    return {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": [added(276, "<|endoftext|>")],
        "normalizer": None,
        "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True,
                          "use_regex": True},
        "post_processor": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": False,
                           "use_regex": True},
        "decoder": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True,
                    "use_regex": True},
        "model": {"type": "BPE", "dropout": None, "unk_token": None,
                  "continuing_subword_prefix": "", "end_of_word_suffix": "", "fuse_unk": False,
                  "byte_fallback": False, "vocab": vocab(),
                  "merges": [f"{a} {b}" for a, b in MERGES]},
    }


LLAMA3_PATTERN = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}|"
                  r" ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")


def llama3():
    return {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": [added(276, "<|begin_of_text|>"), added(277, "<|end_of_text|>"),
                         added(278, "<|eot_id|>")],
        "normalizer": None,
        "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
            {"type": "Split", "pattern": {"Regex": LLAMA3_PATTERN}, "behavior": "Isolated",
             "invert": False},
            {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True,
             "use_regex": False}]},
        "post_processor": {"type": "Sequence", "processors": [
            {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": False,
             "use_regex": True},
            {"type": "TemplateProcessing",
             "single": [{"SpecialToken": {"id": "<|begin_of_text|>", "type_id": 0}},
                        {"Sequence": {"id": "A", "type_id": 0}}],
             "pair": [{"SpecialToken": {"id": "<|begin_of_text|>", "type_id": 0}},
                      {"Sequence": {"id": "A", "type_id": 0}},
                      {"SpecialToken": {"id": "<|begin_of_text|>", "type_id": 1}},
                      {"Sequence": {"id": "B", "type_id": 1}}],
             "special_tokens": {"<|begin_of_text|>": {"id": "<|begin_of_text|>", "ids": [276],
                                                      "tokens": ["<|begin_of_text|>"]}}}]},
        "decoder": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True,
                    "use_regex": True},
        "model": {"type": "BPE", "dropout": None, "unk_token": None,
                  "continuing_subword_prefix": None, "end_of_word_suffix": None,
                  "fuse_unk": False, "byte_fallback": False, "ignore_merges": True,
                  "vocab": vocab(), "merges": [[a, b] for a, b in MERGES]},
    }


for name, obj in [("gpt2_tiny", gpt2()), ("llama3_tiny", llama3())]:
    with open(f"tests/data/tokenizers/{name}.json", "w", encoding="utf-8") as f:
        json.dump(obj, f, ensure_ascii=False, indent=1)
        f.write("\n")
