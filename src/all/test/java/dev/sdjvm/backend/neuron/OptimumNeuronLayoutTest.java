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
import dev.sdjvm.ModelInfo;
import dev.sdjvm.StableDiffusion;
import dev.sdjvm.errors.BackendException;
import dev.sdjvm.errors.ModelLoadException;
import dev.sdjvm.model.ArtifactRole;
import dev.sdjvm.model.ModelDirectory;
import dev.sdjvm.model.ModelLayout;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * optimum-neuron's export layout ({@link SimModels#optimumNeuron}) on the simulated runtime: read unmodified, its
 * decoder (post_quant_conv inside) run alone, and the same images as AWS's layout of the same functions, bit for bit;
 * a weight-separated export is refused at load with the re-export command.
 */
class OptimumNeuronLayoutTest {
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

    private static GenerationRequest.Builder req() {
        return GenerationRequest.builder("a red circle on a blue background").negativePrompt("green")
                .steps(8).guidanceScale(5).seed(42L);
    }

    @Test
    void theDirectoryIsReadAsOptimumNeuronsLayout() throws Exception {
        Path dir = SimModels.optimumNeuron(tmp.resolve("optimum"), true);
        ModelDirectory m = ModelDirectory.open(dir);
        assertEquals(ModelLayout.OPTIMUM_NEURON, m.layout());
        assertTrue(m.decoderIncludesPostQuantConv());
        assertFalse(m.has(ArtifactRole.VAE_POST_QUANT_CONV));
        assertEquals(dir.resolve("unet/model.neuron"), m.artifact(ArtifactRole.UNET));
        assertEquals(dir.resolve("vae_decoder/model.neuron"), m.artifact(ArtifactRole.VAE_DECODER));
        assertEquals(dir.resolve("vae_encoder/model.neuron"), m.artifact(ArtifactRole.VAE_ENCODER));
        assertEquals(8, m.latentHeight(), "the compiled latent size (neuron.static_height), not sample_size 96");
        assertEquals(64, m.height());
        assertEquals(0.18215, m.scalingFactor(), "vae_decoder/config.json");
        ModelInfo info = StableDiffusion.inspect(dir);
        assertEquals(ModelInfo.LAYOUT_OPTIMUM, info.layout());
        assertEquals(Backend.NEURON, info.backend());
        assertTrue(info.artifacts().get("unet").neff().contains("inside model.neuron"), info.artifacts().get("unet").neff());
        assertEquals(ModelInfo.LAYOUT_AWS, StableDiffusion.inspect(NrtSim.model("sim-neuron", tmp.resolve("aws"))).layout());
    }

    @Test
    void generatesTheImagesOfAwsLayoutBitForBit() throws Exception {
        Path optimum = SimModels.optimumNeuron(tmp.resolve("optimum"), true);
        Path aws = NrtSim.model("sim-neuron", tmp.resolve("aws"));
        byte[] px = new byte[64 * 64 * 3];
        byte[] mk = new byte[64 * 64 * 3];
        for (int i = 0; i < px.length; i++) {
            px[i] = (byte) (i * 7 % 251);
            mk[i] = (byte) ((i / 3) % 64 < 32 ? 255 : 0);
        }
        dev.sdjvm.image.RgbImage image = new dev.sdjvm.image.RgbImage(64, 64, px);
        GenerationRequest[] requests = {req().build(), req().initImage(image).strength(0.6).build(),
            req().initImage(image).mask(new dev.sdjvm.image.RgbImage(64, 64, mk)).strength(0.75).build()};
        GenerationResult[] onOptimum = new GenerationResult[requests.length];
        try (StableDiffusion sd = StableDiffusion.load(optimum)) {
            assertEquals(Backend.NEURON, sd.info().backend());
            assertEquals(ModelInfo.LAYOUT_OPTIMUM, sd.info().layout());
            assertFalse(sd.info().artifacts().containsKey("vae_post_quant_conv"));
            for (int i = 0; i < requests.length; i++) {
                onOptimum[i] = sd.generate(requests[i]);
            }
        }
        assertEquals(0, NrtSim.stats().get("live_models"));
        try (StableDiffusion sd = StableDiffusion.load(aws)) {
            assertEquals(ModelInfo.LAYOUT_AWS, sd.info().layout());
            for (int i = 0; i < requests.length; i++) {
                GenerationResult r = sd.generate(requests[i]);
                assertArrayEquals(r.latents(), onOptimum[i].latents(), "request " + i + ": latents");
                assertArrayEquals(r.images().get(0).rgb(), onOptimum[i].images().get(0).rgb(), "request " + i + ": image");
            }
        }
    }

    /** The decoder really runs post_quant_conv: a plain decoder program in its place gives another image. */
    @Test
    void theDecoderIsUsedWithoutASeparatePostQuantConv() throws Exception {
        Path optimum = SimModels.optimumNeuron(tmp.resolve("optimum"), true);
        GenerationResult with;
        try (StableDiffusion sd = StableDiffusion.load(optimum)) {
            with = sd.generate(req().build());
        }
        byte[] plain = NeffFiles.neffWithProgram("vae_decoder",
                "nrtsim 1\nfn vae_decoder\nin input0 float32 1 4 8 8\nout output0 float32 1 3 64 64\n");
        NeffFiles.zip(optimum.resolve("vae_decoder/model.neuron"), java.util.Map.of("model/constants/0", plain), false);
        try (StableDiffusion sd = StableDiffusion.load(optimum)) {
            GenerationResult without = sd.generate(req().build());
            assertArrayEquals(with.latents(), without.latents(), "the denoising is the same");
            assertFalse(java.util.Arrays.equals(with.images().get(0).rgb(), without.images().get(0).rgb()),
                    "the decode differs by post_quant_conv");
        }
    }

