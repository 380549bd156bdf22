package dev.sdjvm.tokenizer;

import java.util.Arrays;

/**
 * The text-encoder input for one prompt.
 *
 * @param inputIds   {@code maxLength()} ids: bos, the first {@code maxLength()-2} BPE ids, eos, then padding (the
 *                   encoding keeps its own copy and the accessor returns a copy: it cannot be changed once made)
 * @param tokenCount number of BPE ids the prompt produced before truncation (bos/eos/padding not counted)
 * @param truncated  true when {@code tokenCount > maxLength()-2}, i.e. ids were dropped
 */
public record Encoding(int[] inputIds, int tokenCount, boolean truncated) {
    /**
     * Validates and keeps a copy of {@code inputIds}.
     *
     * @param inputIds   the ids, not null
     * @param tokenCount BPE ids before truncation, &gt;= 0
     * @param truncated  whether ids were dropped
     */
    public Encoding {
        if (inputIds == null) {
            throw new NullPointerException("inputIds");
        }
        if (tokenCount < 0) {
            throw new IllegalArgumentException("tokenCount < 0: " + tokenCount);
        }
        inputIds = inputIds.clone();
    }

    /** {@return a copy of the ids} */
    @Override
    public int[] inputIds() {
        return inputIds.clone();
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof Encoding e && tokenCount == e.tokenCount && truncated == e.truncated
                && Arrays.equals(inputIds, e.inputIds);
    }

    @Override
    public int hashCode() {
        return 31 * (31 * Arrays.hashCode(inputIds) + tokenCount) + (truncated ? 1 : 0);
    }

    @Override
    public String toString() {
        return "Encoding[inputIds=" + Arrays.toString(inputIds) + ", tokenCount=" + tokenCount
                + ", truncated=" + truncated + "]";
    }
}
