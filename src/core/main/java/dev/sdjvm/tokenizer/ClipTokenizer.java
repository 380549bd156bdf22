package dev.sdjvm.tokenizer;

import dev.sdjvm.errors.InvalidRequestException;
import dev.sdjvm.errors.ModelLoadException;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.nio.ByteBuffer;
import java.nio.charset.CharsetDecoder;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.text.Normalizer;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;

/**
 * Pure-Java CLIP tokenizer producing exactly the ids diffusers feeds the Stable Diffusion text encoder: transformers'
 * slow {@code CLIPTokenizer} without ftfy (its {@code BasicTokenizer} path).
 *
 * <p>Pipeline of {@link #encode(String)}:
 * <ol>
 *   <li>added tokens ({@code <|startoftext|>}, {@code <|endoftext|>}, the pad token &mdash; {@code !} for SD 2.x
 *       &mdash; and any {@code added_tokens_decoder} entry) are split out of the raw text and map to their ids;
 *       every {@code !} of an SD 2.x prompt therefore becomes id 0, even inside {@code !!!};</li>
 *   <li>each remaining piece is cleaned like transformers' {@code BasicTokenizer}: NUL, U+FFFD and every character of
 *       category C* (control, format, surrogate, private use, unassigned) except tab/LF/CR are deleted, other
 *       whitespace (tab, LF, CR, Zs) becomes a space, CJK ideographs get spaces around them, the text is NFC-normalised,
 *       split on whitespace and each word lower-cased ({@code do_lower_case}, Python {@code str.lower()} semantics);
 *       HTML entities are not unescaped;</li>
 *   <li>words are split with CLIP's pattern
 *       {@code <\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+}
 *       (case-insensitive), each piece is UTF-8 encoded, mapped through {@code bytes_to_unicode} and BPE-merged by
 *       merge rank with a {@code </w>} word end.</li>
 * </ol>
 *
 * <p>Unpaired UTF-16 surrogates have category Cs, so they are deleted in step 2 &mdash; exactly what Python does with
 * a lone surrogate in a {@code str}. Any input string is accepted; time is linear in the input apart from an
 * O(n log n) BPE for very long words (a 100 000-character word takes well under a second).
 *
 * <p>Thread-safe: immutable apart from a bounded concurrent cache of BPE results per pre-token.
 */
public final class ClipTokenizer {
    private static final Logger LOG = LoggerFactory.getLogger(ClipTokenizer.class);
    private static final String START = "<|startoftext|>";
    private static final String END = "<|endoftext|>";
    /** Cache entries kept before the cache is cleared; bounds memory on adversarial input. */
    static final int CACHE_MAX_ENTRIES = 20_000;
    /** Pre-tokens longer than this (chars) are not cached. */
    static final int CACHE_MAX_TOKEN_CHARS = 64;

    private final BpeModel bpe;
    private final AddedTokenSplitter splitter;
    private final Map<Integer, String> idToToken;
    private final Set<String> allSpecialTokens;
    private final int bosId;
    private final int eosId;
    private final int padId;
    private final int unkId;
    private final int startBypassId;   // Python's bpe cache is seeded with the two specials: no </w>, no merges
    private final int endBypassId;
    private final int maxLength;
    private final int vocabSize;
    private final boolean doLowerCase;
    private final ConcurrentHashMap<String, int[]> cache = new ConcurrentHashMap<>(1024);

