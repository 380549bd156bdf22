package dev.sdjvm.tokenizer;

import dev.sdjvm.errors.InvalidRequestException;
import dev.sdjvm.errors.ModelLoadException;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTimeoutPreemptively;
import static org.junit.jupiter.api.Assertions.assertTrue;

class ClipTokenizerTest {
    private static final ClipTokenizer TOK = TestData.sd21();

    @TempDir
    Path tmp;

    // ---------------------------------------------------------------- configuration read from the files

    @Test
    void sd21ConfigurationFromFiles() {
        assertEquals(77, TOK.maxLength());
        assertEquals(49406, TOK.bosId());
        assertEquals(49407, TOK.eosId());
        assertEquals(0, TOK.padId(), "special_tokens_map.json's pad_token '!' wins over tokenizer_config.json");
        assertEquals(49408, TOK.vocabSize());
        assertTrue(TOK.lowerCase());
    }

    /** A copy of the SD 2.1 directory with replaced special_tokens_map.json / tokenizer_config.json. */
    private Path variant(String specialTokensMap, String tokenizerConfig) throws IOException {
        Path dir = Files.createDirectories(tmp.resolve("tok"));
        for (String f : new String[] {"vocab.json", "merges.txt", "special_tokens_map.json", "tokenizer_config.json"}) {
            Files.copy(TestData.tokenizerDir().resolve(f), dir.resolve(f));
        }
        if (specialTokensMap != null) {
            Files.writeString(dir.resolve("special_tokens_map.json"), specialTokensMap);
        }
        if (tokenizerConfig != null) {
            Files.writeString(dir.resolve("tokenizer_config.json"), tokenizerConfig);
        }
        return dir;
    }

    private static final String SD1_MAP = "{\"bos_token\": {\"content\": \"<|startoftext|>\", \"lstrip\": false, "
            + "\"normalized\": true, \"rstrip\": false, \"single_word\": false}, \"eos_token\": {\"content\": "
            + "\"<|endoftext|>\", \"lstrip\": false, \"normalized\": true, \"rstrip\": false, \"single_word\": false},"
            + " \"pad_token\": \"<|endoftext|>\", \"unk_token\": {\"content\": \"<|endoftext|>\", \"lstrip\": false,"
            + " \"normalized\": true, \"rstrip\": false, \"single_word\": false}}";

    @Test
    void sd1PadVariant() throws IOException {
        ClipTokenizer sd1 = ClipTokenizer.load(variant(SD1_MAP, null));
        assertEquals(49407, sd1.padId());
        Encoding e = sd1.tokenize("a cat");
        assertArrayEquals(new int[] {49406, 320, 2368, 49407}, Arrays.copyOf(e.inputIds(), 4));
        for (int i = 4; i < 77; i++) {
            assertEquals(49407, e.inputIds()[i]);
        }
        // '!' is an ordinary character when it is not the pad token: '!!!</w>'=995 and '!</w>'=256 per the notes of
        // reference/tokenizer_cases.json (openai's tokenizer, which never special-cases '!')
        assertArrayEquals(new int[] {3306, 995}, sd1.encode("hello!!!"));
        assertArrayEquals(new int[] {320, 1125, 539, 320, 2368, 256}, sd1.encode("a photo of a cat!"));
        // SD 2.x: every '!' is the pad token, id 0
        assertArrayEquals(new int[] {3306, 0, 0, 0}, TOK.encode("hello!!!"));
    }

    @Test
    void maxLengthAndLowerCaseComeFromConfig() throws IOException {
        String config = "{\"model_max_length\": 16, \"do_lower_case\": false}";
        ClipTokenizer t = ClipTokenizer.load(variant(null, config));
        assertEquals(16, t.maxLength());
        assertFalse(t.lowerCase());
        // the special tokens still come from special_tokens_map.json
        assertEquals(0, t.padId());
        Encoding e = t.tokenize("a photograph of an astronaut riding a horse on the moon in the style of monet");
        assertEquals(16, e.inputIds().length);
        assertTrue(e.truncated());
        assertEquals(49407, e.inputIds()[15]);
        // without lower-casing, upper-case letters reach BPE as themselves (different ids)
        assertNotEquals(Arrays.toString(TOK.encode("CAT")), Arrays.toString(t.encode("CAT")));
        assertArrayEquals(TOK.encode("cat"), t.encode("cat"));
    }

