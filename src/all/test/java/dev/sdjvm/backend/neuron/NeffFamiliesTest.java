package dev.sdjvm.backend.neuron;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.sdjvm.Backend;
import dev.sdjvm.GenerationRequest;
import dev.sdjvm.GenerationResult;
import dev.sdjvm.LoadOptions;
import dev.sdjvm.StableDiffusion;
import dev.sdjvm.TestModels;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.Arrays;
import java.util.List;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * The SD 1.5 and SD 2.x v-prediction families on the NEFF path (simulated libnrt): the sim fixtures given the
 * family's files (SD 1.5: the tokenizer files of tiny-sd15-fp32, pad {@code <|endoftext|>}, its text encoder and
 * scheduler configs; v-prediction: the published 768 scheduler config) generate through libnrt the same latents and
 * image, bit for bit, as the CPU path on the TorchScript twins, with and without guidance_rescale.
 */
class NeffFamiliesTest {
    private static final ObjectMapper JSON = new ObjectMapper();

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

    /** Gives a sim fixture copy the files of a family. */
    private static void asFamily(Path dir, String family) throws Exception {
        Path sd15 = TestModels.resource("models/tiny-sd15-fp32");
        Path v = TestModels.resource("models/tiny-sd2v-fp32");
        switch (family) {
            case "SD1" -> {
                for (String f : new String[] {"vocab.json", "merges.txt", "special_tokens_map.json", "tokenizer_config.json"}) {
                    Files.copy(sd15.resolve("tokenizer").resolve(f), dir.resolve("tokenizer").resolve(f),
                            StandardCopyOption.REPLACE_EXISTING);
                }
                Files.copy(sd15.resolve("scheduler/scheduler_config.json"), dir.resolve("scheduler/scheduler_config.json"),
                        StandardCopyOption.REPLACE_EXISTING);
                ObjectNode te = (ObjectNode) JSON.readTree(dir.resolve("text_encoder/config.json").toFile());
                te.put("hidden_act", "quick_gelu");
                Files.writeString(dir.resolve("text_encoder/config.json"), te.toString());
            }
            case "SD2_V" -> Files.copy(v.resolve("scheduler/scheduler_config.json"),
                    dir.resolve("scheduler/scheduler_config.json"), StandardCopyOption.REPLACE_EXISTING);
            case "TURBO" -> Files.copy(TestModels.resource("models/tiny-turbo-fp32/scheduler/scheduler_config.json"),
                    dir.resolve("scheduler/scheduler_config.json"), StandardCopyOption.REPLACE_EXISTING);
            default -> throw new IllegalArgumentException(family);
        }
    }

    @ParameterizedTest
    @ValueSource(strings = {"SD1", "SD2_V", "TURBO"})
    void neffPathEqualsTheCpuPath(String family) throws Exception {
        Path neuron = NrtSim.model("sim-neuron", tmp.resolve("neuron"));
        Path cpu = NrtSim.model("sim-cpu", tmp.resolve("cpu"));
        asFamily(neuron, family);
        asFamily(cpu, family);
        for (double rescale : new double[] {0.0, 0.7}) {
            GenerationRequest req = GenerationRequest.builder("a red circle on a blue background!")
                    .negativePrompt("green").steps(8).guidanceScale(5).guidanceRescale(rescale).seed(42L).build();
            GenerationResult onNeuron;
            try (StableDiffusion sd = StableDiffusion.load(neuron)) {
                assertEquals(Backend.NEURON, sd.info().backend());
                assertEquals(family, sd.info().family(), sd.info().familyEvidence());
                if (family.equals("SD1")) {
                    int[] ids = sd.tokenizer().tokenize("a red circle").inputIds();
                    assertEquals(49407, ids[ids.length - 1], "SD 1.x pads with <|endoftext|>");
                }
                onNeuron = sd.generate(req);
            }
            GenerationResult onCpu;
            try (StableDiffusion sd = StableDiffusion.load(cpu, LoadOptions.defaults().withThreads(1))) {
                assertEquals(Backend.CPU, sd.info().backend());
                onCpu = sd.generate(req);
            }
            assertArrayEquals(onCpu.latents(), onNeuron.latents(), family + " rescale " + rescale + ": final latents");
            assertArrayEquals(onCpu.images().get(0).rgb(), onNeuron.images().get(0).rgb(), family + ": the same image");
        }
        // the family's files matter: the SD 2.1 files give other latents
        Path plain = NrtSim.model("sim-neuron", tmp.resolve("plain"));
        GenerationRequest req = GenerationRequest.builder("a red circle on a blue background!").negativePrompt("green")
                .steps(8).guidanceScale(5).seed(42L).build();
        try (StableDiffusion a = StableDiffusion.load(plain); StableDiffusion b = StableDiffusion.load(neuron)) {
            assertFalse(Arrays.equals(a.generate(req).latents(), b.generate(req).latents()));
        }
    }

    /**
     * LCM on the NEFF path: the UNet NEFF takes the guidance embedding as its fourth input (input3, by the model's
     * UNet signature); the LCM scheduler's few steps at diffusers' LCM defaults (no steps or guidance in the request:
     * 4 steps at 8.5) give the CPU twin's latents and image bit for bit, and the embedding matters.
     */
    @Test
    void lcmNeffPathEqualsTheCpuPath() throws Exception {
        Path neuron = TestModels.copy(TestModels.resource("models/sim-lcm-neuron"),
                NrtSim.model("sim-neuron", tmp.resolve("lcm-neuron")));
        Path cpu = TestModels.copy(TestModels.resource("models/sim-lcm-cpu"), NrtSim.model("sim-cpu", tmp.resolve("lcm-cpu")));
        GenerationRequest req = GenerationRequest.builder("a red circle on a blue background!").seed(42L).build();
        GenerationResult onNeuron;
        GenerationResult other;
        try (StableDiffusion sd = StableDiffusion.load(neuron)) {
            assertEquals(Backend.NEURON, sd.info().backend());
            assertEquals("LCM", sd.info().family(), sd.info().familyEvidence());
            assertEquals(List.of("input0", "input1", "input2", "input3"),
                    sd.info().artifacts().get("unet").inputs().stream().map(x -> x.substring(0, x.indexOf(':'))).toList());
            onNeuron = sd.generate(req);
            other = sd.generate(req.toBuilder().guidanceScale(2.0).build());
        }
        assertEquals(4, onNeuron.timings().steps(), "diffusers' LatentConsistencyModelPipeline default steps");
        assertEquals(8.5, onNeuron.request().guidanceScale().getAsDouble());
        assertEquals("LCMScheduler", onNeuron.scheduler());
        GenerationResult onCpu;
        try (StableDiffusion sd = StableDiffusion.load(cpu, LoadOptions.defaults().withThreads(1))) {
            assertEquals(Backend.CPU, sd.info().backend());
            onCpu = sd.generate(req);
        }
        assertArrayEquals(onCpu.latents(), onNeuron.latents(), "LCM: final latents");
        assertArrayEquals(onCpu.images().get(0).rgb(), onNeuron.images().get(0).rgb(), "LCM: the same image");
        assertFalse(Arrays.equals(onNeuron.latents(), other.latents()), "the guidance embedding reaches the NEFF");
    }
}
