package dev.sdjvm.dist;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import java.awt.image.BufferedImage;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import javax.imageio.ImageIO;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The command blocks of the README and docs/programs.md marked {@code <!-- run-by-test -->} (the HTML comment on the
 * line before the code fence) run as written, in order, with bash, against the unpacked distribution archive
 * ({@link Distribution}): the working directory holds {@code bin} (a link to the archive's bin/) and {@code src} (a
 * link to the repository's src/, for the {@code --model src/all/test/resources/...} fixtures), so {@code ./bin/sd} and
 * {@code bin/sd} resolve as they do in a checkout.
 *
 * <p>Rules of a marked block: a line that starts with {@code bin/sd} or {@code ./bin/sd} is a command (a trailing
 * {@code \} continues it) and must exit 0; every {@code --output FILE} it names must then be an image. A line that
 * starts with {@code mvn} is not run (the build cannot run itself); anything else is the expected standard output of
 * the command above it: each such line must match a line of that output, in order, where {@code ...} stands for any
 * text and a trailing comment ({@code   # ...}) is ignored. Only cheap commands are marked (the embedded model at
 * 64x64, the tiny fixtures); none is shortened. The environment sets OMP_NUM_THREADS=1, as for the unit tests (one
 * libtorch thread: tiny models, a shared build machine).
 *
 * <p>The README's inpainting command reads {@code mask.png}, which the README asks the reader to make ("64x64,
 * white = repaint"): the test puts the repository's 64x64 mask fixture ({@code reference/tasks/inputs/mask_64.png})
 * there first.
 */
class DocCommandsIT {
    static final String MARK = "<!-- run-by-test -->";
    private static final Pattern BLOCK = Pattern.compile(Pattern.quote(MARK) + "\\s*\\n```[a-z]*\\n(.*?)```", Pattern.DOTALL);
    private static final Pattern OUTPUT = Pattern.compile("(?:^|\\s)(?:--output|-o)\\s+(\\S+)");
    private static final Pattern TRAILING_COMMENT = Pattern.compile("\\s{2,}#.*$");

    record Command(String line, List<String> expected) {
    }

    /** The marked blocks of a Markdown file, each as its commands with their expected output lines. */
    static List<List<Command>> markedBlocks(String markdown) {
        List<List<Command>> blocks = new ArrayList<>();
        Matcher m = BLOCK.matcher(markdown);
        while (m.find()) {
            List<Command> commands = new ArrayList<>();
            String body = m.group(1).replace("\\\n", " ");
            for (String raw : body.split("\n")) {
                String line = raw.strip();
                if (line.isEmpty() || line.startsWith("mvn ")) {
                    continue;
                }
                if (line.startsWith("bin/sd") || line.startsWith("./bin/sd")) {
                    commands.add(new Command(line, new ArrayList<>()));
                } else if (commands.isEmpty()) {
                    fail("a marked block starts with a line that is not a bin/sd command: " + line);
                } else {
                    commands.get(commands.size() - 1).expected().add(TRAILING_COMMENT.matcher(line).replaceFirst(""));
                }
            }
            assertFalse(commands.isEmpty(), "a marked block without bin/sd commands:\n" + m.group(1));
            blocks.add(commands);
        }
        return blocks;
    }

    /** An expected output line as a regular expression: {@code ...} is any text, the rest literal. */
    static Pattern expectedLine(String expected) {
        StringBuilder re = new StringBuilder();
        String[] parts = expected.split("\\.\\.\\.", -1);
        for (int i = 0; i < parts.length; i++) {
            if (i > 0) {
                re.append(".*");
            }
            re.append(Pattern.quote(parts[i]));
        }
        return Pattern.compile(re.toString());
    }

    @Test
    void blocksAreFoundAndParsed() {
        String md = "text\n" + MARK + "\n```\nbin/sd tokenize --raw \"a cat\"\n[320,2368]   # ids\n"
                + "mvn -B verify\n./bin/sd generate x \\\n    --output a.png\n```\n```\nbin/sd not-marked\n```\n";
        List<List<Command>> blocks = markedBlocks(md);
        assertEquals(1, blocks.size());
        assertEquals(List.of(new Command("bin/sd tokenize --raw \"a cat\"", List.of("[320,2368]")),
                new Command("./bin/sd generate x      --output a.png", List.of())), blocks.get(0));
        assertTrue(expectedLine("[49406,320,...,0]").matcher("[49406,320,1,2,0]").matches());
        assertFalse(expectedLine("[49406,320,...,0]").matcher("[49406,321,0]").matches());
    }

    @Test
    void readmeCommandsRun(@TempDir Path dir) throws Exception {
        Files.copy(Distribution.repository().resolve("src/all/test/resources/reference/tasks/inputs/mask_64.png"),
                dir.resolve("mask.png"));
        int n = runMarked("README.md", dir);
        assertTrue(n >= 4, "the README's generate and image-to-image commands are marked (" + n + " commands)");
    }

    @Test
    void programsDocCommandsRun(@TempDir Path dir) throws Exception {
        int n = runMarked("docs/programs.md", dir);
        assertTrue(n >= 4, "docs/programs.md's cheap examples are marked (" + n + " commands)");
    }

    private static int runMarked(String doc, Path dir) throws IOException, InterruptedException {
        Path repo = Distribution.repository();
        Files.createSymbolicLink(dir.resolve("bin"), Distribution.home().resolve("bin"));
        Files.createSymbolicLink(dir.resolve("src"), repo.resolve("src"));
        Path scratchHome = Files.createDirectories(dir.resolve(".home"));
        int count = 0;
        for (List<Command> block : markedBlocks(Files.readString(repo.resolve(doc)))) {
            for (Command c : block) {
                Distribution.Run r = Distribution.bash(dir, scratchHome, c.line(), Map.of());
                assertEquals(0, r.exit(), doc + ": " + c.line() + "\n" + r.all());
                List<String> out = r.outLines();
                int at = 0;
                for (String expected : c.expected()) {
                    Pattern p = expectedLine(expected);
                    while (at < out.size() && !p.matcher(out.get(at)).matches()) {
                        at++;
                    }
                    assertTrue(at < out.size(), doc + ": `" + c.line() + "` should print a line `" + expected
                            + "` (in this order)\n" + r.all());
                    at++;
                }
                Matcher o = OUTPUT.matcher(c.line());
                while (o.find()) {
                    BufferedImage img = ImageIO.read(dir.resolve(o.group(1)).toFile());
                    assertTrue(img != null && img.getWidth() > 0, doc + ": " + o.group(1) + " is an image");
                }
                count++;
            }
        }
        return count;
    }
}
