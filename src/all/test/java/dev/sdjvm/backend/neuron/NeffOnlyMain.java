package dev.sdjvm.backend.neuron;

import dev.sdjvm.Backend;
import dev.sdjvm.GenerationRequest;
import dev.sdjvm.GenerationResult;
import dev.sdjvm.StableDiffusion;
import java.io.File;
import java.nio.file.Files;
import java.nio.file.Path;
import javax.imageio.ImageIO;

/**
 * Run by {@link NoLibtorchTest} in a child JVM whose class path holds no org.bytedeco jar: loads a Neuron model
 * directory, generates one image on the NEFF path, writes it, then prints every mapped library of the process whose
 * name says libtorch or JavaCPP (there must be none).
 */
public final class NeffOnlyMain {
    private NeffOnlyMain() {
    }

    public static void main(String[] args) throws Exception {
        Path model = Path.of(args[0]);
        try (StableDiffusion sd = StableDiffusion.load(model)) {
            if (sd.info().backend() != Backend.NEURON) {
                throw new IllegalStateException("backend " + sd.info().backend());
            }
            GenerationResult r = sd.generate(GenerationRequest.builder("a red circle on a blue background")
                    .negativePrompt("green").steps(8).guidanceScale(5).seed(42L).build());
            ImageIO.write(r.image(), "png", new File(args[1]));
        }
        for (String line : Files.readAllLines(Path.of("/proc/self/maps"))) {
            String l = line.toLowerCase(java.util.Locale.ROOT);
            if (l.contains("libtorch") || l.contains("libc10") || l.contains("jnitorch") || l.contains("javacpp")) {
                System.out.println("MAPPED " + line);
            }
        }
        try {
            Class.forName("org.bytedeco.pytorch.global.torch", false, NeffOnlyMain.class.getClassLoader());
            System.out.println("PYTORCH CLASSES ON THE CLASS PATH");
        } catch (ClassNotFoundException expected) {
            System.out.println("no org.bytedeco.pytorch on the class path");
        }
        System.out.println("GENERATED");
    }
}
