package dev.sdjvm.pipeline;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.sdjvm.GenerationRequest;
import dev.sdjvm.ModelInfo;
import dev.sdjvm.StableDiffusion;
import dev.sdjvm.TestModels;
import dev.sdjvm.backend.ArtifactBackend;
import dev.sdjvm.backend.neuron.NrtSim;
import dev.sdjvm.errors.InvalidRequestException;
import dev.sdjvm.errors.ModelLoadException;
import dev.sdjvm.model.ArtifactRole;
import dev.sdjvm.model.ModelDirectory;
import dev.sdjvm.tokenizer.ClipTokenizer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The optional VAE encoder (role {@code vae_encoder}): loaded when the model has one, on the CPU and on the NEFF path
 * (beside the decoder), run by the {@link DiffusionStages#encodeImage} stage with the same moments on both; its output
 * found as a dict key, a bare tensor or a 1-tuple; a model without one loads, generates, and names the file when a task
 * asks for it. The sim fixtures' encoder computes a closed form (tools/reference/make_sim_model.py,
 * native/README.md): {@code m[b,k,y,x] = img[b,k%3,8y,8x]*0.5 + img[b,(k+1)%3,8y+7,8x+7]*0.25}, float32.
 */
class VaeEncoderTest {
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

    /** Loaded components and the backend they run on, closed together. */
    private record Loaded(PipelineComponents components, ArtifactBackend backend) implements AutoCloseable {
        float[] encode(float[] pixels, int n) {
            return new TextToImagePipeline(components).encodeImage(pixels, n, 64, 64);
        }

        @Override
        public void close() {
            components.close();
            backend.close();
        }
    }

    private static Loaded load(Path dir, BackendSelection.Kind kind, int replicas) {
        ModelDirectory d = ModelDirectory.open(dir);
        ArtifactBackend backend = BackendSelection.open(d, BackendSelection.plan(d, kind),
                new BackendSelection.Options(1, true, false, null, false, false, false, true));
        try {
            return new Loaded(PipelineComponents.load(d, ClipTokenizer.load(d.tokenizerDir()), backend, 0, replicas,
                    true), backend);
        } catch (RuntimeException e) {
            backend.close();
            throw e;
        }
    }

    /** n images [3,64,64] with values in [-1,1] that differ per image, channel and pixel. */
    private static float[] images(int n) {
        float[] x = new float[n * 3 * 64 * 64];
        for (int i = 0; i < x.length; i++) {
            x[i] = ((i * 37 + i / 4096 * 11) % 201 - 100) / 100f;
        }
        return x;
    }

    /** The fixtures' closed form, in float32 (multiplications by powers of two are exact: one rounding, the sum). */
    private static float[] expectedMoments(float[] img, int n) {
        float[] m = new float[n * 8 * 8 * 8];
        for (int b = 0; b < n; b++) {
            for (int k = 0; k < 8; k++) {
                for (int y = 0; y < 8; y++) {
                    for (int x = 0; x < 8; x++) {
                        float a = img[((b * 3 + k % 3) * 64 + 8 * y) * 64 + 8 * x] * 0.5f;
                        float c = img[((b * 3 + (k + 1) % 3) * 64 + 8 * y + 7) * 64 + 8 * x + 7] * 0.25f;
                        m[((b * 8 + k) * 8 + y) * 8 + x] = a + c;
                    }
                }
            }
        }
        return m;
    }

    @Test
    void theEncoderRunsOnTheCpuAndOnTheNeffPathWithTheSameMoments() throws Exception {
        float[] img = images(2);
        float[] want = expectedMoments(img, 2);
        try (Loaded cpu = load(NrtSim.model("sim-cpu", tmp.resolve("cpu")), BackendSelection.Kind.AUTO, 1)) {
            assertTrue(cpu.components().artifacts().vaeEncoder().isPresent());
            assertEquals("cpu", cpu.components().specs().get(ArtifactRole.VAE_ENCODER).device());
            assertArrayEquals(want, cpu.encode(img, 2), "the CPU twin's moments, bit for bit");
        }
        try (Loaded neuron = load(NrtSim.model("sim-neuron", tmp.resolve("neuron")), BackendSelection.Kind.AUTO, 2)) {
            var specs = neuron.components().specs();
            assertEquals("nc1", specs.get(ArtifactRole.VAE_ENCODER).device(), "beside the decoder, on the last core");
            assertEquals(specs.get(ArtifactRole.VAE_DECODER).device(), specs.get(ArtifactRole.VAE_ENCODER).device());
            assertEquals("float32", specs.get(ArtifactRole.VAE_ENCODER).inputDType().manifestName());
            assertEquals("neff", specs.get(ArtifactRole.VAE_ENCODER).source());
            assertArrayEquals(want, neuron.encode(img, 2), "the NEFF's moments, bit for bit");
        }
        assertEquals(0, NrtSim.stats().get("live_models"), "every NEFF unloaded, the encoder's too");
    }