    @Test
    void aWeightSeparatedExportIsRefusedWithTheReexportCommand() throws Exception {
        Path dir = SimModels.optimumNeuron(tmp.resolve("separated"), false);
        ModelLoadException e = assertThrows(ModelLoadException.class, () -> StableDiffusion.load(dir));
        assertTrue(e.getMessage().contains("--inline-weights-neff") && e.getMessage().contains("inline_weights_to_neff")
                && e.getMessage().contains("text_encoder"), e.getMessage());
        assertThrows(ModelLoadException.class, () -> StableDiffusion.inspect(dir));
        assertEquals(0, NrtSim.stats().get("loads"), "refused before any NEFF is loaded");
    }

    @Test
    void missingPartsAndTheCpuBackendAreRefusedByName() throws Exception {
        Path dir = SimModels.optimumNeuron(tmp.resolve("optimum"), true);
        BackendException cpu = assertThrows(BackendException.class,
                () -> StableDiffusion.load(dir, LoadOptions.defaults().withBackend(Backend.CPU)));
        assertTrue(cpu.getMessage().contains("compiled for Neuron"), cpu.getMessage());
        Files.delete(dir.resolve("vae_encoder/model.neuron"));
        assertFalse(ModelDirectory.open(dir).has(ArtifactRole.VAE_ENCODER), "the encoder is optional");
        try (StableDiffusion sd = StableDiffusion.load(dir)) {
            assertEquals(64 * 64 * 3, sd.generate(req().steps(2).build()).images().get(0).rgb().length);
            dev.sdjvm.errors.InvalidRequestException noEncoder = assertThrows(dev.sdjvm.errors.InvalidRequestException.class,
                    () -> sd.generate(req().initImage(new dev.sdjvm.image.RgbImage(64, 64, new byte[64 * 64 * 3])).build()));
            assertTrue(noEncoder.getMessage().contains("vae_encoder/model.neuron"), noEncoder.getMessage());
        }
        Files.delete(dir.resolve("vae_decoder/model.neuron"));
        ModelLoadException e = assertThrows(ModelLoadException.class, () -> ModelDirectory.open(dir));
        assertTrue(e.getMessage().contains("vae_decoder") && e.getMessage().contains("model.neuron"), e.getMessage());
    }

    /** The sim-model tool's {@code --layout optimum} output (real torch.jit.save archives) loads and generates alike. */
    @Test
    void theSimModelToolsOptimumLayoutGenerates() throws Exception {
        String py = NeuronToolsTest.python("/usr/bin/python3", true);
        org.junit.jupiter.api.Assumptions.assumeTrue(py != null, "/usr/bin/python3 with torch not available");
        Path out = tmp.resolve("tool-optimum");
        NeuronToolsTest.Result r = NeuronToolsTest.run(java.util.List.of(py, "../../tools/reference/make_sim_model.py", "--out",
                out.toString(), "--geometry", "tiny", "--kind", "neuron", "--layout", "optimum"));
        assertEquals(0, r.exit(), r.output());
        dev.sdjvm.TestModels.copy(dev.sdjvm.TestModels.resource("dev/sdjvm/default-model/tokenizer"), out.resolve("tokenizer"));
        GenerationResult fromTool;
        try (StableDiffusion sd = StableDiffusion.load(out)) {
            assertEquals(ModelInfo.LAYOUT_OPTIMUM, sd.info().layout());
            fromTool = sd.generate(req().build());
        }
        try (StableDiffusion sd = StableDiffusion.load(NrtSim.model("sim-neuron", tmp.resolve("aws")))) {
            GenerationResult aws = sd.generate(req().build());
            assertArrayEquals(aws.latents(), fromTool.latents());
            assertArrayEquals(aws.images().get(0).rgb(), fromTool.images().get(0).rgb());
        }
    }

    /**
     * A NEFF that takes its weights as extra inputs, in a directory that does not say so (no inline_weights_to_neff
     * in its config): refused when the NEFF's inputs are seen, before anything runs. The simulator's echo program
     * stands in for such a text encoder (ids + one weight tensor).
     */
    @Test
    void aNeffWithWeightInputsIsRefusedAtLoad() throws Exception {
        Path dir = SimModels.optimumNeuron(tmp.resolve("optimum"), true);
        Path config = dir.resolve("text_encoder/config.json");
        var json = new com.fasterxml.jackson.databind.ObjectMapper();
        var c = (com.fasterxml.jackson.databind.node.ObjectNode) json.readTree(config.toFile());
        ((com.fasterxml.jackson.databind.node.ObjectNode) c.get("neuron")).remove("inline_weights_to_neff");
        json.writeValue(config.toFile(), c);
        byte[] neff = NeffFiles.neffWithProgram("text_encoder", "nrtsim 1\nfn echo\nin input0 int64 1 77\n"
                + "in input1 bfloat16 16 16\nout output0 int64 1 77\nout output1 bfloat16 16 16\n");
        NeffFiles.zip(dir.resolve("text_encoder/model.neuron"), java.util.Map.of("model/constants/0", neff), false);
        ModelLoadException e = assertThrows(ModelLoadException.class, () -> StableDiffusion.load(dir));
        assertTrue(e.getMessage().contains("2 inputs") && e.getMessage().contains("--inline-weights-neff"),
                e.getMessage());
        assertEquals(0, NrtSim.stats().get("executes"), "nothing ran");
        assertEquals(0, NrtSim.stats().get("live_models"), "what was loaded is unloaded");
    }
}