    private ClipTokenizer(TokenizerFiles f) {
        Map<String, Integer> vocab = f.vocab;
        vocabSize = vocab.size();
        maxLength = f.maxLength;
        doLowerCase = f.doLowerCase;

        // ---- added tokens, in transformers' order: added_tokens_decoder, then bos, eos, unk, pad, additional
        Map<String, Integer> addedEnc = new LinkedHashMap<>();
        Map<String, TokenizerFiles.TokenSpec> addedSpec = new LinkedHashMap<>();
        Set<String> special = new HashSet<>();
        for (Map.Entry<Integer, TokenizerFiles.TokenSpec> e : f.addedTokensDecoder.entrySet()) {
            addedEnc.put(e.getValue().content(), e.getKey());
            addedSpec.put(e.getValue().content(), e.getValue());
            if (f.addedTokenSpecial.get(e.getKey())) {
                special.add(e.getValue().content());
            }
        }
        List<TokenizerFiles.TokenSpec> specials = new ArrayList<>(f.specials.values());
        specials.addAll(f.additionalSpecials);
        for (TokenizerFiles.TokenSpec s : specials) {
            special.add(s.content());
            if (addedEnc.containsKey(s.content())) {
                continue;
            }
            Integer id = vocab.get(s.content());
            if (id == null) {
                Set<String> all = new HashSet<>(vocab.keySet());
                all.addAll(addedEnc.keySet());
                id = all.size();
                LOG.warn("special token '{}' is not in {}; appended with id {}", s.content(), TokenizerFiles.VOCAB, id);
            }
            addedEnc.put(s.content(), id);
            addedSpec.put(s.content(), s);
        }
        allSpecialTokens = Set.copyOf(special);
        List<AddedToken> added = new ArrayList<>();
        for (Map.Entry<String, Integer> e : addedEnc.entrySet()) {
            TokenizerFiles.TokenSpec s = addedSpec.get(e.getKey());
            added.add(new AddedToken(s.content(), e.getValue(), s.lstrip(), s.rstrip(), s.singleWord(),
                    special.contains(s.content())));
        }
        splitter = new AddedTokenSplitter(added);

        bosId = addedEnc.get(f.specials.get("bos_token").content());
        eosId = addedEnc.get(f.specials.get("eos_token").content());
        padId = addedEnc.get(f.specials.get("pad_token").content());
        TokenizerFiles.TokenSpec unk = f.specials.get("unk_token");
        unkId = unk == null ? eosId : addedEnc.get(unk.content());

        // ---- id -> token for decode (added tokens take precedence, like convert_ids_to_tokens)
        idToToken = new HashMap<>(vocab.size() * 2);
        for (Map.Entry<String, Integer> e : vocab.entrySet()) {
            idToToken.put(e.getValue(), e.getKey());
        }
        for (Map.Entry<String, Integer> e : addedEnc.entrySet()) {
            idToToken.put(e.getValue(), e.getKey());
        }

        // ---- BPE symbols: vocab ids, plus synthetic ids for strings merges produce but the vocab lacks
        int maxId = 0;
        for (int id : vocab.values()) {
            maxId = Math.max(maxId, id);
        }
        Map<String, Integer> symbols = new HashMap<>(vocab);
        List<String> synthetic = new ArrayList<>();
        int[] nextSym = {maxId + 1};
        java.util.function.Function<String, Integer> symOf = s -> {
            Integer v = symbols.get(s);
            if (v == null) {
                v = nextSym[0]++;
                symbols.put(s, v);
                synthetic.add(s);
            }
            return v;
        };
        int[] base = new int[256];
        int[] end = new int[256];
        for (int b = 0; b < 256; b++) {
            String c = String.valueOf(ByteLevel.charOf(b));
            base[b] = symOf.apply(c);
            end[b] = symOf.apply(c + "</w>");
        }
        int nm = f.merges.size();
        long[] keys = new long[nm];
        int[] ranks = new int[nm];
        int[] merged = new int[nm];
        for (int r = 0; r < nm; r++) {
            String[] m = f.merges.get(r);
            keys[r] = BpeModel.key(symOf.apply(m[0]), symOf.apply(m[1]));
            ranks[r] = r;
            merged[r] = symOf.apply(m[0] + m[1]);
        }
        int[] symbolToId = new int[nextSym[0]];
        Arrays.fill(symbolToId, unkId);
        for (Map.Entry<String, Integer> e : symbols.entrySet()) {
            Integer a = addedEnc.get(e.getKey());
            Integer v = vocab.get(e.getKey());
            symbolToId[e.getValue()] = a != null ? a : v != null ? v : unkId;
        }
        if (!synthetic.isEmpty()) {
            LOG.warn("{} BPE symbols are not in {} and map to the unknown token (first: '{}')", synthetic.size(),
                    TokenizerFiles.VOCAB, synthetic.get(0));
        }
        bpe = new BpeModel(base, end, symbolToId, keys, ranks, merged);
        startBypassId = tokenToId(addedEnc, vocab, START);
        endBypassId = tokenToId(addedEnc, vocab, END);
    }

    private int tokenToId(Map<String, Integer> addedEnc, Map<String, Integer> vocab, String token) {
        Integer a = addedEnc.get(token);
        if (a != null) {
            return a;
        }
        Integer v = vocab.get(token);
        return v != null ? v : unkId;
    }