    @Test
    void aBareTensorOrAOneTupleIsTheMomentsToo() throws Exception {
        float[] img = images(1);
        for (String wrapper : new String[] {"tensor", "tuple"}) {
            Path dir = NrtSim.model("sim-cpu", tmp.resolve(wrapper));
            Files.copy(TestModels.resource("models/variants/vae_encoder_" + wrapper + ".pt"),
                    dir.resolve("compiled_models/vae_encoder.pt"), StandardCopyOption.REPLACE_EXISTING);
            try (Loaded cpu = load(dir, BackendSelection.Kind.CPU, 1)) {
                assertArrayEquals(expectedMoments(img, 1), cpu.encode(img, 1), wrapper);
            }
        }
    }

    @Test
    void infoAndInspectListTheEncoderWhenTheModelHasOne() throws Exception {
        Path dir = NrtSim.model("sim-cpu", tmp.resolve("cpu"));
        ModelInfo files = StableDiffusion.inspect(dir);
        assertEquals(java.util.List.of("text_encoder", "unet", "vae_post_quant_conv", "vae_decoder", "vae_encoder"),
                java.util.List.copyOf(files.artifacts().keySet()));
        assertEquals(ModelInfo.DType.FLOAT32, files.artifacts().get("vae_encoder").dtype(), "from the manifest");
        assertEquals(ModelInfo.Source.MANIFEST, files.artifacts().get("vae_encoder").source());
        try (StableDiffusion sd = StableDiffusion.load(dir)) {
            ModelInfo.Artifact enc = sd.info().artifacts().get("vae_encoder");
            assertEquals(dir.resolve("compiled_models/vae_encoder.pt"), enc.file());
            assertEquals("[image:float32[-1, 3, -1, -1]]", enc.inputs().toString());
        }
        Path neuron = NrtSim.model("sim-neuron", tmp.resolve("neuron"));
        assertTrue(StableDiffusion.inspect(neuron).artifacts().get("vae_encoder").neff().contains("vae_encoder.pt"));
    }

    @Test
    void aModelWithoutAnEncoderGeneratesAndATaskThatNeedsOneIsToldWhichFileIsMissing() {
        try (Loaded tiny = load(TestModels.referenceTiny(), BackendSelection.Kind.AUTO, 1)) {
            assertTrue(tiny.components().artifacts().vaeEncoder().isEmpty());
            assertFalse(tiny.components().specs().containsKey(ArtifactRole.VAE_ENCODER));
            InvalidRequestException e = assertThrows(InvalidRequestException.class,
                    () -> new TextToImagePipeline(tiny.components()).encodeImage(new float[3 * 128 * 128], 1, 128, 128));
            assertEquals("image", e.field());
            assertEquals("image: this model has no VAE encoder (compiled_models/vae_encoder.pt): image-to-image and "
                    + "inpainting need it", e.getMessage());
        }
        try (StableDiffusion sd = StableDiffusion.load(TestModels.referenceTiny())) {
            assertFalse(sd.info().artifacts().containsKey("vae_encoder"));
            assertEquals(1, sd.generate(GenerationRequest.builder("a lighthouse").steps(2).seed(1L).build()).images().size());
        }
    }

    @Test
    void anEncoderThatIsMissingOrDoesNotFitFailsTheLoadNamingItsFile() throws Exception {
        // the manifest lists it, the file is gone
        Path listed = NrtSim.model("sim-cpu", tmp.resolve("listed"));
        Files.delete(listed.resolve("compiled_models/vae_encoder.pt"));
        ModelLoadException missing = assertThrows(ModelLoadException.class, () -> ModelDirectory.open(listed));
        assertEquals(listed.resolve("compiled_models/vae_encoder.pt"), missing.file());
        assertTrue(missing.getMessage().contains("the manifest lists it"), missing.getMessage());
        // a module that does not take an image (the decoder in its place) fails the warm-up
        Path wrong = NrtSim.model("sim-cpu", tmp.resolve("wrong"));
        Files.copy(wrong.resolve("compiled_models/vae_decoder.pt"), wrong.resolve("compiled_models/vae_encoder.pt"),
                StandardCopyOption.REPLACE_EXISTING);
        ModelLoadException misfit = assertThrows(ModelLoadException.class,
                () -> load(wrong, BackendSelection.Kind.CPU, 1).close());
        assertEquals(wrong.resolve("compiled_models/vae_encoder.pt"), misfit.file());
        // on the NEFF path: an encoder NEFF for another image size
        Path neuron = NrtSim.model("sim-neuron", tmp.resolve("neuron"));
        byte[] other = dev.sdjvm.backend.neuron.NeffFiles.neffWithProgram("vae_encoder",
                "nrtsim 1\nfn vae_encoder\nin input0 float32 1 3 128 128\nout output0 float32 1 8 16 16\n");
        Files.write(neuron.resolve("compiled_models/vae_encoder.neff"), other);
        Files.delete(neuron.resolve("compiled_models/vae_encoder.pt"));
        Files.copy(TestModels.resource("models/sim-cpu/compiled_models/vae_encoder.pt"),
                neuron.resolve("compiled_models/vae_encoder.pt"));
        ModelLoadException neff = assertThrows(ModelLoadException.class,
                () -> load(neuron, BackendSelection.Kind.AUTO, 1).close());
        assertTrue(neff.getMessage().contains("vae_encoder NEFF does not fit"), neff.getMessage());
        assertEquals(0, NrtSim.stats().get("live_models"), "nothing left loaded");
    }
}