    @Test
    void addedTokenFlagsFromAddedTokensDecoder() throws IOException {
        // an extra added token that eats whitespace on both sides (transformers' lstrip/rstrip)
        String config = "{\"model_max_length\": 77, \"added_tokens_decoder\": {\"49408\": {\"content\": \"<x>\", "
                + "\"lstrip\": true, \"rstrip\": true, \"single_word\": false, \"normalized\": false, "
                + "\"special\": true}}}";
        ClipTokenizer t = ClipTokenizer.load(variant(null, config));
        int[] ids = t.encode("a cat   <x>   dog");
        assertArrayEquals(new int[] {320, 2368, 49408, 1929}, ids);
        assertEquals("a cat <x>dog", t.decode(ids));
        assertEquals("a cat dog", t.decode(ids, true));
    }

    // ---------------------------------------------------------------- bad input

    @Test
    void nullIsRejected() {
        InvalidRequestException e = assertThrows(InvalidRequestException.class, () -> TOK.encode(null));
        assertEquals("prompt", e.field());
        assertThrows(InvalidRequestException.class, () -> TOK.tokenize(null));
        assertThrows(InvalidRequestException.class, () -> TOK.decode(null));
        assertThrows(InvalidRequestException.class, () -> TOK.decode(new int[] {1, 99_999}));
    }

    @Test
    void emptyAndBlankGiveBosEosPadding() {
        for (String s : new String[] {"", " ", "\n\t ", "\u200b", "\u0000"}) {
            Encoding e = TOK.tokenize(s);
            int[] expected = new int[77];
            expected[0] = 49406;
            expected[1] = 49407;
            assertArrayEquals(expected, e.inputIds(), TestData.escape(s));
            assertEquals(0, e.tokenCount());
            assertFalse(e.truncated());
        }
    }

    @Test
    void loneSurrogatesAreDeletedLikePythonCategoryCs() {
        // In Python a lone surrogate in a str has category Cs, which BasicTokenizer._clean_text deletes.
        assertArrayEquals(TOK.encode("acat"), TOK.encode("a\uD800cat"));
        assertArrayEquals(TOK.encode("a cat"), TOK.encode("a \uDC00cat\uD83D"));
        assertArrayEquals(new int[0], TOK.encode("\uDC00\uD800"));
        // a proper pair is a real character and is kept
        assertArrayEquals(new int[] {22979}, TOK.encode("\uD83D\uDC31"));
    }

    @Test
    void unassignedAndPrivateUseAreDeleted() {
        assertArrayEquals(TOK.encode("ab"), TOK.encode("a\u0378b"));
        assertArrayEquals(TOK.encode("ab"), TOK.encode("a\uE000b"));
        assertArrayEquals(TOK.encode("ab"), TOK.encode("a\uFFFFb"));
        assertArrayEquals(TOK.encode("ab"), TOK.encode("a" + new String(Character.toChars(0x10FFFF)) + "b"));
    }

    @Test
    void unicode14CharactersAreKept() {
        // U+1FAE0 MELTING FACE is new in Unicode 14 (CPython 3.11: So); JDK 17 alone would call it unassigned
        String melting = new String(Character.toChars(0x1FAE0));
        int[] ids = TOK.encode(melting);
        assertTrue(ids.length > 0);
        assertEquals(melting, TOK.decode(ids));
        // U+2C2F GLAGOLITIC CAPITAL LETTER CAUDATE CHRIVI (Unicode 14) lower-cases to U+2C5F
        assertArrayEquals(TOK.encode(new String(Character.toChars(0x2C5F))),
                TOK.encode(new String(Character.toChars(0x2C2F))));
    }

    @Test
    void pythonLowerCaseSpecialCases() {
        // 'İ'.lower() == 'i̇' (i + U+0307); final sigma: 'ΟΔΟΣ'.lower() == 'οδος'
        assertArrayEquals(TOK.encode("i\u0307"), TOK.encode("\u0130"));
        assertArrayEquals(TOK.encode("\u03bf\u03b4\u03bf\u03c2"), TOK.encode("\u039f\u0394\u039f\u03a3"));
        assertArrayEquals(TOK.encode("\u03c3\u03b1"), TOK.encode("\u03a3\u0391"));
    }

    @Test
    void specialTokensInsideText() {
        // the text forms are recognised even when upper-case or split by a deleted format character
        assertArrayEquals(new int[] {320, 49407, 2368}, TOK.encode("a <|ENDOFTEXT|> cat"));
        assertArrayEquals(new int[] {49407}, TOK.encode("<|endof\u200btext|>"));
        assertArrayEquals(new int[] {49406, 49407}, TOK.encode("<|startoftext|><|endoftext|>"));
    }

