package dev.sdjvm;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
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
import java.util.Map;
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
 * The library as a user gets it (run by failsafe after {@code package}): fresh Maven projects resolve the packaged
 * artifacts from a repository.
 * <ul>
 *   <li>One depends only on {@code dev.sdjvm:stable-diffusion-jvm} (core, both backends, the embedded model): the
 *       README's quick start, pasted as it is, runs on the class path and on the module path.</li>
 *   <li>One depends on {@code stable-diffusion-jvm-core} and {@code stable-diffusion-jvm-neuron}, as a Maven user on
 *       inf2 (and the Neuron container) does: it resolves no {@code org.bytedeco} artifact at all, generates with a
 *       Neuron model on the simulated libnrt (the image this JVM makes), and the embedded model and a CPU model fail
 *       with errors naming the artifact to add.</li>
 * </ul>
 *
 * <p>The consumer builds are real nested Maven runs with their own local repository (the built jars and POMs
 * installed there by this test, so the user's repository is never written) that fetch everything else from the
 * building user's local repository as if it were a remote one: no network.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
@Timeout(value = 600, unit = TimeUnit.SECONDS)
class ModulePathIT {
    private static final String DEPENDENCY_PLUGIN = "org.apache.maven.plugins:maven-dependency-plugin:3.8.1";

    /** The library's artifacts: the directory under src/ of each. */
    private static final Map<String, String> MODULES = Map.of("stable-diffusion-jvm-core", "core",
            "stable-diffusion-jvm-cpu", "cpu", "stable-diffusion-jvm-neuron", "neuron", "stable-diffusion-jvm", "all");

    private Path work;
    private Path root;
    private Path consumer;
    private Path inf2;
    private List<Path> inf2Classpath;
    private Path settings;
    private List<Path> classpath;
    private int mavenRuns;
    private int javaRuns;

    private static String property(String key) {
        String v = System.getProperty(key);
        assertNotNull(v, key + " is set by the failsafe configuration in src/all/pom.xml");
        return v;
    }

    @BeforeAll
    void installIntoAFreshRepository() throws Exception {
        String version = property("sdjvm.it.version");
        root = Paths.get(property("sdjvm.it.root")).toAbsolutePath().normalize();
        work = Paths.get(property("sdjvm.it.work"));
        deleteTree(work);
        Path repo = Files.createDirectories(work.resolve("repo"));
        for (var m : MODULES.entrySet()) {
            Path moduleJar = root.resolve("src/" + m.getValue() + "/target/" + m.getKey() + "-" + version + ".jar");
            assertTrue(Files.isRegularFile(moduleJar), moduleJar + " (run after package)");
            install(repo, m.getKey(), version, moduleJar, "jar");
            install(repo, m.getKey(), version, root.resolve("src/" + m.getValue() + "/pom.xml"), "pom");
        }
        install(repo, "stable-diffusion-jvm-parent", version, root.resolve("pom.xml"), "pom");

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
        classpath = classpath(consumer, work.resolve("classpath.txt"));

        // a Maven user on inf2: the core and the Neuron backend only
        inf2 = Files.createDirectories(work.resolve("inf2"));
        Files.writeString(inf2.resolve("pom.xml"), """
                <project xmlns="http://maven.apache.org/POM/4.0.0">
                  <modelVersion>4.0.0</modelVersion>
                  <groupId>example</groupId>
                  <artifactId>inf2</artifactId>
                  <version>1</version>
                  <dependencies>
                    <dependency>
                      <groupId>dev.sdjvm</groupId>
                      <artifactId>stable-diffusion-jvm-core</artifactId>
                      <version>%1$s</version>
                    </dependency>
                    <dependency>
                      <groupId>dev.sdjvm</groupId>
                      <artifactId>stable-diffusion-jvm-neuron</artifactId>
                      <version>%1$s</version>
                    </dependency>
                  </dependencies>
                </project>
                """.formatted(version));
        inf2Classpath = classpath(inf2, work.resolve("inf2-classpath.txt"));
    }

    /** The runtime class path Maven resolves for a consumer project. */
    private List<Path> classpath(Path project, Path cpFile) throws IOException, InterruptedException {
        mvn(project, DEPENDENCY_PLUGIN + ":build-classpath", "-Dmdep.outputFile=" + cpFile);
        return Arrays.stream(Files.readString(cpFile).trim().split(File.pathSeparator)).map(Paths::get)
                .collect(Collectors.toList());
    }

    private static void install(Path repo, String artifactId, String version, Path file, String ext) throws IOException {
        Path dir = Files.createDirectories(repo.resolve("dev/sdjvm/" + artifactId + "/" + version));
        Files.copy(file, dir.resolve(artifactId + "-" + version + "." + ext), StandardCopyOption.REPLACE_EXISTING);
    }

    /** Runs Maven on the README's consumer project; returns its output. */
    private String mvn(String... args) throws IOException, InterruptedException {
        return mvn(consumer, args);
    }

    /** Runs Maven on a consumer project; returns its output. */
    private String mvn(Path project, String... args) throws IOException, InterruptedException {
        List<String> cmd = new ArrayList<>(List.of(Paths.get(property("sdjvm.it.mavenHome"), "bin", "mvn").toString(),
                "-B", "-s", settings.toString(), "-f", project.resolve("pom.xml").toString()));
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
                .matcher(Files.readString(Paths.get(property("sdjvm.it.root")).resolve("README.md")));
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
    void theLibraryJarsHoldTheLibraryOnly() throws IOException {
        String version = property("sdjvm.it.version");
        Map<String, List<String>> entries = new java.util.TreeMap<>();
        for (var m : MODULES.entrySet()) {
            Path j = root.resolve("src/" + m.getValue() + "/target/" + m.getKey() + "-" + version + ".jar");
            try (JarFile f = new JarFile(j.toFile())) {
                entries.put(m.getValue(), f.stream().map(e -> e.getName()).collect(Collectors.toList()));
            }
            assertTrue(entries.get(m.getValue()).contains("module-info.class"), m.getKey() + ": module descriptor");
            for (String pkg : List.of("dev/sdjvm/cli/", "dev/sdjvm/server/", "dev/sdjvm/bench/", "dev/sdjvm/examples/")) {
                assertTrue(entries.get(m.getValue()).stream().noneMatch(e -> e.startsWith(pkg)), pkg + " in " + j);
            }
        }
        assertTrue(entries.get("core").contains("dev/sdjvm/StableDiffusion.class"));
        assertTrue(entries.get("core").stream().noneMatch(e -> e.startsWith("dev/sdjvm/backend/torch/")
                || e.startsWith("dev/sdjvm/backend/neuron/") || e.startsWith("dev/sdjvm/default-model/")), "core");
        assertTrue(entries.get("cpu").contains("dev/sdjvm/backend/torch/TorchBackendProvider.class"));
        assertTrue(entries.get("cpu").contains("META-INF/services/dev.sdjvm.backend.BackendProvider"));
        assertTrue(entries.get("neuron").contains("dev/sdjvm/backend/neuron/NeuronBackendProvider.class"));
        assertTrue(entries.get("neuron").contains("META-INF/services/dev.sdjvm.backend.BackendProvider"));
        assertTrue(entries.get("all").contains("dev/sdjvm/default-model/compiled_models/unet.pt"), "the embedded model");
        assertTrue(entries.get("all").stream().noneMatch(e -> e.endsWith(".class") && !e.equals("module-info.class")),
                "the convenience jar has no classes of its own");
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
        assertFalse(describe.out().contains("exports dev.sdjvm.backend\n"), describe.out());
        assertTrue(describe.out().contains("uses dev.sdjvm.backend.BackendProvider"), describe.out());
        Run torch = java(run, "--module-path", path(mp), "--describe-module", "dev.sdjvm.backend.torch");
        assertTrue(torch.out().contains("provides dev.sdjvm.backend.BackendProvider with "
                + "dev.sdjvm.backend.torch.TorchBackendProvider"), torch.out());
    }

    @Test
    void anInf2ConsumerOfTheCoreAndTheNeuronBackendResolvesNoBytedecoArtifact() throws Exception {
        List<String> names = inf2Classpath.stream().map(p -> p.getFileName().toString()).collect(Collectors.toList());
        assertTrue(names.stream().anyMatch(n -> n.startsWith("stable-diffusion-jvm-core-")), names.toString());
        assertTrue(names.stream().anyMatch(n -> n.startsWith("stable-diffusion-jvm-neuron-")), names.toString());
        assertTrue(names.stream().anyMatch(n -> n.startsWith("jna-")), names.toString());
        for (String banned : List.of("pytorch", "javacpp", "openblas", "stable-diffusion-jvm-cpu")) {
            assertTrue(names.stream().noneMatch(n -> n.startsWith(banned)), banned + " in " + names);
        }
        assertTrue(inf2Classpath.stream().noneMatch(p -> p.toString().contains("bytedeco")), inf2Classpath.toString());
        // the whole dependency tree (test scope too), with and without a native platform chosen
        for (String platform : List.of("", "-Djavacpp.platform=macosx-arm64")) {
            String tree = platform.isEmpty() ? mvn(inf2, DEPENDENCY_PLUGIN + ":tree")
                    : mvn(inf2, DEPENDENCY_PLUGIN + ":tree", platform);
            assertTrue(tree.contains("dev.sdjvm:stable-diffusion-jvm-neuron:jar:"), tree);
            assertFalse(tree.contains("org.bytedeco"), tree);
        }
    }

    /** The inf2 consumer's program: a Neuron model generates; the embedded model and a CPU model name what to add. */
    private static final String INF2_MAIN = """
            import dev.sdjvm.GenerationRequest;
            import dev.sdjvm.StableDiffusion;
            import dev.sdjvm.errors.StableDiffusionException;
            import java.io.File;
            import java.nio.file.Path;
            import javax.imageio.ImageIO;

            public class Inf2Main {
                public static void main(String[] args) throws Exception {
                    try (StableDiffusion sd = StableDiffusion.load(Path.of(args[0]))) {
                        System.out.println("BACKEND " + sd.info().backend());
                        ImageIO.write(sd.generate(GenerationRequest.builder("a red circle on a blue background")
                                .negativePrompt("green").steps(4).guidanceScale(5).seed(7L).build()).image(), "png",
                                new File(args[1]));
                    }
                    try (StableDiffusion sd = StableDiffusion.loadDefault()) {
                        System.out.println("LOADED THE EMBEDDED MODEL");
                    } catch (StableDiffusionException e) {
                        System.out.println("DEFAULT " + e.getMessage());
                    }
                    try (StableDiffusion sd = StableDiffusion.load(Path.of(args[2]))) {
                        System.out.println("LOADED A CPU MODEL");
                    } catch (StableDiffusionException e) {
                        System.out.println("CPU " + e.getMessage());
                    }
                    try {
                        Class.forName("org.bytedeco.javacpp.Loader");
                        System.out.println("JAVACPP ON THE CLASS PATH");
                    } catch (ClassNotFoundException expected) {
                        System.out.println("no JavaCPP");
                    }
                }
            }
            """;

    @Test
    void anInf2ConsumerGeneratesWithANeuronModelOnTheSimulatedRuntime() throws Exception {
        Path lib = dev.sdjvm.backend.neuron.NrtSim.library();
        Path dir = Files.createDirectories(work.resolve("inf2-run"));
        // the simulator's fixtures with the embedded model's tokenizer (from the sources: failsafe has the jar)
        Path tokenizer = root.resolve("src/all/main/resources/dev/sdjvm/default-model/tokenizer");
        Path neuronModel = TestModels.copy(TestModels.resource("models/sim-neuron"), dir.resolve("sim-neuron"));
        TestModels.copy(tokenizer, neuronModel.resolve("tokenizer"));
        Path cpuModel = TestModels.copy(TestModels.resource("models/sim-cpu"), dir.resolve("sim-cpu"));
        TestModels.copy(tokenizer, cpuModel.resolve("tokenizer"));
        Path src = Files.createDirectories(dir.resolve("src"));
        Path out = Files.createDirectories(dir.resolve("classes"));
        Files.writeString(src.resolve("Inf2Main.java"), INF2_MAIN);
        javac("-d", out.toString(), "-cp", path(inf2Classpath), src.resolve("Inf2Main.java").toString());
        List<Path> cp = new ArrayList<>(List.of(out));
        cp.addAll(inf2Classpath);
        Path png = dir.resolve("neuron.png");
        Run r = java(dir, "-cp", path(cp), "-Dsdjvm.neuron.nrt.path=" + lib, "Inf2Main", neuronModel.toString(),
                png.toString(), cpuModel.toString());
        assertEquals(0, r.exit(), r.out());
        assertTrue(r.out().contains("BACKEND NEURON"), r.out());
        assertTrue(r.out().contains("DEFAULT ") && r.out().contains("dev.sdjvm:stable-diffusion-jvm "), r.out());
        assertTrue(r.out().contains("CPU CPU backend not found: add dev.sdjvm:stable-diffusion-jvm-cpu"), r.out());
        assertTrue(r.out().contains("no JavaCPP"), r.out());

        // the image is the one this JVM (all artifacts) makes on the same simulator
        BufferedImage child = ImageIO.read(png.toFile());
        BufferedImage here;
        try (StableDiffusion sd = StableDiffusion.load(neuronModel)) {
            assertEquals(Backend.NEURON, sd.info().backend());
            here = sd.generate(GenerationRequest.builder("a red circle on a blue background").negativePrompt("green")
                    .steps(4).guidanceScale(5).seed(7L).build()).image();
        }
        assertEquals(here.getWidth(), child.getWidth());
        int w = here.getWidth();
        int h = here.getHeight();
        assertArrayEquals(here.getRGB(0, 0, w, h, null, 0, w), child.getRGB(0, 0, w, h, null, 0, w));
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
