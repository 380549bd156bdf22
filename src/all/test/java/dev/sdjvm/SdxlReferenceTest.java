package dev.sdjvm;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.sdjvm.image.ImageInputs;
import dev.sdjvm.image.RgbImage;
import dev.sdjvm.pipeline.PipelineTestAccess;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * SDXL text-to-image against diffusers' own {@code StableDiffusionXLPipeline} (torch 1.13, one thread): the cases of
 * reference/sdxl/cases.json, made by tools/reference/make_sdxl_references.py from the tiny SDXL fixture
 * (models/tiny-sdxl-fp32, AWS's SDXL sample layout; tools/model/make_tiny_sd.py --preset sdxl-tiny). They cover the
 * model's own scheduler (Euler, timestep_spacing leading) and DPM-Solver++ from the same config, no negative prompt
 * (zeros under force_zeros_for_empty_prompt) versus an explicit "" (encoded), force_zeros_for_empty_prompt false, a
 * 2:1 image, guidance_rescale, no guidance and two images per prompt. Through the facade, as a user calls it.
 * Tolerances as cases.json's meta: images max |d| &lt;= 2 and mean |d| &lt;= 0.05 levels, final latents max |d| &lt;=
 * 1e-4 x max|ref|, the UNet's conditioning (both encoders' penultimate hidden states side by side, text_embeds) 1e-5
 * x max|ref|, time_ids exact.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class SdxlReferenceTest {
    private static final Path DIR = TestModels.resource("reference/sdxl");
    private static final ObjectMapper JSON = new ObjectMapper();
    private final Map<String, StableDiffusion> models = new HashMap<>();

    @TempDir
    Path tmp;

    /** The fixture, or a copy whose model_index.json sets force_zeros_for_empty_prompt as the case asks. */
    private StableDiffusion model(boolean forceZeros) throws Exception {
        return model("tiny-sdxl-fp32", forceZeros);
    }

    /** The case's fixture (inpainting cases may name tiny-sdxl-inpaint-fp32, a 9-channel UNet). */
    private StableDiffusion model(JsonNode c) throws Exception {
        return model(c.path("model").asText("tiny-sdxl-fp32"), c.get("force_zeros_for_empty_prompt").asBoolean());
    }

    private StableDiffusion model(String fixture, boolean forceZeros) throws Exception {
        String key = fixture + "/" + forceZeros;
        if (!models.containsKey(key)) {
            Path dir = TestModels.resource("models/" + fixture);
            if (!forceZeros) {
                dir = TestModels.copy(dir, tmp.resolve("nozeros"));
                ObjectNode index = (ObjectNode) JSON.readTree(dir.resolve("model_index.json").toFile());
                index.put("force_zeros_for_empty_prompt", false);
                Files.writeString(dir.resolve("model_index.json"), index.toString());
            }
            models.put(key, StableDiffusion.load(dir));
        }
        return models.get(key);
    }

    @AfterAll
    void close() {
        models.values().forEach(StableDiffusion::close);
    }

    static Stream<Arguments> cases() throws Exception {
        JsonNode root = JSON.readTree(DIR.resolve("cases.json").toFile());
        List<Arguments> out = new ArrayList<>();
        root.get("cases").forEach(c -> out.add(Arguments.of(c.get("id").asText(), c)));
        return out.stream();
    }

    /**
     * The request diffusers got; no scheduler in it unless the case named one (then the model's own runs), no strength
     * unless the case gave one (then StableDiffusionXLImg2ImgPipeline's default, 0.3, runs).
     */
    static GenerationRequest request(JsonNode c) throws Exception {
        GenerationRequest.Builder b = GenerationRequest.builder(c.get("prompt").asText())
                .negativePrompt(c.get("negative_prompt").isNull() ? null : c.get("negative_prompt").asText())
                .steps(c.get("num_inference_steps").asInt())
                .guidanceScale(c.get("guidance_scale").asDouble())
                .seed(c.get("seed").asLong())
                .numImages(c.get("num_images_per_prompt").asInt())
                .guidanceRescale(c.get("guidance_rescale").asDouble());
        if (!c.get("scheduler_requested").isNull()) {
            b.scheduler(c.get("scheduler_requested").asText());
        }
        if (!c.get("height_requested").isNull()) {
            b.height(c.get("height_requested").asInt()).width(c.get("width_requested").asInt());
        }
        String task = c.get("task").asText();
        if (task.equals("img2img") || task.equals("inpaint")) {
            Path inputs = TestModels.resource("reference/tasks/inputs");
            b.initImage(ImageInputs.decode(Files.readAllBytes(inputs.resolve(c.get("image").asText()))));
            if (task.equals("inpaint")) {
                b.mask(ImageInputs.decode(Files.readAllBytes(inputs.resolve(c.get("mask").asText()))));
            }
            if (!c.get("strength_requested").isNull()) {
                b.strength(c.get("strength_requested").asDouble());
            }
        }
        return b.build();
    }

    @ParameterizedTest(name = "{index}: {0}")
    @MethodSource("cases")
    void matchesDiffusers(String id, JsonNode c) throws Exception {
        StableDiffusion sd = model(c);
        Map<String, float[]> seen = new HashMap<>();
        GenerationResult r;
        try (AutoCloseable probe = PipelineTestAccess.probe((k, v) -> seen.putIfAbsent(k, v.clone()))) {
            r = sd.generate(request(c));
        }
        check(id, c, r, seen);
    }

    /**
     * A request without a guidance scale runs StableDiffusionXLPipeline's default, 5.0: the first case that ran at 5.0
     * with diffusers' own scheduler, asked without the scale, gives diffusers' image.
     */
    @Test
    void aRequestWithoutGuidanceRunsTheSdxlPipelinesDefault() throws Exception {
        StableDiffusion sd = model(true);
        assertEquals(5.0, sd.info().defaultGuidanceScale());
        assertEquals(50, sd.info().defaultSteps());
        JsonNode c = cases().map(a -> (JsonNode) a.get()[1])
                .filter(x -> "txt2img".equals(x.get("task").asText()) && x.get("guidance_scale").asDouble() == 5.0 && x.get("force_zeros_for_empty_prompt")
                        .asBoolean() && x.get("guidance_rescale").asDouble() == 0 && x.get("height_requested").isNull())
                .findFirst().orElseThrow();
        GenerationRequest given = request(c);
        GenerationRequest noScale = GenerationRequest.builder(given.prompt()).negativePrompt(given.negativePrompt())
                .steps(given.steps().getAsInt()).seed(given.seed()).numImages(given.numImages())
                .scheduler(given.scheduler()).build();
        Map<String, float[]> seen = new HashMap<>();
        GenerationResult r;
        try (AutoCloseable probe = PipelineTestAccess.probe((k, v) -> seen.putIfAbsent(k, v.clone()))) {
            r = sd.generate(noScale);
        }
        assertEquals(5.0, r.request().guidanceScale().getAsDouble(), "the scale that ran is in the result's request");
        check(c.get("id").asText() + " (default guidance)", c, r, seen);
    }

    private static void check(String id, JsonNode c, GenerationResult r, Map<String, float[]> seen) throws Exception {
        JsonNode tol = JSON.readTree(DIR.resolve("cases.json").toFile()).get("meta").get("tolerances");
        assertEquals(c.get("unet_calls").asInt(), r.timings().steps(), "denoising steps run");
        if (!"txt2img".equals(c.get("task").asText())) {
            assertEquals(c.get("strength").asDouble(), r.request().strength(), "the strength that ran");
            Parity.LatentDiff m = Parity.latents(Parity.readF32(DIR.resolve(c.get("files").get("moments_f32").asText())),
                    seen.get("moments"));
            assertTrue(m.maxAbs() <= tol.get("latents_max_abs_rel").asDouble() * m.maxRef(), "VAE encoder moments max |d| "
                    + m.maxAbs() + " of max|ref| " + m.maxRef());
        }
        assertEquals(c.get("scheduler").asText(), r.scheduler());

        // the UNet's conditioning at the first step
        float[] timeIds = seen.get("time_ids");
        float[] expectIds = new float[timeIds.length];
        int k = 0;
        for (JsonNode row : c.get("time_ids")) {
            for (JsonNode v : row) {
                expectIds[k++] = (float) v.asDouble();
            }
        }
        assertArrayEquals(expectIds, timeIds, "time_ids");
        JsonNode files = c.get("files");
        for (String name : new String[] {"ehs", "text_embeds"}) {
            float[] ref = Parity.readF32(DIR.resolve(files.get(name + "_f32").asText()));
            float[] got = seen.get(name.equals("ehs") ? "encoder_hidden_states" : name);
            Parity.LatentDiff d = Parity.latents(ref, got);
            assertTrue(d.maxAbs() <= tol.get("embeds_max_abs_rel").asDouble() * d.maxRef(), name + " max |d| "
                    + d.maxAbs() + " of max|ref| " + d.maxRef());
        }

        float[] ref = Parity.readF32(DIR.resolve(files.get("latents_f32").asText()));
        Parity.LatentDiff ld = Parity.latents(ref, r.latents());
        byte[] rgb = Files.readAllBytes(DIR.resolve(files.get("rgb_u8").asText()));
        int n = c.get("num_images_per_prompt").asInt();
        assertEquals(n, r.images().size(), "images");
        int size = rgb.length / n;
        for (int i = 0; i < n; i++) {
            RgbImage img = r.images().get(i);
            assertEquals(c.get("width").asInt(), img.width(), "width");
            assertEquals(c.get("height").asInt(), img.height(), "height");
            byte[] one = java.util.Arrays.copyOfRange(rgb, i * size, (i + 1) * size);
            Parity.ImageDiff diff = Parity.images(one, img.rgb());
            System.out.printf("%s image %d: latents max|d| %.3g = %.2g x max|ref|, %s%n", id, i, ld.maxAbs(),
                    ld.relative(), diff);
            assertTrue(diff.max() <= tol.get("image_max_abs").asInt(), "image " + i + " " + diff);
            assertTrue(diff.mean() <= tol.get("image_mean_abs").asDouble(), "image " + i + " " + diff);
        }
        assertTrue(ld.relative() <= tol.get("latents_max_abs_rel").asDouble(), "final latents max |d| " + ld.maxAbs()
                + " > " + tol.get("latents_max_abs_rel").asDouble() + " x " + ld.maxRef());
    }
}
