package dev.sdjvm.dist;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.awt.image.BufferedImage;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.jar.JarFile;
import java.util.jar.Manifest;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;
import javax.imageio.ImageIO;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The command-line distribution, unpacked from the archive into a temporary directory and run from there: no Maven,
 * no checkout, no class path but the archive's lib/.
 */
class DistributionIT {
    private static final String VERSION = Distribution.property("sdjvm.it.version");
    private static final String PROMPT = "a red circle on a blue background";

    @Test
    void archiveHoldsLauncherJarsAndLegalFiles() throws Exception {
        Path home = Distribution.home();
        Path sd = home.resolve("bin/sd");
        assertTrue(Files.isRegularFile(sd) && Files.isExecutable(sd), "bin/sd is executable");
        for (String f : List.of("README.md", "LICENSE", "NOTICE", "CHANGELOG.md")) {
            assertTrue(Files.isRegularFile(home.resolve(f)), f + " in the archive");
        }
        List<String> jars = libJars(home);
        for (String j : List.of("stable-diffusion-jvm-" + VERSION + ".jar",
                "stable-diffusion-jvm-examples-" + VERSION + ".jar", "picocli-", "netty-codec-http-", "logback-classic-", "micrometer-core-",
                "pytorch-", "javacpp-", "openblas-", "jna-", "jackson-databind-")) {
            assertTrue(jars.stream().anyMatch(n -> n.startsWith(j)), j + " in lib/: " + jars);
        }
        // the natives of the build's platform, for libtorch, OpenBLAS and JavaCPP
        assertEquals(3, jars.stream().filter(n -> n.matches("(pytorch|openblas|javacpp)-.*-linux-x86_64\\.jar")).count(),
                jars.toString());
        // nothing for tests or benchmarks
        assertTrue(jars.stream().noneMatch(n -> n.startsWith("junit") || n.startsWith("jmh") || n.startsWith("opentest")),
                jars.toString());
    }

    @Test
    void noticeNamesEveryShippedJar() throws Exception {
        Path home = Distribution.home();
        String notice = Files.readString(home.resolve("NOTICE"));
        Pattern artifact = Pattern.compile("(.+?)-\\d[^-]*(-.*)?\\.jar");
        List<String> missing = new ArrayList<>();
        for (String jar : libJars(home)) {
            Matcher m = artifact.matcher(jar);
            assertTrue(m.matches(), jar);
            if (!notice.contains(m.group(1) + "-<v>")) {
                missing.add(jar);
            }
        }
        assertTrue(missing.isEmpty(), "jars the NOTICE does not name (as artifactId-<v>): " + missing);
        assertEquals(Files.readString(Distribution.repository().resolve("NOTICE")), notice, "NOTICE is the repository's");
    }

    @Test
    void projectJarsCarryLicenseAndNotice() throws Exception {
        Path lib = Distribution.home().resolve("lib");
        String notice = Files.readString(Distribution.repository().resolve("NOTICE"));
        for (String name : List.of("stable-diffusion-jvm-" + VERSION + ".jar",
                "stable-diffusion-jvm-examples-" + VERSION + ".jar")) {
            try (JarFile jf = new JarFile(lib.resolve(name).toFile())) {
                assertTrue(jf.getEntry("META-INF/LICENSE") != null, name + " has META-INF/LICENSE");
                var entry = jf.getEntry("META-INF/NOTICE");
                assertTrue(entry != null, name + " has META-INF/NOTICE");
                try (var in = jf.getInputStream(entry)) {
                    assertEquals(notice, new String(in.readAllBytes(), java.nio.charset.StandardCharsets.UTF_8), name);
                }
            }
        }
    }

    @Test
    void examplesJarIsExecutableWithItsClassPathInLib() throws Exception {
        Path lib = Distribution.home().resolve("lib");
        Path jar = lib.resolve("stable-diffusion-jvm-examples-" + VERSION + ".jar");
        try (JarFile jf = new JarFile(jar.toFile())) {
            Manifest mf = jf.getManifest();
            assertEquals("dev.sdjvm.cli.Main", mf.getMainAttributes().getValue("Main-Class"));
            String cp = mf.getMainAttributes().getValue("Class-Path");
            assertFalse(cp == null || cp.isBlank(), "Class-Path");
            for (String entry : cp.trim().split("\\s+")) {
                assertTrue(Files.isRegularFile(lib.resolve(entry)), "Class-Path entry " + entry + " in lib/");
            }
        }
    }

