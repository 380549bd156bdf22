package dev.sdjvm;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.sdjvm.image.ImageInputs;
import dev.sdjvm.image.RgbImage;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.TestInstance;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * Image-to-image and inpainting against diffusers' own {@code StableDiffusionImg2ImgPipeline} and
 * {@code StableDiffusionInpaintPipeline} (commit 58eb52c0, torch 1.13, one thread): the 14 cases of
 * reference/tasks/cases.json, made by tools/reference/make_task_references.py from the tiny fixtures (tiny-sd21-fp32
 * with its VAE encoder, tiny-sd21-inpaint-fp32 with a 9-channel UNet). Through the facade, as a user calls it.
 * Tolerances as the reference README states them (meta.tolerances): images max |d| &lt;= 2 and mean |d| &lt;= 0.05
 * levels, final latents max |d| &lt;= 1e-4 x max|ref|. Every case runs with the load-time graph optimization on and off.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class TaskReferenceTest {
    private static final Path DIR = TestModels.resource("reference/tasks");
    /** cases.json holds -Infinity (the DPM config's lambda_min_clipped), as Python's json writes it. */
    static final ObjectMapper JSON = new ObjectMapper().enable(
            com.fasterxml.jackson.core.json.JsonReadFeature.ALLOW_NON_NUMERIC_NUMBERS.mappedFeature());
    private final Map<String, StableDiffusion> models = new HashMap<>();

    private StableDiffusion model(String name, boolean optimize) {
        Path dir = TestModels.resource("models/" + name);
        return models.computeIfAbsent(name + "|" + optimize,
                k -> StableDiffusion.load(dir, LoadOptions.defaults().withOptimize(optimize)));
    }

    @AfterAll
    void close() {
        models.values().forEach(StableDiffusion::close);
    }

    static Stream<Arguments> cases() throws Exception {
        JsonNode root = JSON.readTree(DIR.resolve("cases.json").toFile());
        List<Arguments> out = new ArrayList<>();
        for (boolean optimize : new boolean[] {true, false}) {
            root.get("cases").forEach(c -> out.add(Arguments.of(c.get("id").asText(), c, optimize)));
        }
        return out.stream();
    }

    static RgbImage input(JsonNode c, String key) throws Exception {
        return ImageInputs.decode(Files.readAllBytes(DIR.resolve(c.get(key).get("file").asText())));
    }

    /** The request diffusers got: the case's prompt, seed, steps, guidance, scheduler, strength, image and mask. */
    static GenerationRequest request(JsonNode c) throws Exception {
        GenerationRequest.Builder b = GenerationRequest.builder(c.get("prompt").asText())
                .negativePrompt(c.hasNonNull("negative_prompt") ? c.get("negative_prompt").asText() : null)
                .steps(c.get("num_inference_steps").asInt())
                .guidanceScale(c.get("guidance_scale").asDouble())
                .seed(c.get("seed").asLong())
                .scheduler(c.get("scheduler").asText())
                .initImage(input(c, "image"))
                .strength(c.get("strength").asDouble());
        if ("inpaint".equals(c.get("task").asText())) {
            b.mask(input(c, "mask"));
        }
        return b.build();
    }

    @ParameterizedTest(name = "{index}: {0}, optimize {2}")
    @MethodSource("cases")
    void matchesDiffusers(String id, JsonNode c, boolean optimize) throws Exception {
        StableDiffusion sd = model(c.get("model").asText(), optimize);
        assertArrayEquals(JSON.convertValue(c.get("ids_prompt"), int[].class),
                sd.tokenizer().tokenize(c.get("prompt").asText()).inputIds(), "prompt ids");
        GenerationResult r = sd.generate(request(c));
        assertEquals(c.get("seed").asLong(), r.seed());
        assertEquals(c.get("unet_calls").asInt(), r.timings().steps(), "denoising steps run");
        assertEquals(c.get("scheduler").asText(), r.scheduler());

        JsonNode files = c.get("files");
        float[] ref = Parity.readF32(DIR.resolve(files.get("latents_f32").asText()));
        Parity.LatentDiff ld = Parity.latents(ref, r.latents());
        RgbImage img = r.images().get(0);
        assertEquals(c.get("width").asInt(), img.width(), "width");
        assertEquals(c.get("height").asInt(), img.height(), "height");
        Parity.ImageDiff diff = Parity.images(Files.readAllBytes(DIR.resolve(files.get("rgb_u8").asText())), img.rgb());
        System.out.printf("%s (optimize %s): latents max|d| %.3g = %.2g x max|ref|, %s%n", id, optimize, ld.maxAbs(),
                ld.relative(), diff);
        JsonNode tol = JSON.readTree(DIR.resolve("cases.json").toFile()).get("meta").get("tolerances");
        assertTrue(ld.relative() <= tol.get("latents_max_abs_rel").asDouble(), "final latents max |d| " + ld.maxAbs()
                + " > " + tol.get("latents_max_abs_rel").asDouble() + " x " + ld.maxRef());
        assertTrue(diff.max() <= tol.get("image_max_abs").asInt(), "image " + diff);
        assertTrue(diff.mean() <= tol.get("image_mean_abs").asDouble(), "image " + diff);
    }
}