    /**
     * Loads a Hugging Face CLIP tokenizer directory ({@code vocab.json}, {@code merges.txt},
     * {@code special_tokens_map.json}, {@code tokenizer_config.json}). Special tokens come from
     * {@code special_tokens_map.json}, falling back to {@code tokenizer_config.json} per key (transformers' precedence);
     * {@code model_max_length} (default 77) and {@code do_lower_case} (default true) from {@code tokenizer_config.json}.
     *
     * @param tokenizerDir the {@code tokenizer/} directory of a model
     * @return the tokenizer
     * @throws ModelLoadException naming the file that is missing, unreadable or malformed
     */
    public static ClipTokenizer load(Path tokenizerDir) {
        long t0 = System.nanoTime();
        TokenizerFiles files = TokenizerFiles.read(tokenizerDir);
        ClipTokenizer t = new ClipTokenizer(files);
        LOG.debug("loaded CLIP tokenizer from {} in {} ms: {} tokens, {} merges, bos={} eos={} pad={} maxLength={}",
                tokenizerDir, (System.nanoTime() - t0) / 1_000_000, t.vocabSize, files.merges.size(), t.bosId,
                t.eosId, t.padId, t.maxLength);
        return t;
    }

    /**
     * Raw BPE ids of {@code text}: no bos/eos, no padding, no truncation. Added tokens in the text map to their ids.
     *
     * @param text any text
     * @return the ids
     * @throws InvalidRequestException (field {@code prompt}) when {@code text} is null
     */
    public int[] encode(String text) {
        IntList out = new IntList(16, Integer.MAX_VALUE);
        encodeInto(text, out);
        return out.toArray();
    }

    /**
     * The text-encoder input of {@code prompt}, as diffusers builds it
     * ({@code tokenizer(prompt, padding="max_length", max_length=model_max_length, truncation=True)}):
     * {@code [bos] + ids[:maxLength-2] + [eos]}, padded with {@link #padId()} to {@link #maxLength()}.
     *
     * @param prompt any text
     * @return the ids, the token count and whether they were truncated
     * @throws InvalidRequestException (field {@code prompt}) when {@code prompt} is null
     */
    public Encoding tokenize(String prompt) {
        IntList ids = new IntList(maxLength, maxLength - 2);   // keeps what fits, counts everything
        encodeInto(prompt, ids);
        int keep = Math.min(ids.size, maxLength - 2);
        int[] input = new int[maxLength];
        input[0] = bosId;
        System.arraycopy(ids.a, 0, input, 1, keep);
        input[keep + 1] = eosId;
        Arrays.fill(input, keep + 2, maxLength, padId);
        return new Encoding(input, ids.size, ids.size > maxLength - 2);
    }

    /**
     * {@link #decode(int[], boolean)} keeping special tokens.
     *
     * @param ids token ids
     * @return the text
     */
    public String decode(int[] ids) {
        return decode(ids, false);
    }

    /**
     * Ids back to text like transformers' {@code decode} (without {@code clean_up_tokenization_spaces}): token strings
     * joined, byte-level characters turned back into UTF-8 bytes and decoded (invalid sequences become U+FFFD),
     * {@code </w>} replaced by a space, the result stripped.
     *
     * @param ids               token ids
     * @param skipSpecialTokens drop bos/eos/unk/pad and other special tokens (for SD 2.x this drops {@code !} too,
     *                          since {@code !} is the pad token)
     * @return the text
     * @throws InvalidRequestException (field {@code ids}) for null or an id that is not in the vocabulary
     */
    public String decode(int[] ids, boolean skipSpecialTokens) {
        if (ids == null) {
            throw new InvalidRequestException("ids", "must not be null");
        }
        java.io.ByteArrayOutputStream bytes = new java.io.ByteArrayOutputStream(ids.length * 4);
        for (int id : ids) {
            String token = idToToken.get(id);
            if (token == null) {
                throw new InvalidRequestException("ids", "unknown token id " + id);
            }
            if (skipSpecialTokens && allSpecialTokens.contains(token)) {
                continue;
            }
            for (int i = 0; i < token.length(); i++) {
                char c = token.charAt(i);
                int b = ByteLevel.byteOf(c);
                if (b >= 0) {
                    bytes.write(b);
                } else {    // not a byte-level character (e.g. a custom added token): keep it as UTF-8
                    byte[] u = String.valueOf(c).getBytes(StandardCharsets.UTF_8);
                    bytes.write(u, 0, u.length);
                }
            }
        }
        CharsetDecoder dec = StandardCharsets.UTF_8.newDecoder().onMalformedInput(CodingErrorAction.REPLACE)
                .onUnmappableCharacter(CodingErrorAction.REPLACE);
        String text;
        try {
            text = dec.decode(ByteBuffer.wrap(bytes.toByteArray())).toString();
        } catch (java.nio.charset.CharacterCodingException e) {
            throw new IllegalStateException(e);   // cannot happen with REPLACE
        }
        return TokenizerFiles.stripPython(text.replace("</w>", " "));
    }