    @Test
    void versionRunsFromTheUnpackedArchive(@TempDir Path dir) throws Exception {
        Path sd = Distribution.home().resolve("bin/sd");
        Distribution.Run r = Distribution.bash(dir, dir, sd + " --version", Map.of());
        assertEquals(0, r.exit(), r.all());
        assertTrue(r.out().startsWith("sd (stable-diffusion-jvm) " + VERSION + "\n"), r.all());
        assertTrue(r.out().contains("libtorch: org.bytedeco:pytorch "), r.all());

        // java -jar on the examples jar works too (Main-Class and Class-Path)
        Path jar = Distribution.home().resolve("lib/stable-diffusion-jvm-examples-" + VERSION + ".jar");
        Distribution.Run j = Distribution.bash(dir, dir, "java -jar " + jar + " --version", Map.of());
        assertEquals(0, j.exit(), j.all());
        assertTrue(j.out().startsWith("sd (stable-diffusion-jvm) " + VERSION + "\n"), j.all());
    }

    @Test
    void launcherWorksThroughASymbolicLinkAndPassesTheJvmFlags(@TempDir Path dir) throws Exception {
        Path link = Files.createSymbolicLink(dir.resolve("sd"), Distribution.home().resolve("bin/sd"));
        // the JVM prints the flags it runs with: ExitOnOutOfMemoryError must be among them
        Distribution.Run r = Distribution.bash(dir, dir, link + " --version",
                Map.of("SDJVM_JAVA_OPTS", "-XX:+PrintCommandLineFlags"));
        assertEquals(0, r.exit(), r.all());
        assertTrue(r.out().contains("-XX:+ExitOnOutOfMemoryError"), r.all());
        assertTrue(r.out().contains("sd (stable-diffusion-jvm) " + VERSION), r.all());
    }

    @Test
    void launcherPassesEveryJvmFlagOfTheCheckoutLauncher() throws Exception {
        Pattern flag = Pattern.compile("(?<=\\s)-(XX:\\S+|D\\S+)");
        List<String> checkout = new ArrayList<>();
        for (String line : Distribution.execLines(Distribution.repository().resolve("bin/sd"))) {
            Matcher m = flag.matcher(line);
            while (m.find()) {
                checkout.add(m.group());
            }
        }
        assertTrue(checkout.contains("-XX:+ExitOnOutOfMemoryError"), "checkout bin/sd flags: " + checkout);
        assertTrue(checkout.contains("-Dorg.bytedeco.javacpp.maxPhysicalBytes=0"), "checkout bin/sd flags: " + checkout);
        String dist = String.join("\n", Distribution.execLines(Distribution.home().resolve("bin/sd")));
        for (String f : checkout) {
            assertTrue(dist.contains(" " + f + " "), "the distribution's bin/sd passes " + f + ": " + dist);
        }
        assertFalse(Files.readString(Distribution.home().resolve("bin/sd")).contains("mvn"), "no Maven in the launcher");
    }

    @Test
    void generatesTheCheckoutsImageWithTheEmbeddedModel(@TempDir Path dir) throws Exception {
        Path sd = Distribution.home().resolve("bin/sd");
        // --no-optimize: the graphs as traced on both sides (the measured rewrites change float rounding, so two
        // processes that timed them differently may differ by a level)
        String args = " generate '" + PROMPT + "' --steps 8 --guidance 4 --seed 1 --threads 1 --no-optimize --output ";
        Distribution.Run r = Distribution.bash(dir, dir, sd + args + "dist.png", Map.of());
        assertEquals(0, r.exit(), r.all());
        assertTrue(r.outLines().contains("saved: dist.png"), r.all());
        BufferedImage dist = ImageIO.read(dir.resolve("dist.png").toFile());
        assertEquals(64, dist.getWidth());
        assertEquals(64, dist.getHeight());
        // the embedded model went to the scratch home, libtorch stayed in the relocated JavaCPP cache
        try (Stream<Path> s = Files.list(dir.resolve(".cache/sdjvm"))) {
            assertTrue(s.anyMatch(p -> p.getFileName().toString().startsWith("default-model-")), "model extracted");
        }
        assertFalse(Files.exists(dir.resolve(".javacpp")), "org.bytedeco.javacpp.cachedir relocates JavaCPP's cache");

        // the same command on the build's own class path (target/classes + the examples' runtime class path)
        Path target = Paths.get("target").toAbsolutePath();
        String cp = target.resolve("classes") + ":" + Files.readString(target.resolve("classpath.txt")).trim();
        Distribution.Run c = Distribution.bash(dir, dir,
                "java -cp '" + cp + "' dev.sdjvm.cli.Main" + args + "checkout.png", Map.of());
        assertEquals(0, c.exit(), c.all());
        BufferedImage checkout = ImageIO.read(dir.resolve("checkout.png").toFile());
        assertArrayEquals(checkout.getRGB(0, 0, 64, 64, null, 0, 64), dist.getRGB(0, 0, 64, 64, null, 0, 64),
                "same seed, same image from the archive as from the build");
    }

