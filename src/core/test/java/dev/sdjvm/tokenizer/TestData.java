package dev.sdjvm.tokenizer;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import java.io.IOException;
import java.io.InputStream;
import java.net.URISyntaxException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/** Access to the reference tokenizer files and cases in src/core/test/resources/reference (see the README there). */
final class TestData {
    private static ClipTokenizer sd21;

    private TestData() {
    }

    static Path tokenizerDir() {
        try {
            return Path.of(TestData.class.getResource("/reference/tokenizer").toURI());
        } catch (URISyntaxException e) {
            throw new IllegalStateException(e);
        }
    }

    static synchronized ClipTokenizer sd21() {
        if (sd21 == null) {
            sd21 = ClipTokenizer.load(tokenizerDir());
        }
        return sd21;
    }

    /** One entry of tokenizer_cases.json. */
    record Case(int index, String category, String prompt, int[] ids, int[] inputIds77, String notes) {
        @Override
        public String toString() {
            String p = prompt.length() > 40 ? prompt.substring(0, 40) + "..." : prompt;
            return "#" + index + " [" + category + "] " + escape(p);
        }
    }

    static String escape(String s) {
        StringBuilder b = new StringBuilder();
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            if (c < 0x20 || (c >= 0x7F && c < 0xA0) || Character.getType(c) == Character.FORMAT
                    || Character.isSurrogate(c) || Character.isWhitespace(c) && c != ' ') {
                b.append(String.format("\\u%04X", (int) c));
            } else {
                b.append(c);
            }
        }
        return b.toString();
    }

    static List<Case> cases() throws IOException {
        try (InputStream in = TestData.class.getResourceAsStream("/reference/tokenizer_cases.json")) {
            JsonNode root = new ObjectMapper().readTree(in);
            List<Case> out = new ArrayList<>();
            int i = 0;
            for (JsonNode c : root) {
                out.add(new Case(i++, c.get("category").asText(), c.get("prompt").asText(), ints(c.get("ids")),
                        ints(c.get("input_ids_77")), c.path("notes").asText("")));
            }
            return out;
        }
    }

    private static int[] ints(JsonNode a) {
        int[] r = new int[a.size()];
        for (int i = 0; i < r.length; i++) {
            r[i] = a.get(i).intValue();
        }
        return r;
    }
}
