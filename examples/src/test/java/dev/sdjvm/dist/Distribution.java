package dev.sdjvm.dist;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

/**
 * The distribution archive {@code mvn package} built (examples/target/sd-VERSION-PLATFORM.tar.gz), unpacked once per
 * test JVM into a fresh directory under target/it, and a way to run commands against it as a user would: a shell
 * whose environment holds no class path and no Maven settings, and whose caches (the embedded model's extraction, the
 * CPU rewrite decisions) go to a scratch home instead of the user's.
 */
final class Distribution {
    record Run(int exit, String out, String err) {
        List<String> outLines() {
            return out.isEmpty() ? List.of() : List.of(out.split("\n"));
        }

        String all() {
            return "exit " + exit + "\n--- stdout\n" + out + "\n--- stderr\n" + err;
        }
    }

    private static Path unpacked;

    private Distribution() {
    }

    static String property(String name) {
        String v = System.getProperty(name);
        assertTrue(v != null && !v.isBlank(), name + " not set: run through Maven (mvn verify)");
        return v;
    }

    static Path archive() {
        Path a = Paths.get(property("sdjvm.it.distribution"));
        assertTrue(Files.isRegularFile(a), a + " was not built (mvn package)");
        return a;
    }

    static Path repository() {
        return Paths.get(property("sdjvm.it.repository")).toAbsolutePath().normalize();
    }

    static Path work() throws IOException {
        return Files.createDirectories(Paths.get(property("sdjvm.it.work")).toAbsolutePath());
    }

    /** The unpacked distribution's top directory (sd-VERSION), unpacked with tar like a user would. */
    static synchronized Path home() throws IOException, InterruptedException {
        if (unpacked == null) {
            Path dir = Files.createTempDirectory(work(), "dist-");
            Process p = new ProcessBuilder("tar", "-xzf", archive().toString(), "-C", dir.toString())
                    .redirectErrorStream(true).start();
            String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
            assertTrue(p.waitFor(120, TimeUnit.SECONDS), "tar exits");
            assertEquals(0, p.exitValue(), "tar -xzf: " + out);
            unpacked = dir.resolve(property("sdjvm.it.distributionBase"));
            assertTrue(Files.isDirectory(unpacked), "the archive holds " + unpacked.getFileName());
        }
        return unpacked;
    }

    /**
     * Runs {@code command} with bash in {@code dir}. PATH: the directory of this JVM's java, then /usr/bin and /bin;
     * no CLASSPATH, JAVA_TOOL_OPTIONS or MAVEN_*; OMP_NUM_THREADS=1; {@code user.home} is {@code scratchHome} (the embedded model is
     * extracted there) while JavaCPP's cache stays the user's ({@code -Dorg.bytedeco.javacpp.cachedir}: libtorch is
     * not unpacked again per test) and the CPU rewrite decisions go to target/cpu-tuning, as in the unit tests.
     */
    static Run bash(Path dir, Path scratchHome, String command, Map<String, String> extraEnv)
            throws IOException, InterruptedException {
        Path javaBin = Paths.get(System.getProperty("java.home"), "bin");
        Path javacppCache = Paths.get(System.getProperty("user.home"), ".javacpp", "cache");
        ProcessBuilder pb = new ProcessBuilder("bash", "-c", command).directory(dir.toFile());
        Map<String, String> env = pb.environment();
        env.clear();
        env.put("PATH", javaBin + ":/usr/bin:/bin");
        env.put("HOME", scratchHome.toString());
        env.put("LANG", "C.UTF-8");
        // as in the unit tests (the parent POM's surefire configuration): the models are tiny, one OpenMP thread is
        // as fast and immune to the slow-down of a loaded machine; the commands themselves run as written
        env.put("OMP_NUM_THREADS", "1");
        // the CPU rewrite decisions: one cache for the build (as the unit tests), measured once, not per command
        Path tuning = Paths.get("target", "cpu-tuning").toAbsolutePath();
        env.put("SDJVM_JAVA_OPTS", "-Duser.home=" + scratchHome + " -Dorg.bytedeco.javacpp.cachedir=" + javacppCache
                + " -Dsdjvm.cpu.tuningCache=" + tuning);
        env.putAll(extraEnv);
        Path err = Files.createTempFile(work(), "stderr-", ".txt");
        pb.redirectError(err.toFile());
        long t0 = System.nanoTime();
        Process p = pb.start();
        p.getOutputStream().close();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertTrue(p.waitFor(300, TimeUnit.SECONDS), "exits within 300 s: " + command);
        String errText = Files.readString(err);
        Files.delete(err);
        System.out.printf("%.1f s, exit %d: %s%n", (System.nanoTime() - t0) / 1e9, p.exitValue(), command);
        return new Run(p.exitValue(), out.strip(), errText.strip());
    }

    /** The lines of a launcher that start with {@code exec} (continuations joined). */
    static List<String> execLines(Path launcher) throws IOException {
        List<String> out = new ArrayList<>();
        String joined = Files.readString(launcher).replace("\\\n", " ");
        for (String line : joined.split("\n")) {
            if (line.strip().startsWith("exec ")) {
                out.add(line.strip());
            }
        }
        return out;
    }
}
