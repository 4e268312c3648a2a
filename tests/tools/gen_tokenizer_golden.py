#!/usr/bin/env python3
"""Writes tests/data/tokenizers/unicode_golden.json: reference data for core's Unicode support
and pre-tokenizer regex engine, computed with independent implementations:

  * "nfc":   [text, unicodedata.normalize("NFC", text)]
  * "lossy": [hex bytes, bytes.decode("utf-8", "replace")]  (CPython, like Rust's
             from_utf8_lossy, replaces each maximal invalid subpart with one U+FFFD)
  * "categories": [code point, two-letter general category] samples (unicodedata)
  * "regex": {"texts": [text, ...], "patterns": {name: {"pattern": p, "spans": [[[start,
             end], ...] per text]}}}: regex.finditer(p, text) with the third-party `regex`
             module (Perl-style backtracking like Oniguruma), spans in code points.

Python 3.11's unicodedata is Unicode 14.0 (core's tables); the `regex` module may be newer, so
texts only use characters whose categories both agree on.

  python3 tests/tools/gen_tokenizer_golden.py > tests/data/tokenizers/unicode_golden.json
"""
import json
import random
import sys
import unicodedata

import regex

PATTERNS = {
    "gpt2": r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+""",
    "llama3": r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+""",
    "qwen2": r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+""",
    "cl100k": r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]++[\r\n]*|\s*[\r\n]|\s+(?!\S)|\s+""",
    "o200k": r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+""",
}

WHITE_SPACE = set(range(0x09, 0x0E)) | {0x20, 0x85, 0xA0, 0x1680, 0x2028, 0x2029, 0x202F,
                                         0x205F, 0x3000} | set(range(0x2000, 0x200B))
CHECKED = ["Lu", "Ll", "Lt", "Lm", "Lo", "Mn", "Mc", "Me", "Nd", "Nl", "No"]


def agrees(ch):
    """True when `regex` and unicodedata classify `ch` the same way."""
    cat = unicodedata.category(ch)
    if cat == "Cn" or cat == "Cs":
        return False
    for c in CHECKED:
        if bool(regex.match(r"\p{%s}" % c, ch)) != (cat == c):
            return False
    if bool(regex.match(r"\s", ch)) != (ord(ch) in WHITE_SPACE):
        return False
    return True


def main():
    rng = random.Random(1234)
    specials = ["'s", "'S", "'t", "'re", "'VE", "'m", "'ll", "'LL", "'d", "'\u017f", "'x", "''",
                " ", "  ", "   ", "\t", "\r", "\n", "\r\n", " \n", "\n\n ", "\u00a0", "\u3000",
                "\u2028", "\u0085", "\u000b", "/", "//", "...", "!?", "$", "(", ")", "_", "-",
                "hello", "Hello", "HELLO", "hElLo", "world", "caf\u00e9", "cafe\u0301",
                "na\u00efve", "\u00c5ngstr\u00f6m", "\u01c5ungla", "\u02b0a", "\u03bb\u03cc\u03b3\u03bf\u03c2",
                "\u0421\u043b\u043e\u0432\u043e", "\u65e5\u672c\u8a9e", "\ud55c\uad6d\uc5b4",
                "\u0643\u0644\u0645\u0629", "\u0936\u092c\u094d\u0926", "\u0e20\u0e32\u0e29\u0e32",
                "\U0001F600", "\U0001F44D\U0001F3FD", "0", "7", "42", "123", "12345", "3.14",
                "\uff11\uff12", "\u00b2", "\u2167", "\u00bd", "\u0660\u0661", "x\u0323\u0307",
                "\u0301", "A\u030a", "<|endoftext|>", "don't", "I'M", "we'll"]
    pool = [chr(c) for c in range(0x20, 0x7F)] + [chr(c) for c in (0x09, 0x0A, 0x0D)]
    blocks = [(0xA0, 0x24F), (0x250, 0x2FF), (0x300, 0x36F), (0x370, 0x3FF), (0x400, 0x4FF),
              (0x590, 0x6FF), (0x900, 0x97F), (0xE00, 0xE7F), (0x1100, 0x11FF), (0x1E00, 0x1EFF),
              (0x2000, 0x206F), (0x2070, 0x218F), (0x2460, 0x24FF), (0x3000, 0x30FF),
              (0x4E00, 0x4E40), (0xAC00, 0xAC20), (0xFB00, 0xFB4F), (0xFF00, 0xFFEF),
              (0x1D400, 0x1D4FF), (0x1F300, 0x1F64F)]
    for lo, hi in blocks:
        pool += [chr(c) for c in range(lo, hi + 1) if agrees(chr(c))]
    assert all(agrees(c) for s in specials for c in s)

    def random_text():
        parts = []
        for _ in range(rng.randint(1, 10)):
            if rng.random() < 0.6:
                parts.append(rng.choice(specials))
            else:
                parts.append("".join(rng.choice(pool) for _ in range(rng.randint(1, 4))))
        return "".join(parts)

    texts = specials + [random_text() for _ in range(350)]
    out = {"unicode_version": unicodedata.unidata_version, "regex_module": regex.__version__}
    out["regex"] = {"texts": texts, "patterns": {
        name: {"pattern": p, "spans": [[list(m.span()) for m in regex.finditer(p, t)] for t in texts]}
        for name, p in PATTERNS.items()}}

    nfc_pool = pool + ["\u0301", "\u0323", "\u0307", "\u0344", "\u0958", "\u212b", "\u2126",
                       "\u1100", "\u1161", "\u11a8", "\uac00", "\u0f73", "\u0fb2\u0f80",
                       "e\u0301", "A\u030a\u0323", "\u1e0b\u0323", "q\u0307\u0323"]
    marks = [chr(c) for c in range(0x300, 0x370)] + ["\u05b0", "\u0e38", "\u093c", "\u3099"]
    bases = list("aeiouAEIOUnNcCsSzZyY") + ["\u0391", "\u03b9", "\u0415", "\u304b", "\u1100",
                                             "\u1161", "\u11a8", "\uac00"]
    nfc = []
    for i in range(400):
        if i % 2 == 0:
            t = "".join(rng.choice(nfc_pool) for _ in range(rng.randint(1, 12)))
            if i % 4 == 0:
                t = unicodedata.normalize("NFD", t)
        else:  # bases followed by runs of combining marks in random (often non-canonical) order
            t = "".join(rng.choice(bases) + "".join(rng.choice(marks) for _ in range(rng.randint(0, 3)))
                        for _ in range(rng.randint(1, 6)))
        nfc.append([t, unicodedata.normalize("NFC", t)])
    out["nfc"] = nfc

    lossy = []
    edge = [b"\xc3", b"\xc3\x28", b"\xe2\x82", b"\xe2\x28\xa1", b"\xed\xa0\x80", b"\xf0\x90\x28",
            b"\xf4\x90\x80\x80", b"\xf8\x88\x80\x80\x80", b"\xc0\xaf", b"\xe0\x80\xaf",
            b"\xef\xbf\xbd", b"a\xffb", b"\xf0\x9f\x98"]
    for b in edge:
        lossy.append([b.hex(), b.decode("utf-8", "replace")])
    for i in range(300):
        b = bytes(rng.choice([rng.randint(0, 255), rng.choice([0xC2, 0xE0, 0xED, 0xF0, 0xF4, 0x80, 0xBF]),
                              ord(rng.choice("ab "))]) for _ in range(rng.randint(1, 12)))
        lossy.append([b.hex(), b.decode("utf-8", "replace")])
    out["lossy"] = lossy

    cats = []
    for _ in range(4000):
        cp = rng.randint(0, 0x10FFFF) if rng.random() < 0.5 else rng.randint(0, 0x2FFFF)
        cats.append([cp, unicodedata.category(chr(cp))])
    out["categories"] = cats
    json.dump(out, sys.stdout, ensure_ascii=True, indent=None, separators=(",", ":"))
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
