"""Independent Python (stdlib only) re-statement of the ids transformers' slow CLIPTokenizer (no ftfy) produces,
used to cross-check ClipTokenizer on random Unicode-heavy strings (fuzz_cases.json).

It follows transformers' code paths: added-token split (leftmost, longest first), BasicTokenizer(strip_accents=False,
do_split_on_punc=False) (_clean_text, _tokenize_chinese_chars, NFC, str.split, str.lower), the CLIP pattern
(written as a scanner because the stdlib `re` lacks \\p{L}; the `regex` module is not installed here), byte-level
mapping and the string-tuple BPE loop. What it adds over the Java code is independence of the Unicode machinery:
CPython's unicodedata / str.lower / str.split / NFC and a string-based BPE.

  /usr/bin/python3 tools/reference/clip_reference.py check src/core/test/resources/reference   # reproduce tokenizer_cases.json
  /usr/bin/python3 tools/reference/clip_reference.py fuzz  src/core/test/resources/reference \
      > src/core/test/resources/dev/sdjvm/tokenizer/fuzz_cases.json
"""
import json
import random
import sys
import unicodedata


def bytes_to_unicode():
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, [chr(c) for c in cs]))


class Clip:
    def __init__(self, d):
        self.encoder = json.load(open(d + "/tokenizer/vocab.json", encoding="utf-8"))
        merges = open(d + "/tokenizer/merges.txt", encoding="utf-8").read().strip().split("\n")[1:49152 - 256 - 2 + 1]
        self.ranks = {tuple(m.split()): i for i, m in enumerate(merges)}
        self.be = bytes_to_unicode()
        self.cache = {"<|startoftext|>": "<|startoftext|>", "<|endoftext|>": "<|endoftext|>"}
        # SD 2.x: bos, eos, unk from the files, pad '!' from special_tokens_map.json
        self.added = {"<|startoftext|>": 49406, "<|endoftext|>": 49407, "!": 0}

    def bpe(self, token):
        if token in self.cache:
            return self.cache[token]
        word = tuple(token[:-1]) + (token[-1] + "</w>",)
        while len(word) > 1:
            pairs = {(word[i], word[i + 1]) for i in range(len(word) - 1)}
            bigram = min(pairs, key=lambda p: self.ranks.get(p, float("inf")))
            if bigram not in self.ranks:
                break
            first, second = bigram
            new, i = [], 0
            while i < len(word):
                if i < len(word) - 1 and word[i] == first and word[i + 1] == second:
                    new.append(first + second)
                    i += 2
                else:
                    new.append(word[i])
                    i += 1
            word = tuple(new)
        res = " ".join(word)
        self.cache[token] = res
        return res

    @staticmethod
    def basic(text):
        out = []
        for ch in text:
            cp = ord(ch)
            if cp == 0 or cp == 0xFFFD or (ch not in "\t\n\r" and unicodedata.category(ch).startswith("C")):
                continue
            if ch in " \t\n\r" or unicodedata.category(ch) == "Zs":
                out.append(" ")
            elif (0x4E00 <= cp <= 0x9FFF or 0x3400 <= cp <= 0x4DBF or 0x20000 <= cp <= 0x2A6DF
                  or 0x2A700 <= cp <= 0x2B73F or 0x2B740 <= cp <= 0x2B81F or 0x2B820 <= cp <= 0x2CEAF
                  or 0xF900 <= cp <= 0xFAFF or 0x2F800 <= cp <= 0x2FA1F):
                out.append(" " + ch + " ")
            else:
                out.append(ch)
        text = unicodedata.normalize("NFC", "".join(out))
        return [t.lower() for t in text.strip().split()]

    @staticmethod
    def is_l(ch):
        return unicodedata.category(ch).startswith("L")

    @staticmethod
    def is_n(ch):
        return unicodedata.category(ch).startswith("N")

    def pattern(self, text):
        """findall of <|startoftext|>|<|endoftext|>|'s|'t|'re|'ve|'m|'ll|'d|[\\p{L}]+|[\\p{N}]|[^\\s\\p{L}\\p{N}]+ (re.I)"""
        def fold(c):
            return "s" if c == "\u017f" else c.lower() if c.isascii() else c
        toks, i, n = [], 0, len(text)
        while i < n:
            matched = None
            for lit in ("<|startoftext|>", "<|endoftext|>", "'s", "'t", "'re", "'ve", "'m", "'ll", "'d"):
                seg = text[i:i + len(lit)]
                if len(seg) == len(lit) and all(fold(a) == b for a, b in zip(seg, lit)):
                    matched = seg
                    break
            if matched is None:
                c = text[i]
                if self.is_l(c):
                    j = i + 1
                    while j < n and self.is_l(text[j]):
                        j += 1
                    matched = text[i:j]
                elif self.is_n(c):
                    matched = c
                elif c.isspace():
                    i += 1
                    continue
                else:
                    j = i + 1
                    while j < n and not (self.is_l(text[j]) or self.is_n(text[j]) or text[j].isspace()):
                        j += 1
                    matched = text[i:j]
            toks.append(matched)
            i += len(matched)
        return toks

    def _tokenize(self, text):
        ids = []
        for tok in self.pattern(" ".join(self.basic(text))):
            t = "".join(self.be[b] for b in tok.encode("utf-8"))
            for piece in self.bpe(t).split(" "):
                ids.append(self.added.get(piece, self.encoder.get(piece, self.encoder["<|endoftext|>"])))
        return ids

    def encode(self, text):
        # added-token split: leftmost match, longest token first (what transformers' Trie.split yields here)
        ids, start, i = [], 0, 0
        keys = sorted(self.added, key=len, reverse=True)
        while i < len(text):
            hit = next((k for k in keys if text.startswith(k, i)), None)
            if hit is None:
                i += 1
                continue
            if i > start:
                ids += self._tokenize(text[start:i])
            ids.append(self.added[hit])
            i += len(hit)
            start = i
        if start < len(text):
            ids += self._tokenize(text[start:])
        return ids


