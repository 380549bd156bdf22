package dev.sdjvm;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.sdjvm.errors.InvalidRequestException;
import dev.sdjvm.errors.ModelLoadException;
import dev.sdjvm.image.RgbImage;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * Families as the facade shows and enforces them: the fixtures' families and defaults ({@link ModelInfo}), SDXL and
 * unknown models refused at load naming why (while {@code inspect} still tells what they are), guidance_rescale
 * checked, and what an LCM model refuses.
 */
class ModelFamiliesTest {
    private static final ObjectMapper JSON = new ObjectMapper();

    @ParameterizedTest
    @CsvSource({
        "tiny-sd21-fp32, SD2, DPMSolverMultistepScheduler, 64",
        "tiny-sd15-fp32, SD1, DPMSolverMultistepScheduler, 64",
        "tiny-sd2v-fp32, SD2_V, DPMSolverMultistepScheduler, 96",
        "tiny-lcm-fp32, LCM, config, 64",
        "tiny-turbo-fp32, TURBO, config, 64",
    })
    void fixturesFamilies(String model, String family, String scheduler, int size) {
        ModelInfo info = StableDiffusion.inspect(TestModels.resource("models/" + model));
        assertEquals(family, info.family(), info.familyEvidence());
        assertEquals(scheduler, info.defaultScheduler());
        assertNull(info.familyProblem());
        assertEquals(size, info.height(), "default size = unet sample_size x VAE scale");
        assertEquals(size, info.width());
    }

    private static Path withModelIndexClass(Path tmp, String cls) throws Exception {
        Path dir = TestModels.copy(TestModels.resource("models/tiny-sd21-fp32"), tmp.resolve("m"));
        ObjectNode idx = (ObjectNode) JSON.readTree(dir.resolve("model_index.json").toFile());
        idx.put("_class_name", cls);
        Files.writeString(dir.resolve("model_index.json"), idx.toString());
        return dir;
    }

    /** The tasks each fixture runs, from its family and its files (no load needed). */
    @Test
    void tasksFollowTheFamilyAndTheVaeEncoder() {
        List<String> all = List.of("text-to-image", "image-to-image", "inpainting");
        assertEquals(all, StableDiffusion.inspect(TestModels.resource("models/tiny-sd21-fp32")).tasks(), "encoder");
        assertEquals(all, StableDiffusion.inspect(TestModels.resource("models/tiny-sdxl-fp32")).tasks(), "SDXL");
        assertEquals(List.of("inpainting"),
                StableDiffusion.inspect(TestModels.resource("models/tiny-sd21-inpaint-fp32")).tasks(), "9-channel UNet");
        ModelInfo xl9 = StableDiffusion.inspect(TestModels.resource("models/tiny-sdxl-inpaint-fp32"));
        assertEquals("SDXL", xl9.family(), "model_index.json StableDiffusionXLInpaintPipeline is an SDXL model");
        assertEquals(List.of("inpainting"), xl9.tasks(), "SDXL 9-channel UNet");
        assertEquals(List.of("text-to-image"),
                StableDiffusion.inspect(TestModels.resource("models/tiny-sd15-fp32")).tasks(), "no VAE encoder");
        assertEquals(List.of("text-to-image", "image-to-image"),
                StableDiffusion.inspect(TestModels.resource("models/tiny-lcm-fp32")).tasks(), "LCM: no inpainting");
    }

    @Test
    void anSdxlClaimWithoutSdxlPartsIsRefusedNamingThem(@TempDir Path tmp) throws Exception {
        // an SD 2.1 model whose model_index.json says StableDiffusionXLPipeline: no text_encoder_2, no tokenizer_2
        Path dir = withModelIndexClass(tmp, "StableDiffusionXLPipeline");
        for (org.junit.jupiter.api.function.Executable open : List.<org.junit.jupiter.api.function.Executable>of(
                () -> StableDiffusion.inspect(dir), () -> StableDiffusion.load(dir))) {
            ModelLoadException e = assertThrows(ModelLoadException.class, open);
            assertTrue(e.getMessage().contains("text_encoder_2") && e.getMessage().contains("SDXL"), e.getMessage());
        }
    }

