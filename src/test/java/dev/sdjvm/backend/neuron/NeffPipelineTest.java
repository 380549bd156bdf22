package dev.sdjvm.backend.neuron;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.sdjvm.Backend;
import dev.sdjvm.GenerationRequest;
import dev.sdjvm.GenerationResult;
import dev.sdjvm.LoadOptions;
import dev.sdjvm.StableDiffusion;
import java.nio.file.Path;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The NEFF path end to end on the simulated runtime: a directory in AWS's layout whose {@code .pt} files carry NEFFs
 * generates through libnrt, and gives the image the CPU path gives for TorchScript twins computing the same functions.
 */
class NeffPipelineTest {
    @TempDir
    Path tmp;

    @BeforeEach
    void sim() {
        NrtSim.library();
        NrtSim.reset();
    }

    @AfterEach
    void clean() {
        NrtSim.reset();
    }

    static GenerationRequest.Builder req() {
        return GenerationRequest.builder("a red circle on a blue background").negativePrompt("green")
                .steps(8).guidanceScale(5).seed(42L);
    }

    @Test
    void neffPathEqualsTheCpuPathOnTwinArtifacts() throws Exception {
        Path neuron = NrtSim.model("sim-neuron", tmp.resolve("neuron"));
        Path cpu = NrtSim.model("sim-cpu", tmp.resolve("cpu"));
        GenerationResult onNeuron;
        try (StableDiffusion sd = StableDiffusion.load(neuron)) {
            assertEquals(Backend.NEURON, sd.info().backend());
            onNeuron = sd.generate(req().build());
        }
        GenerationResult onCpu;
        try (StableDiffusion sd = StableDiffusion.load(cpu, LoadOptions.defaults().withThreads(1))) {
            assertEquals(Backend.CPU, sd.info().backend());
            onCpu = sd.generate(req().build());
        }
        assertArrayEquals(onCpu.latents(), onNeuron.latents(), "final latents bit for bit");
        assertArrayEquals(onCpu.images().get(0).rgb(), onNeuron.images().get(0).rgb(), "the same image");
        var s = NrtSim.stats();
        assertEquals(0, s.get("live_models"), "every model unloaded at close");
        assertEquals(0, s.get("live_tensors"));
        assertEquals(0, s.get("initialized"), "nrt_close after the last model");
        int distinct = 0;
        for (byte b : onNeuron.images().get(0).rgb()) {
            distinct |= 1 << ((b & 0xff) >> 5);
        }
        assertTrue(Integer.bitCount(distinct) >= 3, "the image is not flat: the comparison means something");
    }
}
