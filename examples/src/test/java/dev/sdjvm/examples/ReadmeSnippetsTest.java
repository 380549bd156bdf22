package dev.sdjvm.examples;

import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;

/**
 * Every Java snippet of the README is one of the example programs word for word (without its {@code package}
 * line), so what a reader pastes is what {@link ExamplesTest} runs.
 */
class ReadmeSnippetsTest {
    private static final Pattern JAVA_BLOCK = Pattern.compile("```java\\n(.*?)```", Pattern.DOTALL);
    private static final Path EXAMPLES = Paths.get("src/main/java/dev/sdjvm/examples");

    /** A source file as the README shows it: without the package line and the blank line after it. */
    static String asQuoted(Path source) throws IOException {
        String s = Files.readString(source);
        return s.replaceFirst("\\Apackage [\\w.]+;\\n\\n", "");
    }

    static List<String> readmeSnippets() throws IOException {
        Path readme = Paths.get("..", "README.md");
        List<String> out = new ArrayList<>();
        Matcher m = JAVA_BLOCK.matcher(Files.readString(readme));
        while (m.find()) {
            out.add(m.group(1));
        }
        return out;
    }

    @Test
    void everyJavaSnippetIsAnExampleProgram() throws IOException {
        Map<String, String> examples = new LinkedHashMap<>();
        for (String name : List.of("QuickStart", "FullRequest", "ImageService", "ImageToImage")) {
            examples.put(name, asQuoted(EXAMPLES.resolve(name + ".java")));
        }
        List<String> snippets = readmeSnippets();
        assertFalse(snippets.isEmpty(), "the README has Java snippets");
        List<String> quoted = new ArrayList<>();
        for (String snippet : snippets) {
            String match = null;
            for (var e : examples.entrySet()) {
                if (e.getValue().equals(snippet)) {
                    match = e.getKey();
                }
            }
            if (match == null) {
                fail("README snippet is not an example program word for word:\n" + snippet);
            }
            quoted.add(match);
        }
        assertTrue(quoted.contains("QuickStart") && quoted.contains("FullRequest"), "quoted: " + quoted);
    }
}
