package dev.sdjvm.tokenizer;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

import java.io.IOException;
import java.io.InputStream;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;

/**
 * 400 random Unicode-heavy strings (combining marks, Hangul jamo, final sigma, İ, CJK compatibility ideographs,
 * controls, lone surrogates, Unicode 14 characters, contractions with U+017F, broken special tokens) whose ids were
 * computed by {@code tools/reference/clip_reference.py} with CPython 3.11 (stdlib only; the
 * same script reproduces all 125 cases of reference/tokenizer_cases.json).
 */
class ClipTokenizerFuzzTest {
    record FuzzCase(int index, String prompt, int[] ids) {
        @Override
        public String toString() {
            return "#" + index + " " + TestData.escape(prompt);
        }
    }

    static List<FuzzCase> cases() throws IOException {
        try (InputStream in = ClipTokenizerFuzzTest.class.getResourceAsStream("fuzz_cases.json")) {
            JsonNode root = new ObjectMapper().readTree(in);
            List<FuzzCase> out = new ArrayList<>();
            for (JsonNode c : root.get("cases")) {
                int[] ids = new int[c.get("ids").size()];
                for (int i = 0; i < ids.length; i++) {
                    ids[i] = c.get("ids").get(i).intValue();
                }
                out.add(new FuzzCase(out.size(), c.get("prompt").textValue(), ids));
            }
            return out;
        }
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("cases")
    void matchesPythonReference(FuzzCase c) {
        int[] got = TestData.sd21().encode(c.prompt());
        assertArrayEquals(c.ids(), got, () -> c + "\n expected " + Arrays.toString(c.ids()) + "\n      got "
                + Arrays.toString(got));
    }
}