    /**
     * The containers' entry point (examples/docker/serve) over the unpacked archive, as Dockerfile.cpu installs it
     * ({@code SDJVM_HOME} = the distribution): {@code serve} with SageMaker's port variable and a model directory
     * answers {@code /ping} and {@code /invocations}, and SIGTERM ends it. No Docker engine is needed for this part.
     */
    @Test
    void containerEntryPointServesTheSageMakerContract(@TempDir Path dir) throws Exception {
        int port;
        try (java.net.ServerSocket s = new java.net.ServerSocket(0)) {
            port = s.getLocalPort();
        }
        Path serve = Distribution.repository().resolve("examples/docker/serve");
        ProcessBuilder pb = new ProcessBuilder("bash", serve.toString(), "serve").directory(dir.toFile())
                .redirectErrorStream(true).redirectOutput(dir.resolve("serve.log").toFile());
        Map<String, String> env = pb.environment();
        env.clear();
        env.put("PATH", Paths.get(System.getProperty("java.home"), "bin") + ":/usr/bin:/bin");
        env.put("SDJVM_HOME", Distribution.home().toString());
        env.put("SDJVM_MODEL_DIR", Distribution.repository().resolve("src/all/test/resources/models/tiny-sd21-fp32").toString());
        env.put("SAGEMAKER_BIND_TO_PORT", Integer.toString(port));
        env.put("SDJVM_WORKERS", "1");
        env.put("OMP_NUM_THREADS", "1");
        env.put("SDJVM_JAVA_OPTS", "-Duser.home=" + dir + " -Dorg.bytedeco.javacpp.cachedir="
                + Paths.get(System.getProperty("user.home"), ".javacpp", "cache")
                + " -Dsdjvm.cpu.tuningCache=" + Paths.get("target", "cpu-tuning").toAbsolutePath());
        Process p = pb.start();
        try {
            java.net.http.HttpClient http = java.net.http.HttpClient.newHttpClient();
            java.net.URI base = java.net.URI.create("http://127.0.0.1:" + port);
            int ping = -1;
            for (long end = System.nanoTime() + 180_000_000_000L; System.nanoTime() < end && ping != 200 && p.isAlive(); ) {
                try {
                    ping = http.send(java.net.http.HttpRequest.newBuilder(base.resolve("/ping")).build(),
                            java.net.http.HttpResponse.BodyHandlers.discarding()).statusCode();
                } catch (java.net.ConnectException e) {
                    // not listening yet
                }
                if (ping != 200) {
                    Thread.sleep(250);
                }
            }
            assertEquals(200, ping, Files.readString(dir.resolve("serve.log")));
            var response = http.send(java.net.http.HttpRequest.newBuilder(base.resolve("/invocations"))
                    .header("Content-Type", "text/plain")
                    .POST(java.net.http.HttpRequest.BodyPublishers.ofString("a red circle on a blue background"))
                    .build(), java.net.http.HttpResponse.BodyHandlers.ofByteArray());
            assertEquals(200, response.statusCode(), Files.readString(dir.resolve("serve.log")));
            BufferedImage img = ImageIO.read(new java.io.ByteArrayInputStream(response.body()));
            assertEquals(64, img.getWidth());
        } finally {
            // SIGTERM, as docker stop sends it: the JVM (exec'd by the script) drains and exits
            p.destroy();
            assertTrue(p.waitFor(60, java.util.concurrent.TimeUnit.SECONDS), "serve exits after SIGTERM");
        }
    }

    @Test
    void missingLibIsAClearError(@TempDir Path dir) throws Exception {
        Path bin = Files.createDirectories(dir.resolve("broken/bin"));
        Files.copy(Distribution.home().resolve("bin/sd"), bin.resolve("sd"));
        bin.resolve("sd").toFile().setExecutable(true);
        Distribution.Run r = Distribution.bash(dir, dir, bin.resolve("sd") + " --version", Map.of());
        assertEquals(1, r.exit(), r.all());
        assertTrue(r.err().contains("lib not found"), r.all());
    }

    private static List<String> libJars(Path home) throws IOException {
        try (Stream<Path> s = Files.list(home.resolve("lib"))) {
            return s.map(p -> p.getFileName().toString()).sorted().toList();
        }
    }
}
