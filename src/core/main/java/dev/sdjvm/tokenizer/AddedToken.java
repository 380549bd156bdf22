package dev.sdjvm.tokenizer;

/**
 * A token split out of the text before BPE (transformers' {@code AddedToken}): the special tokens (bos, eos, unk,
 * pad, additional) and any entry of {@code added_tokens_decoder}.
 *
 * @param content    the literal text
 * @param id         its id
 * @param lstrip     eats the whitespace on its left
 * @param rstrip     eats the whitespace on its right
 * @param singleWord only a token when it stands as a whole word
 * @param special    a special token (skipped by {@code decode(ids, true)})
 */
record AddedToken(String content, int id, boolean lstrip, boolean rstrip, boolean singleWord, boolean special) {
    AddedToken {
        if (content == null || content.isEmpty()) {
            throw new IllegalArgumentException("empty added token");
        }
    }
}
