package dev.sdjvm.backend.neuron;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.sdjvm.Backend;
import dev.sdjvm.GenerationRequest;
import dev.sdjvm.GenerationResult;
import dev.sdjvm.LoadOptions;
import dev.sdjvm.StableDiffusion;
import dev.sdjvm.TestModels;
import dev.sdjvm.errors.InvalidRequestException;
import dev.sdjvm.errors.ModelLoadException;
import dev.sdjvm.image.ImageInputs;
import dev.sdjvm.image.RgbImage;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.Arrays;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * SDXL on the NEFF path, on the simulated runtime: both text encoders and the five-input UNet run as NEFFs from AWS's
 * SDXL sample layout ({@code <part>/model.pt}, models/sim-sdxl-neuron) and give, bit for bit, what the CPU path gives
 * for TorchScript twins of the same functions in {@code compiled_models/} (models/sim-sdxl-cpu); both fixtures from
 * tools/reference/make_sim_sdxl_model.py.
 */
class SdxlNeffPipelineTest {
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

    /** A copy of a fixture with the embedded model's vocabulary in tokenizer/ and tokenizer_2/ (their own pads kept). */
    static Path model(String fixture, Path dir) throws IOException {
        TestModels.copy(TestModels.resource("models/" + fixture), dir);
        Path vocab = TestModels.resource("dev/sdjvm/default-model/tokenizer");
        for (String sub : new String[] {"tokenizer", "tokenizer_2"}) {
            for (String f : new String[] {"vocab.json", "merges.txt", "tokenizer_config.json"}) {
                Files.copy(vocab.resolve(f), dir.resolve(sub).resolve(f), StandardCopyOption.REPLACE_EXISTING);
            }
        }
        return dir;
    }

    private static GenerationResult generate(Path dir, LoadOptions o, GenerationRequest r) {
        try (StableDiffusion sd = StableDiffusion.load(dir, o)) {
            return sd.generate(r);
        }
    }

    @Test
    void neffPathEqualsTheCpuPathOnTwinArtifacts() throws Exception {
        Path neuron = model("sim-sdxl-neuron", tmp.resolve("neuron"));
        Path cpu = model("sim-sdxl-cpu", tmp.resolve("cpu"));
        try (StableDiffusion sd = StableDiffusion.load(neuron)) {
            assertEquals(Backend.NEURON, sd.info().backend());
            assertTrue(sd.info().artifacts().containsKey("text_encoder_2"), sd.info().artifacts().keySet().toString());
        }
        GenerationRequest.Builder[] reqs = {
            // no negative prompt: zeros (force_zeros_for_empty_prompt); a negative prompt; no guidance
            GenerationRequest.builder("a red circle on a blue background").steps(6).guidanceScale(5).seed(42L),
            GenerationRequest.builder("a red circle").negativePrompt("green").steps(6).guidanceScale(5).seed(7L),
            GenerationRequest.builder("a red circle").steps(4).guidanceScale(1).seed(3L),
        };
        byte[] previous = null;
        for (GenerationRequest.Builder b : reqs) {
            GenerationResult onNeuron = generate(neuron, LoadOptions.defaults(), b.build());
            GenerationResult onCpu = generate(cpu, LoadOptions.defaults().withThreads(1), b.build());
            assertEquals("EulerDiscreteScheduler", onNeuron.scheduler(), "the model's own scheduler by default");
            assertArrayEquals(onCpu.latents(), onNeuron.latents(), "final latents bit for bit");
            byte[] rgb = onNeuron.images().get(0).rgb();
            assertArrayEquals(onCpu.images().get(0).rgb(), rgb, "the same image");
            int distinct = 0;
            for (byte v : rgb) {
                distinct |= 1 << ((v & 0xff) >> 5);
            }
            assertTrue(Integer.bitCount(distinct) >= 3, "the image is not flat: the comparison means something");
            assertFalse(previous != null && Arrays.equals(previous, rgb), "the requests make different images");
            previous = rgb;
        }
        var s = NrtSim.stats();
        assertEquals(0, s.get("live_models"), "every model unloaded at close");
        assertEquals(0, s.get("live_tensors"));
    }

