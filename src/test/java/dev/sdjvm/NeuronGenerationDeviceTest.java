package dev.sdjvm;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import org.junit.jupiter.api.Test;

/**
 * End to end on Inferentia2: generates 512x512 images at 20 DPM-Solver++ steps with the UNet's CFG halves on two
 * NeuronCores and prints P50/P95 latency. Needs /dev/neuron0 and SDJVM_NEURON_MODEL = a directory made by
 * tools/model/neuron_compile_sd21.py; skipped (with the reason printed) everywhere else.
 */
class NeuronGenerationDeviceTest {
    @Test
    void generatesOnNeuronCores() {
        boolean device = Files.exists(Path.of("/dev/neuron0"));
        String model = System.getenv("SDJVM_NEURON_MODEL");
        String reason = !device ? "no /dev/neuron0: not an Inferentia2 instance"
                : "SDJVM_NEURON_MODEL does not name a compiled model directory";
        boolean run = device && model != null && Files.isDirectory(Path.of(model));
        if (!run) {
            System.out.println("SKIPPED NeuronGenerationDeviceTest: " + reason);
        }
        assumeTrue(run, reason);
        int runs = Integer.parseInt(System.getenv().getOrDefault("SDJVM_NEURON_RUNS", "20"));
        try (StableDiffusion sd = StableDiffusion.load(Path.of(model),
                LoadOptions.defaults().withBackend(Backend.NEURON).withUnetReplicas(2))) {
            assertEquals(Backend.NEURON, sd.info().backend());
            GenerationRequest req = GenerationRequest.builder("a photo of an astronaut riding a horse on mars")
                    .steps(20).seed(0L).build();
            sd.generate(req);  // warm-up
            double[] s = new double[runs];
            double overhead = 0;
            for (int i = 0; i < runs; i++) {
                GenerationResult r = sd.generate(req);
                s[i] = r.timings().totalNanos() / 1e9;
                overhead += r.timings().overheadMillisPerStep() / runs;
            }
            Arrays.sort(s);
            System.out.printf("Neuron 512x512, 20 steps: P50 %.3f s, P95 %.3f s, Java overhead %.3f ms/step (%d runs)%n",
                    s[runs / 2], s[(int) Math.ceil(0.95 * runs) - 1], overhead, runs);
        }
    }
}