    @Test
    void missingOrCorruptFilesNameTheFile() throws IOException {
        for (String f : new String[] {"vocab.json", "merges.txt", "special_tokens_map.json", "tokenizer_config.json"}) {
            Path dir = variant(null, null);
            Files.delete(dir.resolve(f));
            ModelLoadException e = assertThrows(ModelLoadException.class, () -> ClipTokenizer.load(dir));
            assertEquals(dir.resolve(f), e.file(), e.getMessage());
            assertTrue(e.getMessage().contains(f), e.getMessage());
            cleanup(dir);
        }
        String[][] corrupt = {
            {"vocab.json", "{\"a\": 1, "},
            {"vocab.json", "[1, 2]"},
            {"vocab.json", "{\"a\": \"x\"}"},
            {"vocab.json", "{}"},
            {"merges.txt", "#version: 0.2\n"},
            {"merges.txt", "#version: 0.2\ni n\nthree symbols here\n"},
            {"special_tokens_map.json", "not json"},
            {"tokenizer_config.json", "{\"model_max_length\": \"long\"}"},
            {"tokenizer_config.json", "{\"model_max_length\": 1}"},
        };
        for (String[] c : corrupt) {
            Path dir = variant(null, null);
            Files.writeString(dir.resolve(c[0]), c[1]);
            ModelLoadException e = assertThrows(ModelLoadException.class, () -> ClipTokenizer.load(dir), c[1]);
            assertEquals(dir.resolve(c[0]), e.file(), e.getMessage());
            cleanup(dir);
        }
        Path dir = variant(null, null);
        Files.write(dir.resolve("merges.txt"), new byte[] {'#', '\n', (byte) 0xC3, ' ', 'a', '\n'});
        assertEquals(dir.resolve("merges.txt"),
                assertThrows(ModelLoadException.class, () -> ClipTokenizer.load(dir)).file());
        assertThrows(ModelLoadException.class, () -> ClipTokenizer.load(tmp.resolve("nope")));
    }

    private static void cleanup(Path dir) throws IOException {
        try (var s = Files.list(dir)) {
            for (Path p : (Iterable<Path>) s::iterator) {
                Files.delete(p);
            }
        }
        Files.delete(dir);
    }

    // ---------------------------------------------------------------- decode

    @Test
    void decodeRoundTrip() throws IOException {
        assertEquals("a photograph of an astronaut riding a horse",
                TOK.decode(TOK.encode("A photograph of an   astronaut riding a horse")));
        assertEquals("<|startoftext|>a cat <|endoftext|>" + "!".repeat(73), TOK.decode(TOK.tokenize("a cat").inputIds()));
        assertEquals("a cat", TOK.decode(TOK.tokenize("a cat").inputIds(), true));
        assertArrayEquals(new int[] {320, 2368, 0}, TOK.encode("a cat!"));
        assertEquals("a cat !", TOK.decode(new int[] {320, 2368, 0}));
        assertEquals("a cat", TOK.decode(new int[] {320, 2368, 0}, true));
        assertEquals("café 猫 🐱", TOK.decode(TOK.encode("Café 猫 🐱")));
        // decode -> encode gives the same ids for every reference case without '!' (which decode(skip) drops and
        // which is a separate added token) and without ids that mark a removed/changed character
        for (TestData.Case c : TestData.cases()) {
            int[] ids = TOK.encode(c.prompt());
            assertArrayEquals(ids, TOK.encode(TOK.decode(ids)), c::toString);
        }
    }

    @Test
    void decodeInvalidUtf8BecomesReplacementCharacter() {
        // a lone continuation byte: byte-level char for 0x80 is U+0122 ("Ģ"), "Ģ</w>" is in the vocab
        String s = TOK.decode(new int[] {TOK.encode("a")[0], idOf("\u0122</w>")});
        assertEquals("a \uFFFD", s);
    }

    private static int idOf(String token) {
        // the id whose decode is exactly this byte-level token: search the vocab through decode of single ids
        for (int i = 0; i < TOK.vocabSize(); i++) {
            if (rawToken(i).equals(token)) {
                return i;
            }
        }
        throw new AssertionError(token);
    }

    private static String rawToken(int id) {
        try {
            var f = ClipTokenizer.class.getDeclaredField("idToToken");
            f.setAccessible(true);
            return (String) ((java.util.Map<?, ?>) f.get(TOK)).get(id);
        } catch (ReflectiveOperationException e) {
            throw new AssertionError(e);
        }
    }

    // ---------------------------------------------------------------- size, time, threads

    @Test
    void truncationKeepsCount() {
        String prompt = "cat ".repeat(200);
        Encoding e = TOK.tokenize(prompt);
        assertEquals(200, e.tokenCount());
        assertTrue(e.truncated());
        assertEquals(49406, e.inputIds()[0]);
        assertEquals(49407, e.inputIds()[76]);
        for (int i = 1; i < 76; i++) {
            assertEquals(2368, e.inputIds()[i]);
        }
    }

