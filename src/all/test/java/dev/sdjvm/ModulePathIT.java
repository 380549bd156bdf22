package dev.sdjvm;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.awt.image.BufferedImage;
import java.io.File;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.jar.JarFile;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Collectors;
import javax.imageio.ImageIO;
import javax.tools.JavaCompiler;
import javax.tools.ToolProvider;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;
import org.junit.jupiter.api.Timeout;

/**
 * The library as a user gets it (run by failsafe after {@code package}): a fresh Maven project that depends only on
 * {@code dev.sdjvm:stable-diffusion-jvm} resolves it from a repository, and the README's quick start, pasted as it
 * is, runs on the class path and on the module path.
 *
 * <p>The consumer build is a real nested Maven run with its own local repository (the built jar and POMs installed
 * there by this test, so the user's repository is never written) that fetches everything else from the building
 * user's local repository as if it were a remote one: no network.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
@Timeout(value = 600, unit = TimeUnit.SECONDS)
class ModulePathIT {
    private static final String DEPENDENCY_PLUGIN = "org.apache.maven.plugins:maven-dependency-plugin:3.8.1";

    private Path work;
    private Path jar;
    private Path consumer;
    private Path settings;
    private List<Path> classpath;
    private int mavenRuns;
    private int javaRuns;

    private static String property(String key) {
        String v = System.getProperty(key);
        assertNotNull(v, key + " is set by the failsafe configuration in library.xml");
        return v;
    }

    @BeforeAll
    void installIntoAFreshRepository() throws Exception {
        String version = property("sdjvm.it.version");
        jar = Paths.get(property("sdjvm.it.jar"));
        assertTrue(Files.isRegularFile(jar), jar + " (run after package)");
        work = Paths.get(property("sdjvm.it.work"));
        deleteTree(work);
        Path repo = Files.createDirectories(work.resolve("repo"));
        install(repo, "stable-diffusion-jvm", version, jar, "jar");
        install(repo, "stable-diffusion-jvm", version, Paths.get(property("sdjvm.it.pom")), "pom");
        install(repo, "stable-diffusion-jvm-parent", version, Paths.get(property("sdjvm.it.parentPom")), "pom");

        settings = work.resolve("settings.xml");
        String userRepo = Paths.get(property("sdjvm.it.localRepository")).toUri().toString();
        Files.writeString(settings, "<settings>\n  <localRepository>" + repo + "</localRepository>\n"
                + "  <mirrors><mirror><id>build-local-repository</id><mirrorOf>*</mirrorOf><url>" + userRepo
                + "</url></mirror></mirrors>\n</settings>\n");
        consumer = Files.createDirectories(work.resolve("consumer"));
        Files.writeString(consumer.resolve("pom.xml"), """
                <project xmlns="http://maven.apache.org/POM/4.0.0">
                  <modelVersion>4.0.0</modelVersion>
                  <groupId>example</groupId>
                  <artifactId>quickstart</artifactId>
                  <version>1</version>
                  <dependencies>
                    <dependency>
                      <groupId>dev.sdjvm</groupId>
                      <artifactId>stable-diffusion-jvm</artifactId>
                      <version>%s</version>
                    </dependency>
                  </dependencies>
                </project>
                """.formatted(version));
        Path cpFile = work.resolve("classpath.txt");
        mvn(DEPENDENCY_PLUGIN + ":build-classpath", "-Dmdep.outputFile=" + cpFile);
        classpath = Arrays.stream(Files.readString(cpFile).trim().split(File.pathSeparator)).map(Paths::get)
                .collect(Collectors.toList());
    }

    private static void install(Path repo, String artifactId, String version, Path file, String ext) throws IOException {
        Path dir = Files.createDirectories(repo.resolve("dev/sdjvm/" + artifactId + "/" + version));
        Files.copy(file, dir.resolve(artifactId + "-" + version + "." + ext), StandardCopyOption.REPLACE_EXISTING);
    }

    /** Runs Maven on the consumer project; returns its output. */
    private String mvn(String... args) throws IOException, InterruptedException {
        List<String> cmd = new ArrayList<>(List.of(Paths.get(property("sdjvm.it.mavenHome"), "bin", "mvn").toString(),
                "-B", "-s", settings.toString(), "-f", consumer.resolve("pom.xml").toString()));
        cmd.addAll(List.of(args));
        ProcessBuilder pb = new ProcessBuilder(cmd).redirectErrorStream(true);
        pb.environment().put("JAVA_HOME", System.getProperty("java.home"));
        pb.environment().remove("MAVEN_OPTS");
        pb.environment().remove("MAVEN_ARGS");
        Run r = run(pb, work.resolve("mvn-" + (++mavenRuns) + ".log"));
        assertEquals(0, r.exit(), String.join(" ", cmd) + "\n" + r.out());
        return r.out();
    }

    record Run(int exit, String out) {
    }

    private static Run run(ProcessBuilder pb, Path log) throws IOException, InterruptedException {
        Process p = pb.redirectOutput(log.toFile()).start();
        p.getOutputStream().close();
        boolean done = p.waitFor(300, TimeUnit.SECONDS);
        if (!done) {
            p.destroyForcibly();
        }
        assertTrue(done, "finished: " + pb.command());
        return new Run(p.exitValue(), Files.readString(log, StandardCharsets.UTF_8));
    }

    /** The README's quick start: the Java block that declares {@code class QuickStart}, exactly as written. */
    private static String readmeQuickStart() throws IOException {
        Matcher m = Pattern.compile("```java\\n(.*?)```", Pattern.DOTALL)
                .matcher(Files.readString(Paths.get(property("sdjvm.it.readme"))));
        while (m.find()) {
            if (m.group(1).contains("class QuickStart")) {
                return m.group(1);
            }
        }
        throw new AssertionError("README.md has no Java block with class QuickStart");
    }

    private String path(List<Path> entries) {
        return entries.stream().map(Path::toString).collect(Collectors.joining(File.pathSeparator));
    }

    private static void javac(String... args) {
        JavaCompiler javac = ToolProvider.getSystemJavaCompiler();
        assertNotNull(javac, "tests run on a JDK");
        assertEquals(0, javac.run(null, null, null, args), "javac " + String.join(" ", args));
    }

    private Run java(Path dir, String... args) throws IOException, InterruptedException {
        List<String> cmd = new ArrayList<>(List.of(Paths.get(System.getProperty("java.home"), "bin", "java").toString(),
                "-Xmx1g", "-Dsdjvm.cache=" + work.resolve("cache")));
        cmd.addAll(List.of(args));
        ProcessBuilder pb = new ProcessBuilder(cmd).directory(dir.toFile()).redirectErrorStream(true);
        pb.environment().put("OMP_NUM_THREADS", "1");
        return run(pb, dir.resolve("java-" + (++javaRuns) + ".log"));
    }

    private static void assertImage(Path png, Run r) throws IOException {
        assertEquals(0, r.exit(), r.out());
        assertFalse(r.out().contains("Exception"), r.out());
        assertTrue(Files.isRegularFile(png), "circle.png written\n" + r.out());
        BufferedImage img = ImageIO.read(png.toFile());
        assertEquals(64, img.getWidth());
        assertEquals(64, img.getHeight());
    }

    @Test
    void theConsumerGetsOnlyTheLibraryAndItsRuntimeDependencies() {
        List<String> names = classpath.stream().map(p -> p.getFileName().toString()).collect(Collectors.toList());
        assertTrue(names.stream().anyMatch(n -> n.startsWith("stable-diffusion-jvm-")), names.toString());
        assertTrue(names.stream().anyMatch(n -> n.matches("pytorch-.*-linux-x86_64\\.jar")), names.toString());
        for (String banned : List.of("picocli", "slf4j-simple", "junit", "jmh")) {
            assertTrue(names.stream().noneMatch(n -> n.startsWith(banned)), banned + " in " + names);
        }
    }

    @Test
    void javacppPlatformSelectsTheNatives() throws Exception {
        // dependency:collect resolves POMs only, so a platform whose jars were never downloaded can be checked
        String mac = mvn(DEPENDENCY_PLUGIN + ":collect", "-Djavacpp.platform=macosx-arm64");
        for (String a : List.of("pytorch", "openblas", "javacpp")) {
            assertTrue(mac.contains("org.bytedeco:" + a + ":jar:macosx-arm64:"), a + "\n" + mac);
        }
        assertFalse(mac.contains(":linux-x86_64:"), mac);
        String dflt = mvn(DEPENDENCY_PLUGIN + ":collect");
        assertTrue(dflt.contains("org.bytedeco:pytorch:jar:linux-x86_64:"), dflt);
    }

    @Test
    void theLibraryJarHoldsTheLibraryOnly() throws IOException {
        try (JarFile j = new JarFile(jar.toFile())) {
            List<String> entries = j.stream().map(e -> e.getName()).collect(Collectors.toList());
            assertTrue(entries.contains("module-info.class"), "module descriptor");
            assertTrue(entries.contains("dev/sdjvm/StableDiffusion.class"));
            assertTrue(entries.contains("dev/sdjvm/default-model/compiled_models/unet.pt"), "the embedded model");
            for (String pkg : List.of("dev/sdjvm/cli/", "dev/sdjvm/server/", "dev/sdjvm/bench/", "dev/sdjvm/examples/")) {
                assertTrue(entries.stream().noneMatch(e -> e.startsWith(pkg)), pkg + " is not in the library jar");
            }
        }
    }

    @Test
    void readmeQuickStartRunsOnTheClassPath() throws Exception {
        Path src = Files.createDirectories(work.resolve("classpath/src"));
        Path out = Files.createDirectories(work.resolve("classpath/classes"));
        Path run = Files.createDirectories(work.resolve("classpath/run"));
        Files.writeString(src.resolve("QuickStart.java"), readmeQuickStart());
        javac("-d", out.toString(), "-cp", path(classpath), src.resolve("QuickStart.java").toString());
        List<Path> cp = new ArrayList<>(List.of(out));
        cp.addAll(classpath);
        assertImage(run.resolve("circle.png"), java(run, "-cp", path(cp), "QuickStart"));
    }

    @Test
    void readmeQuickStartRunsOnTheModulePath() throws Exception {
        // a modular application: the README's code in a package, a module-info that requires dev.sdjvm, and
        // JavaCPP's native modules resolved with --add-modules ALL-MODULE-PATH (as the README says)
        Path src = Files.createDirectories(work.resolve("modulepath/src/quickstart"));
        Path out = Files.createDirectories(work.resolve("modulepath/classes"));
        Path run = Files.createDirectories(work.resolve("modulepath/run"));
        Files.writeString(src.resolve("QuickStart.java"), "package quickstart;\n\n" + readmeQuickStart());
        Path moduleInfo = src.getParent().resolve("module-info.java");
        Files.writeString(moduleInfo, "module quickstart {\n    requires dev.sdjvm;\n}\n");
        javac("-d", out.toString(), "--module-path", path(classpath), moduleInfo.toString(),
                src.resolve("QuickStart.java").toString());
        List<Path> mp = new ArrayList<>(List.of(out));
        mp.addAll(classpath);
        Run r = java(run, "--module-path", path(mp), "--add-modules", "ALL-MODULE-PATH", "-m",
                "quickstart/quickstart.QuickStart");
        assertImage(run.resolve("circle.png"), r);
        // the library really ran as the named module dev.sdjvm (not from the class path)
        Run describe = java(run, "--module-path", path(mp), "--describe-module", "dev.sdjvm");
        assertEquals(0, describe.exit(), describe.out());
        for (String exported : List.of("dev.sdjvm", "dev.sdjvm.tokenizer", "dev.sdjvm.scheduler", "dev.sdjvm.tensor",
                "dev.sdjvm.image")) {
            assertTrue(describe.out().contains("exports " + exported + "\n"), describe.out());
        }
        assertFalse(describe.out().contains("exports dev.sdjvm.pipeline"), describe.out());
        assertFalse(describe.out().contains("exports dev.sdjvm.backend"), describe.out());
    }

    private static void deleteTree(Path p) throws IOException {
        if (!Files.exists(p)) {
            return;
        }
        try (var w = Files.walk(p)) {
            for (Path f : (Iterable<Path>) w.sorted(java.util.Comparator.reverseOrder())::iterator) {
                Files.delete(f);
            }
        }
    }
}
