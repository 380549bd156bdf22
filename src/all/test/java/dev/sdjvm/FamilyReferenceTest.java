package dev.sdjvm;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.sdjvm.image.ImageInputs;
import dev.sdjvm.image.RgbImage;
import java.io.ByteArrayOutputStream;
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
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * The model families beyond SD 2.1-base against diffusers' own {@code StableDiffusionPipeline} and
 * {@code LatentConsistencyModelPipeline}: reference/families/cases.json, made by tools/reference/make_family_references.py
 * from the tiny family fixtures (tools/model/make_tiny_sd.py presets tiny-sd15, tiny-sd2v, tiny-lcm, tiny-turbo), with
 * guidance_rescale cases. Through the facade, on the CPU backend. A case whose scheduler is {@code config} runs with
 * the request's scheduler unset for the LCM and Turbo models (their family's default is the model's own scheduler) and
 * {@code config} for the others. Tolerances: meta.tolerances (images max |d| &lt;= 2, mean |d| &lt;= 0.05 levels;
 * final latents max |d| &lt;= 1e-4 x max|ref|).
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class FamilyReferenceTest {
    static final Path DIR = TestModels.resource("reference/families");
    static final ObjectMapper JSON = new ObjectMapper();
    private final Map<String, StableDiffusion> models = new HashMap<>();

    private StableDiffusion model(String name) {
        return models.computeIfAbsent(name, k -> StableDiffusion.load(TestModels.resource("models/" + name)));
    }

    @AfterAll
    void close() {
        models.values().forEach(StableDiffusion::close);
    }

    static Stream<Arguments> cases() throws Exception {
        List<Arguments> out = new ArrayList<>();
        JSON.readTree(DIR.resolve("cases.json").toFile()).get("cases")
                .forEach(c -> out.add(Arguments.of(c.get("id").asText(), c)));
        return out.stream();
    }

    /** The request diffusers got. */
    static GenerationRequest request(JsonNode c, String family) {
        String sched = c.get("scheduler").asText();
        boolean ownDefault = "config".equals(sched) && ("LCM".equals(family) || "TURBO".equals(family));
        GenerationRequest.Builder b = GenerationRequest.builder(c.get("prompt").asText())
                .negativePrompt(c.hasNonNull("negative_prompt") ? c.get("negative_prompt").asText() : null)
                .steps(c.get("num_inference_steps").asInt())
                .guidanceScale(c.get("guidance_scale").asDouble())
                .guidanceRescale(c.get("guidance_rescale").asDouble())
                .seed(c.get("seed").asLong())
                .numImages(c.get("num_images_per_prompt").asInt())
                .scheduler(ownDefault ? null : sched);
        withImage(b, c);
        return b.build();
    }

    /** An image-to-image case's start image and requested strength (none: the pipeline's default). */
    static GenerationRequest.Builder withImage(GenerationRequest.Builder b, JsonNode c) {
        if (c.path("task").asText("").equals("img2img")) {
            try {
                b.initImage(ImageInputs.decode(Files.readAllBytes(TestModels.resource("reference/tasks/inputs")
                        .resolve(c.get("image").asText()))));
            } catch (java.io.IOException e) {
                throw new java.io.UncheckedIOException(e);
            }
            if (!c.get("strength_requested").isNull()) {
                b.strength(c.get("strength_requested").asDouble());
            }
        }
        return b;
    }

    @ParameterizedTest(name = "{index}: {0}")
    @MethodSource("cases")
    void matchesDiffusers(String id, JsonNode c) throws Exception {
        StableDiffusion sd = model(c.get("model").asText());
        String family = sd.info().family();
        assertArrayEquals(JSON.convertValue(c.get("ids_prompt"), int[].class),
                sd.tokenizer().tokenize(c.get("prompt").asText()).inputIds(), "prompt ids (pad "
                        + c.get("pad_token").asText() + ")");
        assertEquals(c.get("pad_id").asInt(), sd.tokenizer().padId(), "pad id from the model's tokenizer files");
        GenerationRequest req = request(c, family);
        boolean img2img = c.path("task").asText("").equals("img2img");  // its size is the start image's
        if (!img2img && c.hasNonNull("width") && c.get("width").asInt() != sd.info().width()) {
            req = req.toBuilder().width(c.get("width").asInt()).height(c.get("height").asInt()).build();
        }
        check(id, c, sd, sd.generate(req));
    }

    /**
     * A request with neither steps nor guidance runs the model's defaults: diffusers' LatentConsistencyModelPipeline
     * call defaults (4 steps, 8.5) for LCM, the model card's (1 step, no guidance) for Turbo, 50 / 7.5 for the SD
     * families; where a reference case ran exactly those, the request without them gives diffusers' image.
     */
    @Test
    void requestsWithoutStepsOrGuidanceRunTheModelsDefaults() throws Exception {
        Map<String, double[]> expected = Map.of("tiny-lcm-fp32", new double[] {4, 8.5}, "tiny-turbo-fp32",
                new double[] {1, 0.0}, "tiny-sd15-fp32", new double[] {50, 7.5}, "tiny-sd2v-fp32", new double[] {50, 7.5});
        int compared = 0;
        for (Arguments a : cases().toList()) {
            String id = (String) a.get()[0];
            JsonNode c = (JsonNode) a.get()[1];
            StableDiffusion sd = model(c.get("model").asText());
            double[] want = expected.get(c.get("model").asText());
            assertEquals((int) want[0], sd.info().defaultSteps(), c.get("model").asText());
            assertEquals(want[1], sd.info().defaultGuidanceScale(), c.get("model").asText());
            if (c.get("num_inference_steps").asInt() != want[0] || c.get("guidance_scale").asDouble() != want[1]
                    || !"config".equals(c.get("scheduler").asText()) || c.get("guidance_rescale").asDouble() != 0) {
                continue;
            }
            GenerationRequest given = request(c, sd.info().family());
            GenerationRequest.Builder b = GenerationRequest.builder(given.prompt()).negativePrompt(given.negativePrompt())
                    .seed(given.seed()).numImages(given.numImages()).scheduler(given.scheduler());
            GenerationResult r = sd.generate(withImage(b, c).build());
            assertEquals(want[0], r.request().steps().getAsInt(), "the steps that ran are in the result's request");
            assertEquals(want[1], r.request().guidanceScale().getAsDouble());
            check(id + " (defaults)", c, sd, r);
            compared++;
        }
        assertEquals(3, compared, "the LCM (text-to-image, image-to-image at the default strength 0.8) and Turbo cases "
                + "that ran at their defaults");
    }

    private static void check(String id, JsonNode c, StableDiffusion sd, GenerationResult r) throws Exception {
        String family = sd.info().family();
        assertEquals(c.get("unet_calls").asInt(), r.timings().steps(), "denoising steps run");
        assertEquals(c.get("scheduler_class").asText(), r.scheduler());
        float[] ref = Parity.readF32(DIR.resolve(c.get("files").get("latents_f32").asText()));
        Parity.LatentDiff ld = Parity.latents(ref, r.latents());
        ByteArrayOutputStream all = new ByteArrayOutputStream();
        for (RgbImage img : r.images()) {
            assertEquals(c.get("width").asInt(), img.width(), "width");
            assertEquals(c.get("height").asInt(), img.height(), "height");
            all.write(img.rgb());
        }
        Parity.ImageDiff diff = Parity.images(Files.readAllBytes(DIR.resolve(c.get("files").get("rgb_u8").asText())),
                all.toByteArray());
        System.out.printf("%s (%s): latents max|d| %.3g = %.2g x max|ref|, %s%n", id, family, ld.maxAbs(),
                ld.relative(), diff);
        JsonNode tol = JSON.readTree(DIR.resolve("cases.json").toFile()).get("meta").get("tolerances");
        assertTrue(ld.relative() <= tol.get("latents_max_abs_rel").asDouble(), "final latents max |d| " + ld.maxAbs()
                + " > " + tol.get("latents_max_abs_rel").asDouble() + " x " + ld.maxRef());
        assertTrue(diff.max() <= tol.get("image_max_abs").asInt(), "image " + diff);
        assertTrue(diff.mean() <= tol.get("image_mean_abs").asDouble(), "image " + diff);
    }
}
