package dev.sdjvm;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import org.junit.jupiter.api.Test;

/**
 * End to end on Inferentia2 through the NEFF path (libnrt, no libtorch): generates 512x512 images at 20 DPM-Solver++
 * steps with the UNet's CFG halves on two NeuronCores and prints P50/P95 latency and the Java overhead per step. Needs
 * /dev/neuron0, libnrt (aws-neuronx-runtime-lib) and SDJVM_NEURON_MODEL = a compiled model directory (AWS's notebook
 * output laid out by tools/model/aws_notebook_to_model.sh, or tools/model/neuron_compile_sd21.py's); skipped (with the
 * reason printed) everywhere else.
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
            assertEquals(ModelInfo.Device.neuron(0, 1), sd.info().artifacts().get("unet").device());
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