POOL = (
    list("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789") * 3
    + list(" " * 20) + list(",.;:-_()[]{}<>|/\\'\"?!#@&%$*+=~`^") + ["'s", "'T", "'RE", "'ll", "'\u017f", "<|endoftext|>",
    "<|STARTOFTEXT|>", "<|end", "!!"]
    + list("\u00a0\u2003\u3000\u2028\u2029\u0085\x1c\x0b\x0c\t\n\r\x00\x07\x7f\u00ad\u200b\u200d\ufeff\ufffd\ue000\u0378")
    + list("\u0301\u0308\u0327\u0345\u0323\u0306\u20dd")                     # combining marks (NFC reordering)
    + list("\u00e9\u00c9\u00df\u1e9e\u0130\u0131\u03a3\u03c3\u03c2\u0391\u0394\u01c5\u01c4\u2126\u212a\u017f")
    + list("\u1100\u1161\u11a8\uac00\u3131")                                 # Hangul jamo / syllables (NFC composes)
    + list("\u4e00\u732b\u6771\u4eac\uf900\uf9dc\ufa2e\u3400") + [chr(0x20000), chr(0x2f800)]
    + list("\u3042\u30ab\u30fc\uff21\uff41\uff11\u00bd\u00b2\u2460\u2167\u0663\u0966\u0e51")
    + list("\u0627\u0644\u05d0\u0915\u094d\u0e01\u0e31\u1780")
    + [chr(0x1F431), chr(0x1F468), chr(0x1F3FD), chr(0x1F1FA), chr(0x1FAE0), chr(0x1F979), chr(0x1D4D0), chr(0x1D7CF),
       chr(0x10570), chr(0x2C2F), chr(0x1E900)]
    + ["\ud800", "\udc00"]                                                  # lone surrogates
)


def fuzz(clip, n=400, seed=20251126):
    rnd = random.Random(seed)
    out = []
    for k in range(n):
        length = rnd.choice([1, 2, 3, 5, 8, 13, 21, 40])
        s = "".join(rnd.choice(POOL) for _ in range(length))
        out.append({"prompt": s, "ids": clip.encode(s)})
    return out


if __name__ == "__main__":
    mode, ref = sys.argv[1], sys.argv[2]
    clip = Clip(ref)
    if mode == "check":
        cases = json.load(open(ref + "/tokenizer_cases.json", encoding="utf-8"))
        bad = [c["prompt"] for c in cases if clip.encode(c["prompt"]) != c["ids"]]
        print("%d/%d reference cases reproduced" % (len(cases) - len(bad), len(cases)), bad)
        sys.exit(1 if bad else 0)
    cases = fuzz(clip)
    prov = "clip_reference.py fuzz (CPython %s, unicodedata %s), seed 20251126" % (
        sys.version.split()[0], unicodedata.unidata_version)
    sys.stdout.write('{"provenance": %s,\n "cases": [\n' % json.dumps(prov))
    sys.stdout.write(",\n".join("  " + json.dumps(c, ensure_ascii=True) for c in cases))
    sys.stdout.write("\n]}\n")