    @Test
    void unknownPipelineIsRefusedNamingIt(@TempDir Path tmp) throws Exception {
        Path dir = withModelIndexClass(tmp, "StableDiffusionUpscalePipeline");
        assertEquals("UNKNOWN", StableDiffusion.inspect(dir).family());
        ModelLoadException e = assertThrows(ModelLoadException.class, () -> StableDiffusion.load(dir));
        assertTrue(e.getMessage().contains("StableDiffusionUpscalePipeline"), e.getMessage());
    }

    @Test
    void guidanceRescaleIsChecked() {
        for (double bad : new double[] {-0.1, 1.01, Double.NaN, Double.POSITIVE_INFINITY}) {
            InvalidRequestException e = assertThrows(InvalidRequestException.class,
                    () -> GenerationRequest.builder("x").guidanceRescale(bad).build());
            assertEquals("guidance_rescale", e.field());
        }
        assertEquals(0.0, GenerationRequest.of("x").guidanceRescale());
        assertEquals(0.7, GenerationRequest.builder("x").guidanceRescale(0.7).build().toBuilder().build()
                .guidanceRescale());
    }

    @Test
    void guidanceRescaleChangesTheImageOnlyUnderGuidance() {
        try (StableDiffusion sd = StableDiffusion.load(TestModels.resource("models/tiny-sd15-fp32"))) {
            GenerationRequest.Builder b = GenerationRequest.builder("a red circle").steps(4).seed(3L);
            float[] plain = sd.generate(b.guidanceScale(7.5).build()).latents();
            float[] rescaled = sd.generate(b.guidanceScale(7.5).guidanceRescale(0.7).build()).latents();
            assertNotEquals(plain[0], rescaled[0]);
            // without classifier-free guidance diffusers skips rescale_noise_cfg
            float[] noCfg = sd.generate(b.guidanceScale(1.0).guidanceRescale(0.0).build()).latents();
            float[] noCfgRescale = sd.generate(b.guidanceScale(1.0).guidanceRescale(0.7).build()).latents();
            assertEquals(noCfg[0], noCfgRescale[0]);
        }
    }

    @Test
    void lcmRefusals() {
        try (StableDiffusion sd = StableDiffusion.load(TestModels.resource("models/tiny-lcm-fp32"))) {
            GenerationRequest.Builder b = GenerationRequest.builder("a red circle").steps(2).seed(1L);
            InvalidRequestException e = assertThrows(InvalidRequestException.class,
                    () -> sd.generate(b.scheduler("euler").build()));
            assertEquals("scheduler", e.field());
            e = assertThrows(InvalidRequestException.class,
                    () -> sd.generate(b.scheduler(null).guidanceRescale(0.5).build()));
            assertEquals("guidance_rescale", e.field());
            e = assertThrows(InvalidRequestException.class, () -> sd.generate(b.guidanceRescale(0).steps(51).build()));
            assertEquals("num_inference_steps", e.field());
            RgbImage img = sd.generate(b.steps(2).build()).images().get(0);
            e = assertThrows(InvalidRequestException.class, () -> sd.generate(b.initImage(img).mask(img).build()));
            assertEquals("mask_image", e.field(), "no LCM inpainting");
            // image-to-image runs; a strength whose shortened origin schedule is shorter than the steps is refused
            assertEquals("LCMScheduler", sd.generate(b.mask((RgbImage) null).build()).scheduler());
            e = assertThrows(InvalidRequestException.class, () -> sd.generate(b.steps(4).strength(0.05).build()));
            assertEquals("num_inference_steps", e.field());
            assertEquals("LCMScheduler", sd.generate(b.initImage((RgbImage) null).strength((Double) null).build()).scheduler());
        }
    }
}