    @Test
    void hugeInputsTokenizeInBoundedTime() {
        Random r = new Random(42);
        String[] words = {"castle", "dragon", "highly", "detailed", "8k", "!", "猫", "🐱", "café", "(masterpiece:1.2)"};
        StringBuilder mb = new StringBuilder(1 << 20);
        while (mb.length() < (1 << 20)) {
            mb.append(words[r.nextInt(words.length)]).append(r.nextInt(10) == 0 ? ", " : " ");
        }
        StringBuilder word = new StringBuilder(100_000);
        for (int i = 0; i < 100_000; i++) {
            word.append((char) ('a' + r.nextInt(26)));
        }
        String bytesWord = "\u00e9\u4e00\ud83d\udc31".repeat(25_000);   // non-ASCII, 100 000 chars
        assertTimeoutPreemptively(Duration.ofSeconds(5), () -> {
            Encoding e = TOK.tokenize(mb.toString());
            assertTrue(e.truncated());
            assertTrue(e.tokenCount() > 150_000, "tokenCount " + e.tokenCount());
            Encoding w = TOK.tokenize(word.toString());
            assertTrue(w.truncated());
            assertTrue(w.tokenCount() > 10_000 && w.tokenCount() <= 100_000, "tokenCount " + w.tokenCount());
            assertEquals(word.toString(), TOK.decode(TOK.encode(word.toString())));
            assertTrue(TOK.tokenize(bytesWord).truncated());
            assertTrue(TOK.tokenize("a".repeat(100_000)).truncated());
            assertTrue(TOK.tokenize("!".repeat(1 << 20)).truncated());
            assertTrue(TOK.tokenize("\u200b".repeat(1 << 20)).tokenCount() == 0);
        });
    }

    @Test
    void cacheStaysBounded() throws Exception {
        ClipTokenizer t = ClipTokenizer.load(TestData.tokenizerDir());
        var f = ClipTokenizer.class.getDeclaredField("cache");
        f.setAccessible(true);
        java.util.Map<?, ?> cache = (java.util.Map<?, ?>) f.get(t);
        StringBuilder sb = new StringBuilder();
        Random r = new Random(3);
        for (int i = 0; i < ClipTokenizer.CACHE_MAX_ENTRIES * 2; i++) {
            for (int k = 0; k < 8; k++) {
                sb.append((char) ('a' + r.nextInt(26)));
            }
            sb.append(' ');
        }
        int[] before = t.encode("a photograph of an astronaut");
        assertTrue(t.tokenize(sb.toString()).truncated());
        assertTrue(cache.size() <= ClipTokenizer.CACHE_MAX_ENTRIES, "cache size " + cache.size());
        assertTrue(cache.size() > 0);
        assertArrayEquals(before, t.encode("a photograph of an astronaut"));
        t.clearCache();
        assertEquals(0, cache.size());
    }

    @Test
    void heapBpeEqualsReferenceLoop() throws Exception {
        var f = ClipTokenizer.class.getDeclaredField("bpe");
        f.setAccessible(true);
        BpeModel bpe = (BpeModel) f.get(TOK);
        Random r = new Random(7);
        String alphabet = "aaaabcdeeeefghiiijklmnoooprssstttuuvwxyz0123456789!.,'-é猫🐱";
        int[] alphabetCps = alphabet.codePoints().toArray();
        for (int iter = 0; iter < 3000; iter++) {
            int len = 1 + r.nextInt(iter < 2000 ? 40 : 400);
            StringBuilder sb = new StringBuilder();
            for (int i = 0; i < len; i++) {
                sb.appendCodePoint(iter % 3 == 0 ? alphabetCps[r.nextInt(alphabetCps.length)] : 'a' + r.nextInt(3));
            }
            byte[] utf8 = sb.toString().getBytes(StandardCharsets.UTF_8);
            int[] a = bpe.initialSymbols(utf8, utf8.length);
            int[] b = a.clone();
            int na = bpe.mergeSimple(a, a.length);
            int nb = bpe.mergeHeap(b, b.length);
            assertArrayEquals(Arrays.copyOf(a, na), Arrays.copyOf(b, nb), sb::toString);
        }
    }

    @Test
    void concurrentUseGivesSameResults() throws Exception {
        List<TestData.Case> cases = TestData.cases();
        ExecutorService pool = Executors.newFixedThreadPool(4);
        try {
            List<Future<?>> fs = new ArrayList<>();
            for (int t = 0; t < 4; t++) {
                fs.add(pool.submit(() -> {
                    for (int rep = 0; rep < 20; rep++) {
                        for (TestData.Case c : cases) {
                            if (rep % 7 == 3) {
                                TOK.clearCache();
                            }
                            assertArrayEquals(c.inputIds77(), TOK.tokenize(c.prompt()).inputIds(), c::toString);
                        }
                    }
                    return null;
                }));
            }
            for (Future<?> f : fs) {
                f.get();
            }
        } finally {
            pool.shutdownNow();
        }
    }
}
