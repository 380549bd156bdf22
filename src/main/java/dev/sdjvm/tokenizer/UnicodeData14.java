package dev.sdjvm.tokenizer;

/** Placeholder, regenerated below. */
final class UnicodeData14 {
    private UnicodeData14() {
    }

    static final int[] CATEGORY_START = {};
    static final int[] CATEGORY_END = {};
    static final byte[] CATEGORY_TYPE = {};
    static final int[] LOWER_CP = {};
    static final int[] LOWER_TO = {};
    static final int[] CASED_EXTRA = {};
}
