"""Dumps the Python-side Unicode properties ClipTokenizer mirrors, one line per code point:
   <cp hex> <category> <str.lower() as hex cps joined by '.'> <sigma class> <isspace 0/1> <NFC of the char as hex>
sigma class: I = case-ignorable, C = cased (and not case-ignorable), N = neither, derived from how str.lower()
treats U+03A3 next to the character (CPython's handle_capital_sigma).
Used by tools/reference/UnicodeTableGenerator.java to produce UnicodeData14.java.
Run: /usr/bin/python3 tools/reference/unicode_dump.py > /tmp/dump.txt
"""
import sys
import unicodedata

out = sys.stdout
out.write("# python %s unicodedata %s\n" % (sys.version.split()[0], unicodedata.unidata_version))
for cp in range(0x110000):
    c = chr(cp)
    cat = unicodedata.category(c)
    low = ".".join("%X" % ord(x) for x in c.lower())
    t1 = (c + "\u03a3").lower()[-1] == "\u03c2"        # cased and not ignorable
    t2 = ("A" + c + "\u03a3").lower()[-1] == "\u03c2"  # ignorable or cased
    sig = "C" if t1 else ("I" if t2 else "N")
    nfc = ".".join("%X" % ord(x) for x in unicodedata.normalize("NFC", c)) if not 0xD800 <= cp <= 0xDFFF else "%X" % cp
    out.write("%X %s %s %s %d %s\n" % (cp, cat, low, sig, 1 if c.isspace() else 0, nfc))
