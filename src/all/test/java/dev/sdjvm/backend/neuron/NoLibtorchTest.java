package dev.sdjvm.backend.neuron;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.sdjvm.GenerationRequest;
import dev.sdjvm.StableDiffusion;
import dev.sdjvm.image.RgbImage;
import java.awt.image.BufferedImage;
import java.io.File;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.stream.Collectors;
import javax.imageio.ImageIO;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * On the NEFF path the JVM needs only this library, its small pure-Java dependencies and libnrt: a child JVM whose class
 * path has no org.bytedeco jar at all (no libtorch, no JavaCPP) generates the image, no libtorch library is mapped into
 * it, and the image equals the one generated here. The child also plays an older runtime (libnrt 2.27: the
 * pre-2.28 dtype numbering).
 */
class NoLibtorchTest {
    @TempDir
    Path tmp;

    @Test
    void aNeuronModelGeneratesWithoutLibtorchOrJavacppInTheProcess() throws Exception {
        Path lib = NrtSim.library();
        Path model = NrtSim.model("sim-neuron", tmp.resolve("m"));
        List<String> cp = new ArrayList<>();
        cp.add(Path.of("target/classes").toAbsolutePath().toString());
        cp.add(Path.of("target/test-classes").toAbsolutePath().toString());
        String all = Files.readString(Path.of("target/test-classpath.txt")).trim();
        for (String jar : all.split(File.pathSeparator)) {
            String name = Path.of(jar).getFileName().toString();
            // the core and the Neuron backend (their jars, or their classes in a reactor build); not the CPU backend
            boolean module = name.startsWith("stable-diffusion-jvm-core") || name.startsWith("stable-diffusion-jvm-neuron")
                    || jar.replace(File.separatorChar, '/').matches(".*/src/(core|neuron)/target/(test-)?classes/?");
            if (module || name.startsWith("jackson-") || name.startsWith("slf4j-") || name.startsWith("jna-")) {
                cp.add(jar);
            }
            assertFalse(name.startsWith("jna") && name.contains("bytedeco"));
        }
        assertTrue(cp.stream().noneMatch(j -> j.contains("bytedeco")));
        Path png = tmp.resolve("out.png");
        ProcessBuilder pb = new ProcessBuilder(Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                "-cp", String.join(File.pathSeparator, cp), "-D" + NeuronRuntime.PATH_PROPERTY + "=" + lib,
                NeffOnlyMain.class.getName(), model.toString(), png.toString());
        pb.environment().put("NRT_SIM_VERSION", "2.27.1.0");
        pb.environment().put("NRT_SIM_LEGACY_DTYPES", "1");
        pb.redirectErrorStream(true);
        Process p = pb.start();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertTrue(p.waitFor(300, TimeUnit.SECONDS), "child JVM did not finish:\n" + out);
        assertEquals(0, p.exitValue(), out);
        assertTrue(out.contains("GENERATED"), out);
        assertTrue(out.contains("no org.bytedeco.pytorch on the class path"), out);
        assertFalse(out.contains("MAPPED"), "libtorch/JavaCPP mapped into the child:\n" + out);
        assertTrue(out.contains("2.27.1.0"), "the child ran on the older runtime:\n" + out);

        BufferedImage child = ImageIO.read(png.toFile());
        NrtSim.reset();
        RgbImage here;
        try (StableDiffusion sd = StableDiffusion.load(model)) {
            here = sd.generate(GenerationRequest.builder("a red circle on a blue background").negativePrompt("green")
                    .steps(8).guidanceScale(5).seed(42L).build()).images().get(0);
        }
        int[] a = child.getRGB(0, 0, child.getWidth(), child.getHeight(), null, 0, child.getWidth());
        int[] b = here.toBufferedImage().getRGB(0, 0, here.width(), here.height(), null, 0, here.width());
        assertArrayEquals(b, a, "the child's image (old runtime, no libtorch) equals this JVM's");
        System.out.println(Arrays.stream(out.split("\n")).filter(l -> l.contains("Neuron")).collect(Collectors.joining("\n")));
    }
}
