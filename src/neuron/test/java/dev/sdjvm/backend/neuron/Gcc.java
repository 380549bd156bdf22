package dev.sdjvm.backend.neuron;

import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

/** Builds real shared libraries for the tests with the system gcc; tests are skipped (with the reason) without it. */
final class Gcc {
    private static Boolean available;

    private Gcc() {}

    static synchronized boolean available() {
        if (available == null) {
            try {
                Process p = new ProcessBuilder("gcc", "--version").redirectErrorStream(true).start();
                p.getInputStream().readAllBytes();
                available = p.waitFor(30, TimeUnit.SECONDS) && p.exitValue() == 0;
            } catch (IOException | InterruptedException e) {
                available = false;
            }
        }
        return available;
    }

    static void assumeAvailable() {
        boolean ok = available();
        if (!ok) {
            System.out.println("SKIPPED: gcc not found on PATH; the test builds real ELF shared libraries with it");
        }
        assumeTrue(ok, "gcc not found on PATH; the test builds real ELF shared libraries with it");
    }

    /**
     * Compiles {@code source} into {@code dir/name} as a shared library; {@code extra} are further gcc arguments
     * (e.g. {@code -L}, {@code -l}, {@code -Wl,...}).
     */
    static Path sharedLibrary(Path dir, String name, String source, String... extra) throws IOException, InterruptedException {
        Files.createDirectories(dir);
        Path c = dir.resolve(name + ".c");
        Files.writeString(c, source, StandardCharsets.UTF_8);
        Path out = dir.resolve(name);
        List<String> cmd = new ArrayList<>(List.of("gcc", "-shared", "-fPIC", "-O1", "-o", out.toString(), c.toString()));
        cmd.addAll(List.of(extra));
        Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
        String log = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        if (!p.waitFor(120, TimeUnit.SECONDS) || p.exitValue() != 0) {
            throw new IOException("gcc failed: " + String.join(" ", cmd) + "\n" + log);
        }
        return out;
    }
}
