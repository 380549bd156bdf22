package dev.sdjvm;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.sdjvm.errors.InvalidRequestException;
import dev.sdjvm.errors.ModelLoadException;
import dev.sdjvm.image.RgbImage;
import dev.sdjvm.model.ModelDirectory;
import dev.sdjvm.model.SdxlConfig;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * An SDXL model directory as diffusers and AWS's sample lay it out: detection, both artifact layouts, and a clear
 * error for each part that is missing or does not fit (models/tiny-sdxl-fp32 and broken copies of it).
 */
class SdxlModelTest {
    private static final Path TINY = TestModels.resource("models/tiny-sdxl-fp32");
    private static final List<String> PARTS = List.of("text_encoder", "text_encoder_2", "unet", "vae_decoder",
            "vae_post_quant_conv");
    private static final ObjectMapper JSON = new ObjectMapper();

    @TempDir
    Path tmp;

    private static LoadOptions fast() {
        return LoadOptions.defaults().withOptimize(false).withThreads(1);
    }

    private static GenerationRequest req() {
        return GenerationRequest.builder("a lighthouse").steps(3).guidanceScale(5).seed(9L).build();
    }

    @Test
    void detectsSdxlFromModelIndex() {
        ModelDirectory dir = ModelDirectory.open(TINY);
        SdxlConfig c = SdxlConfig.detect(dir).orElseThrow();
        assertTrue(c.forceZerosForEmptyPrompt());
        assertTrue(c.forceUpcast());
        assertEquals(6, c.textEmbedsDim());
        assertEquals(20, c.crossAttentionDim());
        assertEquals(0.13025, dir.scalingFactor());
        assertEquals(64, dir.height(), "default size: unet sample_size x VAE scale");
        assertTrue(dir.artifact(dev.sdjvm.model.ArtifactRole.UNET).endsWith(Path.of("unet", "model.pt")),
                "AWS's sample layout");
        assertTrue(SdxlConfig.detect(ModelDirectory.open(TestModels.resource("models/tiny-sd21-fp32"))).isEmpty());
    }

    @Test
    void sdxlTurbosTrailingEulerConfigGetsTheFewStepDefaults() throws Exception {
        ModelInfo base = StableDiffusion.inspect(TINY);
        assertEquals(50, base.defaultSteps());
        assertEquals(5.0, base.defaultGuidanceScale(), "StableDiffusionXLPipeline's guidance_scale default");
        // stabilityai/sdxl-turbo's published scheduler: Euler ancestral, trailing
        Path turbo = TestModels.copy(TINY, tmp.resolve("turbo"));
        edit(turbo.resolve("scheduler/scheduler_config.json"), n -> n.put("_class_name",
                "EulerAncestralDiscreteScheduler").put("timestep_spacing", "trailing"));
        ModelInfo t = StableDiffusion.inspect(turbo);
        assertEquals("SDXL", t.family());
        assertEquals(1, t.defaultSteps());
        assertEquals(0.0, t.defaultGuidanceScale());
        // the same scheduler with leading spacing is an ordinary SDXL model
        edit(turbo.resolve("scheduler/scheduler_config.json"), n -> n.put("timestep_spacing", "leading"));
        assertEquals(50, StableDiffusion.inspect(turbo).defaultSteps());
    }

    @Test
    void compiledModelsLayoutGivesTheSameImage() throws Exception {
        Path copy = TestModels.copy(TINY, tmp.resolve("compiled"));
        Files.createDirectories(copy.resolve("compiled_models"));
        for (String p : PARTS) {
            Files.move(copy.resolve(p).resolve("model.pt"), copy.resolve("compiled_models").resolve(p + ".pt"));
        }
        GenerationResult a;
        GenerationResult b;
        try (StableDiffusion sd = StableDiffusion.load(TINY, fast())) {
            a = sd.generate(req());
            assertEquals("EulerDiscreteScheduler", a.scheduler(), "the model's own scheduler by default");
        }
        try (StableDiffusion sd = StableDiffusion.load(copy, fast())) {
            assertTrue(sd.info().artifacts().get("text_encoder_2").file().endsWith(
                    Path.of("compiled_models", "text_encoder_2.pt")));
            b = sd.generate(req());
        }
        assertArrayEquals(a.latents(), b.latents());
    }