    /** {@return the length of {@link Encoding#inputIds()} ({@code model_max_length}, 77 for CLIP)} */
    public int maxLength() {
        return maxLength;
    }

    /** {@return the id of the beginning-of-text token ({@code <|startoftext|>}, 49406)} */
    public int bosId() {
        return bosId;
    }

    /** {@return the id of the end-of-text token ({@code <|endoftext|>}, 49407)} */
    public int eosId() {
        return eosId;
    }

    /** {@return the id of the padding token: 0 ({@code !}) for SD 2.x, 49407 ({@code <|endoftext|>}) for SD 1.x} */
    public int padId() {
        return padId;
    }

    /** {@return the number of entries of {@code vocab.json} (49408 for CLIP)} */
    public int vocabSize() {
        return vocabSize;
    }

    /** {@return whether words are lower-cased ({@code do_lower_case} of {@code tokenizer_config.json})} */
    public boolean lowerCase() {
        return doLowerCase;
    }

    /** Empties the BPE cache (for cold-start benchmarks or to release memory); results are unaffected. */
    public void clearCache() {
        cache.clear();
    }

    // ------------------------------------------------------------------------------------------------------------

    private void encodeInto(String text, IntList out) {
        if (text == null) {
            throw new InvalidRequestException("prompt", "must not be null");
        }
        splitter.split(text, new AddedTokenSplitter.Sink() {
            @Override
            public void text(String piece) {
                encodePiece(piece, out);
            }

            @Override
            public void added(AddedToken token) {
                out.add(token.id());
            }
        });
    }

    /** BasicTokenizer (clean, CJK spacing, NFC, whitespace split, lower) then the CLIP pattern and BPE. */
    private void encodePiece(String piece, IntList out) {
        StringBuilder sb = new StringBuilder(piece.length() + 8);
        boolean needNfc = false;
        for (int i = 0; i < piece.length(); ) {
            int cp = piece.codePointAt(i);
            i += Character.charCount(cp);
            if (cp < 0x80) {
                if (cp >= 0x20 && cp < 0x7F) {
                    sb.append((char) cp);
                } else if (cp == '\t' || cp == '\n' || cp == '\r') {
                    sb.append(' ');
                }                                           // other C0 controls and DEL: deleted
                continue;
            }
            if (cp == 0xFFFD || UnicodeProps.isControl(cp)) {
                continue;
            }
            if (UnicodeProps.isBasicWhitespace(cp)) {
                sb.append(' ');
            } else if (UnicodeProps.isCjkIdeograph(cp)) {
                sb.append(' ').appendCodePoint(cp).append(' ');
                needNfc |= cp >= 0xF900;                    // compatibility ideographs have NFC mappings
            } else {
                sb.appendCodePoint(cp);
                needNfc |= cp >= 0x300;                     // below U+0300 everything is NFC-stable
            }
        }
        CharSequence text = sb;
        if (needNfc && !Normalizer.isNormalized(sb, Normalizer.Form.NFC)) {
            text = Normalizer.normalize(sb, Normalizer.Form.NFC);
        }
        StringBuilder word = doLowerCase ? new StringBuilder(32) : null;
        int n = text.length();
        int i = 0;
        while (i < n) {
            int cp = Character.codePointAt(text, i);
            if (UnicodeProps.isPythonSpace(cp)) {
                i += Character.charCount(cp);
                continue;
            }
            int start = i;
            while (i < n) {
                cp = Character.codePointAt(text, i);
                if (UnicodeProps.isPythonSpace(cp)) {
                    break;
                }
                i += Character.charCount(cp);
            }
            CharSequence w;
            if (doLowerCase) {
                word.setLength(0);
                UnicodeProps.appendLower(text, start, i, word);
                w = word;
            } else {
                w = text.subSequence(start, i);
            }
            splitWord(w, out);
        }
    }

