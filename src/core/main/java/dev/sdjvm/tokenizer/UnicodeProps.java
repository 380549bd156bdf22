package dev.sdjvm.tokenizer;

import java.util.Arrays;

/**
 * The Unicode character properties Python's {@code unicodedata}/{@code str} use in the reference tokenizer, on top of
 * {@link Character}. JDK 17 ships Unicode 13; the reference (CPython 3.11) uses Unicode 14. The difference (mostly
 * characters new in Unicode 14, e.g. emoji such as U+1FAE0) is patched in from {@link UnicodeData14}, a table
 * generated with CPython 3.11's {@code unicodedata} (see that class), so newly assigned characters are not mistaken
 * for unassigned ones (which the cleaning step deletes).
 */
final class UnicodeProps {
    private UnicodeProps() {
    }

    /** General category as a {@link Character} type constant, as Python's {@code unicodedata.category} (Unicode 14). */
    static int category(int cp) {
        int i = Arrays.binarySearch(UnicodeData14.CATEGORY_START, cp);
        if (i < 0) {
            i = -i - 2;
        }
        if (i >= 0 && cp <= UnicodeData14.CATEGORY_END[i]) {
            return UnicodeData14.CATEGORY_TYPE[i];
        }
        return Character.getType(cp);
    }

    /** Python's simple lower-case mapping of one code point (without the U+0130 / final-sigma special cases). */
    static int simpleLower(int cp) {
        int i = Arrays.binarySearch(UnicodeData14.LOWER_CP, cp);
        if (i >= 0) {
            return UnicodeData14.LOWER_TO[i];
        }
        return Character.toLowerCase(cp);
    }

    /** transformers' {@code _is_control}: any category C* (Cc, Cf, Cs, Co, Cn) except tab, LF and CR. */
    static boolean isControl(int cp) {
        if (cp == '\t' || cp == '\n' || cp == '\r') {
            return false;
        }
        switch (category(cp)) {
            case Character.CONTROL:
            case Character.FORMAT:
            case Character.SURROGATE:
            case Character.PRIVATE_USE:
            case Character.UNASSIGNED:
                return true;
            default:
                return false;
        }
    }

    /** transformers' {@code _is_whitespace}: space, tab, LF, CR or category Zs. */
    static boolean isBasicWhitespace(int cp) {
        return cp == ' ' || cp == '\t' || cp == '\n' || cp == '\r' || category(cp) == Character.SPACE_SEPARATOR;
    }

    /** Python {@code str.isspace()} for one code point (bidi class WS, B or S, or category Zs). */
    static boolean isPythonSpace(int cp) {
        if (cp <= 0x20) {
            return cp == ' ' || (cp >= 0x09 && cp <= 0x0D) || (cp >= 0x1C && cp <= 0x1F);
        }
        if (cp < 0x85) {
            return false;
        }
        return cp == 0x85 || cp == 0x2028 || cp == 0x2029 || category(cp) == Character.SPACE_SEPARATOR;
    }

    /** {@code \p{L}}: categories Lu, Ll, Lt, Lm, Lo. */
    static boolean isLetter(int cp) {
        if (cp < 0x80) {
            return (cp | 0x20) >= 'a' && (cp | 0x20) <= 'z';
        }
        switch (category(cp)) {
            case Character.UPPERCASE_LETTER:
            case Character.LOWERCASE_LETTER:
            case Character.TITLECASE_LETTER:
            case Character.MODIFIER_LETTER:
            case Character.OTHER_LETTER:
                return true;
            default:
                return false;
        }
    }

    /** {@code \p{N}}: categories Nd, Nl, No. */
    static boolean isNumber(int cp) {
        if (cp < 0x80) {
            return cp >= '0' && cp <= '9';
        }
        switch (category(cp)) {
            case Character.DECIMAL_DIGIT_NUMBER:
            case Character.LETTER_NUMBER:
            case Character.OTHER_NUMBER:
                return true;
            default:
                return false;
        }
    }

    /** BasicTokenizer's {@code _is_chinese_char}: the CJK ideograph blocks it surrounds with spaces. */
    static boolean isCjkIdeograph(int cp) {
        return (cp >= 0x4E00 && cp <= 0x9FFF)
                || (cp >= 0x3400 && cp <= 0x4DBF)
                || (cp >= 0x20000 && cp <= 0x2A6DF)
                || (cp >= 0x2A700 && cp <= 0x2B73F)
                || (cp >= 0x2B740 && cp <= 0x2B81F)
                || (cp >= 0x2B820 && cp <= 0x2CEAF)
                || (cp >= 0xF900 && cp <= 0xFAFF)
                || (cp >= 0x2F800 && cp <= 0x2FA1F);
    }

    /** Unicode {@code Cased} (Lowercase, Uppercase or Lt), used by the final-sigma rule. */
    static boolean isCased(int cp) {
        int i = Arrays.binarySearch(UnicodeData14.CASED_EXTRA, cp);
        if (i >= 0) {
            return true;
        }
        return Character.isLowerCase(cp) || Character.isUpperCase(cp) || Character.isTitleCase(cp);
    }

    /** Unicode {@code Case_Ignorable}: Mn, Me, Cf, Lm, Sk, or word-break MidLetter/MidNumLet/Single_Quote. */
    static boolean isCaseIgnorable(int cp) {
        switch (cp) {
            case 0x27: case 0x2E: case 0x3A: case 0xB7: case 0x387: case 0x55F: case 0x5F4:
            case 0x2018: case 0x2019: case 0x2024: case 0x2027:
            case 0xFE13: case 0xFE52: case 0xFE55: case 0xFF07: case 0xFF0E: case 0xFF1A:
                return true;
            default:
                break;
        }
        switch (category(cp)) {
            case Character.NON_SPACING_MARK:
            case Character.ENCLOSING_MARK:
            case Character.FORMAT:
            case Character.MODIFIER_LETTER:
            case Character.MODIFIER_SYMBOL:
                return true;
            default:
                return false;
        }
    }

    /**
     * Python's {@code str.lower()} of {@code s[from:to]}, appended to {@code out}: full lower-case mapping
     * (U+0130 becomes "i&#x0307;") and the Final_Sigma rule for U+03A3, evaluated within {@code [from, to)}.
     */
    static void appendLower(CharSequence s, int from, int to, StringBuilder out) {
        for (int i = from; i < to; ) {
            int cp = Character.codePointAt(s, i);
            int n = Character.charCount(cp);
            if (cp < 0x80) {
                out.append((char) (cp >= 'A' && cp <= 'Z' ? cp + 32 : cp));
            } else if (cp == 0x130) {
                out.append('i').append('\u0307');
            } else if (cp == 0x3A3) {
                out.append(finalSigma(s, from, to, i, i + n) ? '\u03C2' : '\u03C3');
            } else {
                out.appendCodePoint(simpleLower(cp));
            }
            i += n;
        }
    }

    /** CPython's {@code handle_capital_sigma}: cased (case-ignorable)* SIGMA !((case-ignorable)* cased). */
    private static boolean finalSigma(CharSequence s, int from, int to, int at, int after) {
        int j = at;
        int c = -1;
        while (j > from) {
            c = Character.codePointBefore(s, j);
            j -= Character.charCount(c);
            if (!isCaseIgnorable(c)) {
                break;
            }
            c = -1;
        }
        if (c < 0 || !isCased(c)) {
            return false;
        }
        j = after;
        while (j < to) {
            c = Character.codePointAt(s, j);
            if (!isCaseIgnorable(c)) {
                return !isCased(c);
            }
            j += Character.charCount(c);
        }
        return true;
    }
}