    @Test
    void missingOrMisfitPartsFailTheLoadNamingThem() throws Exception {
        Path noTe2 = TestModels.copy(TINY, tmp.resolve("no-te2"));
        Files.delete(noTe2.resolve("text_encoder_2/model.pt"));
        ModelLoadException e = assertThrows(ModelLoadException.class, () -> ModelDirectory.open(noTe2));
        assertTrue(e.getMessage().contains("text_encoder_2 artifact not found"), e.getMessage());

        Path noTok2 = TestModels.copy(TINY, tmp.resolve("no-tok2"));
        Files.delete(noTok2.resolve("tokenizer_2/merges.txt"));
        e = assertThrows(ModelLoadException.class, () -> ModelDirectory.open(noTok2));
        assertTrue(e.getMessage().contains("tokenizer_2") && e.getMessage().contains("merges.txt"), e.getMessage());

        Path dims = TestModels.copy(TINY, tmp.resolve("dims"));
        edit(dims.resolve("text_encoder_2/config.json"), n -> n.put("projection_dim", 7));
        e = assertThrows(ModelLoadException.class, () -> ModelDirectory.open(dims));
        assertTrue(e.getMessage().contains("projection_class_embeddings_input_dim"), e.getMessage());

        Path notSdxl = TestModels.copy(TINY, tmp.resolve("not-sdxl"));
        edit(notSdxl.resolve("model_index.json"), n -> n.put("_class_name", "StableDiffusionPipeline"));
        e = assertThrows(ModelLoadException.class, () -> ModelDirectory.open(notSdxl));
        assertTrue(e.getMessage().contains("text_time is SDXL's UNet"), e.getMessage());

        // an SD 2.x model with a stray second text encoder
        Path stray = TestModels.copy(TestModels.resource("models/tiny-sd21-fp32"), tmp.resolve("stray"));
        Files.copy(TINY.resolve("text_encoder_2/model.pt"), stray.resolve("compiled_models/text_encoder_2.pt"));
        e = assertThrows(ModelLoadException.class, () -> ModelDirectory.open(stray));
        assertTrue(e.getMessage().contains("a second text encoder is SDXL's"), e.getMessage());

        Path mean = TestModels.copy(TINY, tmp.resolve("latents-mean"));
        edit(mean.resolve("vae/config.json"), n -> n.putArray("latents_mean").add(0).add(0).add(0).add(0));
        e = assertThrows(ModelLoadException.class, () -> ModelDirectory.open(mean));
        assertTrue(e.getMessage().contains("latents_mean"), e.getMessage());

        // the SDXL refiner (aesthetic-score time ids, only text_encoder_2) is named and refused
        Path refiner = TestModels.copy(TINY, tmp.resolve("refiner"));
        edit(refiner.resolve("model_index.json"), n -> n.put("_class_name", "StableDiffusionXLImg2ImgPipeline")
                .put("requires_aesthetics_score", true));
        e = assertThrows(ModelLoadException.class, () -> ModelDirectory.open(refiner));
        assertTrue(e.getMessage().contains("SDXL refiner"), e.getMessage());

        // LCM-SDXL: diffusers' SDXL pipeline would feed the guidance embedding, which no SDXL wrapper traces
        Path lcm = TestModels.copy(TINY, tmp.resolve("lcm-sdxl"));
        edit(lcm.resolve("unet/config.json"), n -> n.put("time_cond_proj_dim", 256));
        e = assertThrows(ModelLoadException.class, () -> ModelDirectory.open(lcm));
        assertTrue(e.getMessage().contains("time_cond_proj_dim 256 (LCM-SDXL)"), e.getMessage());

        // the encoders swapped: text_encoder_2 must be CLIPTextModelWithProjection (text_embeds first)
        Path swapped = TestModels.copy(TINY, tmp.resolve("swapped"));
        Files.copy(TINY.resolve("text_encoder/model.pt"), swapped.resolve("text_encoder_2/model.pt"),
                java.nio.file.StandardCopyOption.REPLACE_EXISTING);
        e = assertThrows(ModelLoadException.class, () -> StableDiffusion.load(swapped, fast()).close());
        assertTrue(e.getMessage().contains("CLIPTextModelWithProjection"), e.getMessage());
    }

    @Test
    void imageTasksRunAtSdxlDefaultsAndNeedTheEncoder() throws Exception {
        RgbImage img = new RgbImage(64, 64, new byte[64 * 64 * 3]);
        try (StableDiffusion sd = StableDiffusion.load(TINY, fast())) {
            // inpainting: StableDiffusionXLInpaintPipeline's default strength, 0.9999: int(10 x 0.9999) = 9 steps
            GenerationResult in = sd.generate(GenerationRequest.builder("x").initImage(img).mask(img).steps(10)
                    .seed(1L).build());
            assertEquals(0.9999, in.request().strength());
            assertEquals(9, in.timings().steps());
            // image-to-image runs, at the SDXL pipeline's default strength
            GenerationResult r = sd.generate(GenerationRequest.builder("x").initImage(img).steps(10).seed(1L).build());
            assertEquals(0.3, r.request().strength(), "StableDiffusionXLImg2ImgPipeline's default strength");
            assertEquals(3, r.timings().steps(), "int(10 x 0.3) steps");
        }
        Path noEncoder = TestModels.copy(TINY, tmp.resolve("no-encoder"));
        Files.delete(noEncoder.resolve("vae_encoder/model.pt"));
        try (StableDiffusion sd = StableDiffusion.load(noEncoder, fast())) {
            InvalidRequestException e = assertThrows(InvalidRequestException.class, () -> sd.generate(
                    GenerationRequest.builder("x").initImage(img).steps(2).build()));
            assertEquals("image", e.field());
            assertTrue(e.getMessage().contains("vae_encoder"), e.getMessage());
        }
        InvalidRequestException e = assertThrows(InvalidRequestException.class,
                () -> GenerationRequest.builder("x").guidanceRescale(1.5).build());
        assertEquals("guidance_rescale", e.field());
    }

    private static void edit(Path json, java.util.function.Consumer<ObjectNode> change) throws Exception {
        ObjectNode n = (ObjectNode) JSON.readTree(json.toFile());
        change.accept(n);
        Files.writeString(json, n.toString());
    }
}