    /** CLIP's pattern on one whitespace-free word: leftmost alternative wins at each position. */
    private void splitWord(CharSequence w, IntList out) {
        int n = w.length();
        int i = 0;
        while (i < n) {
            char c = w.charAt(i);
            int end;
            if (c == '<' && matchesIgnoreCase(w, i, START)) {
                end = i + START.length();
            } else if (c == '<' && matchesIgnoreCase(w, i, END)) {
                end = i + END.length();
            } else if (c == '\'' && (end = contractionEnd(w, i)) > 0) {
                // 's 't 're 've 'm 'll 'd
            } else {
                int cp = Character.codePointAt(w, i);
                end = i + Character.charCount(cp);
                if (UnicodeProps.isLetter(cp)) {
                    while (end < n) {
                        int d = Character.codePointAt(w, end);
                        if (!UnicodeProps.isLetter(d)) {
                            break;
                        }
                        end += Character.charCount(d);
                    }
                } else if (!UnicodeProps.isNumber(cp)) {
                    while (end < n) {
                        int d = Character.codePointAt(w, end);
                        if (UnicodeProps.isLetter(d) || UnicodeProps.isNumber(d) || UnicodeProps.isPythonSpace(d)) {
                            break;
                        }
                        end += Character.charCount(d);
                    }
                }
            }
            bpeToken(w.subSequence(i, end).toString(), out);
            i = end;
        }
    }

    private static int contractionEnd(CharSequence w, int i) {
        int n = w.length();
        if (i + 1 >= n) {
            return -1;
        }
        char a = fold(w.charAt(i + 1));
        if (a == 's' || a == 't' || a == 'm' || a == 'd') {
            return i + 2;
        }
        if (i + 2 < n) {
            char b = fold(w.charAt(i + 2));
            if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l')) {
                return i + 3;
            }
        }
        return -1;
    }

    /** Simple case folding as far as the ASCII pattern literals need it (U+017F LONG S folds to 's'). */
    private static char fold(char c) {
        if (c >= 'A' && c <= 'Z') {
            return (char) (c + 32);
        }
        return c == '\u017F' ? 's' : c;
    }

    private static boolean matchesIgnoreCase(CharSequence w, int i, String lit) {
        if (i + lit.length() > w.length()) {
            return false;
        }
        for (int k = 0; k < lit.length(); k++) {
            if (fold(w.charAt(i + k)) != lit.charAt(k)) {
                return false;
            }
        }
        return true;
    }

    private void bpeToken(String token, IntList out) {
        int[] ids = cache.get(token);
        if (ids == null) {
            if (token.equals(START)) {
                ids = new int[] {startBypassId};
            } else if (token.equals(END)) {
                ids = new int[] {endBypassId};
            } else {
                byte[] utf8 = token.getBytes(StandardCharsets.UTF_8);
                ids = bpe.encodeWord(utf8, utf8.length);
            }
            if (token.length() <= CACHE_MAX_TOKEN_CHARS) {
                if (cache.size() >= CACHE_MAX_ENTRIES) {
                    cache.clear();
                }
                cache.put(token, ids);
            }
        }
        out.addAll(ids);
    }

    /** Growable int list that stores at most {@code keep} values but counts all of them. */
    private static final class IntList {
        final int keep;
        int[] a;
        int size;

        IntList(int cap, int keep) {
            this.keep = keep;
            a = new int[Math.max(4, Math.min(cap, keep))];
        }

        void add(int v) {
            if (size < keep) {
                if (size == a.length) {
                    a = Arrays.copyOf(a, (int) Math.min(keep, a.length * 2L));
                }
                a[size] = v;
            }
            size++;
        }

        void addAll(int[] v) {
            if (size + v.length <= a.length) {
                System.arraycopy(v, 0, a, size, v.length);
                size += v.length;
            } else {
                for (int x : v) {
                    add(x);
                }
            }
        }

        int[] toArray() {
            return Arrays.copyOf(a, Math.min(size, keep));
        }
    }
}
