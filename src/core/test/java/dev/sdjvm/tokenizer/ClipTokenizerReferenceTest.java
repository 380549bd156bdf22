package dev.sdjvm.tokenizer;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

import java.io.IOException;
import java.util.Arrays;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * Every case of reference/tokenizer_cases.json (ids produced by transformers' slow CLIPTokenizer logic without ftfy,
 * see reference/README.md) must match id for id, both raw ids and the 77-long input ids.
 */
class ClipTokenizerReferenceTest {

    static List<TestData.Case> cases() throws IOException {
        return TestData.cases();
    }

    @Test
    void allCasesPresent() throws IOException {
        assertEquals(125, cases().size());
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("cases")
    void rawIds(TestData.Case c) {
        int[] got = TestData.sd21().encode(c.prompt());
        assertArrayEquals(c.ids(), got, () -> c + "\n expected " + Arrays.toString(c.ids()) + "\n      got "
                + Arrays.toString(got) + (c.notes().isEmpty() ? "" : "\n notes: " + c.notes()));
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("cases")
    void inputIds77(TestData.Case c) {
        Encoding e = TestData.sd21().tokenize(c.prompt());
        assertArrayEquals(c.inputIds77(), e.inputIds(), c::toString);
        assertEquals(c.ids().length, e.tokenCount(), c::toString);
        assertEquals(c.ids().length > 75, e.truncated(), c::toString);
    }
}
