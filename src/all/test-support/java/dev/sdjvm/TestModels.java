package dev.sdjvm;

import java.io.IOException;
import java.net.URISyntaxException;
import java.net.URL;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.nio.file.StandardCopyOption;
import java.util.stream.Stream;

/**
 * Locates the test fixtures (the test resources, with their provenance READMEs). Compiled into the tests of this
 * module and of the examples (whose pom adds this directory and the fixtures it needs from here).
 */
public final class TestModels {
    private TestModels() {
    }

    /** A test resource directory or file as a path. */
    public static Path resource(String name) {
        URL u = TestModels.class.getResource(name.startsWith("/") ? name : "/" + name);
        if (u == null) {
            throw new IllegalStateException("test resource missing: " + name);
        }
        try {
            return Paths.get(u.toURI());
        } catch (URISyntaxException e) {
            throw new IllegalStateException(e);
        }
    }

    /** The reference tiny model (random weights, float32, 128x128). */
    public static Path referenceTiny() {
        return resource("reference/pipeline/tiny-sd21-dev");
    }

    /** Copies a directory tree (to make broken variants of a fixture). */
    public static Path copy(Path src, Path dst) throws IOException {
        try (Stream<Path> w = Files.walk(src)) {
            for (Path p : (Iterable<Path>) w::iterator) {
                Path d = dst.resolve(src.relativize(p).toString());
                if (Files.isDirectory(p)) {
                    Files.createDirectories(d);
                } else {
                    Files.copy(p, d, StandardCopyOption.REPLACE_EXISTING);
                }
            }
        }
        return dst;
    }
}