    /**
     * SDXL image-to-image and inpainting on the NEFF path: the VAE encoder NEFF ({@code vae_encoder/model.pt}) and the
     * five-input UNet give the CPU twins' latents bit for bit, at the SDXL pipelines' default strengths (0.3, 0.9999).
     */
    @Test
    void imageTasksOnTheNeffPathEqualTheCpuPath() throws Exception {
        Path neuron = model("sim-sdxl-neuron", tmp.resolve("neuron-img"));
        Path cpu = model("sim-sdxl-cpu", tmp.resolve("cpu-img"));
        Path inputs = TestModels.resource("reference/tasks/inputs");
        RgbImage start = ImageInputs.decode(Files.readAllBytes(inputs.resolve("start_64.png")));
        RgbImage mask = ImageInputs.decode(Files.readAllBytes(inputs.resolve("mask_64.png")));
        GenerationRequest[] reqs = {
            GenerationRequest.builder("a red circle").initImage(start).steps(10).guidanceScale(5).seed(42L).build(),
            GenerationRequest.builder("a red circle").initImage(start).mask(mask).steps(6).guidanceScale(5).seed(7L)
                    .build(),
        };
        int[] steps = {3, 5};  // int(10 x 0.3), int(6 x 0.9999)
        for (int i = 0; i < reqs.length; i++) {
            GenerationResult onNeuron = generate(neuron, LoadOptions.defaults(), reqs[i]);
            GenerationResult onCpu = generate(cpu, LoadOptions.defaults().withThreads(1), reqs[i]);
            assertEquals(steps[i], onNeuron.timings().steps(), "the SDXL pipeline's default strength");
            assertArrayEquals(onCpu.latents(), onNeuron.latents(), "final latents bit for bit");
            assertArrayEquals(onCpu.images().get(0).rgb(), onNeuron.images().get(0).rgb(), "the same image");
        }
    }

    @Test
    void twoReplicasGiveTheSameImage() throws Exception {
        Path neuron = model("sim-sdxl-neuron", tmp.resolve("neuron"));
        GenerationRequest r = GenerationRequest.builder("a lighthouse").steps(4).guidanceScale(6).seed(5L).build();
        GenerationResult one = generate(neuron, LoadOptions.defaults(), r);
        GenerationResult two = generate(neuron, LoadOptions.defaults().withUnetReplicas(2), r);
        assertArrayEquals(one.latents(), two.latents(), "uncond and cond halves on two cores");
    }

    @Test
    void compiledSizeOnly() throws Exception {
        Path neuron = model("sim-sdxl-neuron", tmp.resolve("neuron"));
        try (StableDiffusion sd = StableDiffusion.load(neuron)) {
            InvalidRequestException e = assertThrows(InvalidRequestException.class, () -> sd.generate(
                    GenerationRequest.builder("x").width(128).height(64).steps(2).build()));
            assertTrue(e.getMessage().contains("compiled for 64x64"), e.getMessage());
        }
    }

    @Test
    void aUnetWithoutTheSdxlInputsFailsTheLoad() throws Exception {
        Path neuron = model("sim-sdxl-neuron", tmp.resolve("neuron"));
        // an SD 2.x NEFF UNet (3 inputs, bf16) in an SDXL directory
        Files.copy(TestModels.resource("models/sim-neuron/compiled_models/unet.pt"), neuron.resolve("unet/model.pt"),
                StandardCopyOption.REPLACE_EXISTING);
        ModelLoadException e = assertThrows(ModelLoadException.class, () -> StableDiffusion.load(neuron).close());
        assertTrue(e.getMessage().contains("unet"), e.getMessage());
    }
}
