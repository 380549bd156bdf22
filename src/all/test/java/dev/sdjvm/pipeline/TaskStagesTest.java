package dev.sdjvm.pipeline;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.core.json.JsonReadFeature;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.sdjvm.GenerationRequest;
import dev.sdjvm.StableDiffusion;
import dev.sdjvm.TestModels;
import dev.sdjvm.image.FloatImage;
import dev.sdjvm.image.ImageInputs;
import dev.sdjvm.image.RgbImage;
import dev.sdjvm.image.VaeImageProcessor;
import dev.sdjvm.tensor.TorchGenerator;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * The intermediate tensors of image-to-image and inpainting against the ones diffusers' own pipelines recorded
 * (reference/tasks, see its README): every VAE encoder output in call order, the start image's and the masked image's
 * scaled posterior samples, the latent mask (exact), the latents entering the loop; and the generator draws' order,
 * shapes and values (exact). Tolerances from cases.json meta.tolerances (1e-4 x max|ref|); the measured differences
 * are printed. The encoder runs on a contiguous NCHW input here, diffusers on a channels-last view: its README measured
 * up to 1.8e-5 x max|ref| from that alone.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class TaskStagesTest {
    private static final Path DIR = TestModels.resource("reference/tasks");
    private static final ObjectMapper JSON = new ObjectMapper().enable(JsonReadFeature.ALLOW_NON_NUMERIC_NUMBERS.mappedFeature());
    private final Map<String, StableDiffusion> models = new HashMap<>();

    @AfterEach
    void noProbe() {
        DiffusionStages.probe = null;
    }

    @AfterAll
    void close() {
        models.values().forEach(StableDiffusion::close);
    }

    static Stream<Arguments> cases() throws IOException {
        List<Arguments> out = new ArrayList<>();
        JSON.readTree(DIR.resolve("cases.json").toFile()).get("cases").forEach(c -> out.add(Arguments.of(c.get("id").asText(), c)));
        return out.stream();
    }

    static float[] f32(String file) throws IOException {
        ByteBuffer b = ByteBuffer.wrap(Files.readAllBytes(DIR.resolve(file))).order(ByteOrder.LITTLE_ENDIAN);
        float[] f = new float[b.remaining() / 4];
        b.asFloatBuffer().get(f);
        return f;
    }

    static RgbImage input(JsonNode c, String key) throws IOException {
        return ImageInputs.decode(Files.readAllBytes(DIR.resolve(c.get(key).get("file").asText())));
    }

    /** max |d| / max |ref|, printed and checked against the tolerance. */
    static void close(String what, float[] ref, float[] got, double tol) {
        assertEquals(ref.length, got.length, what + " length");
        float maxRef = 0;
        float maxD = 0;
        for (int i = 0; i < ref.length; i++) {
            maxRef = Math.max(maxRef, Math.abs(ref[i]));
            maxD = Math.max(maxD, Math.abs(ref[i] - got[i]));
        }
        System.out.printf("  %-22s max|d| %.3g = %.2g x max|ref|%n", what, maxD, maxD / maxRef);
        assertTrue(maxD <= tol * maxRef, what + ": max |d| " + maxD + " > " + tol + " x " + maxRef);
    }

    @ParameterizedTest(name = "{index}: {0}")
    @MethodSource("cases")
    void theIntermediateTensorsAreDiffusers(String id, JsonNode c) throws Exception {
        JsonNode tol = JSON.readTree(DIR.resolve("cases.json").toFile()).get("meta").get("tolerances");
        StableDiffusion sd = models.computeIfAbsent(c.get("model").asText(),
                m -> StableDiffusion.load(TestModels.resource("models/" + m)));
        GenerationRequest.Builder b = GenerationRequest.builder(c.get("prompt").asText())
                .negativePrompt(c.hasNonNull("negative_prompt") ? c.get("negative_prompt").asText() : null)
                .steps(c.get("num_inference_steps").asInt()).guidanceScale(c.get("guidance_scale").asDouble())
                .seed(c.get("seed").asLong()).scheduler(c.get("scheduler").asText())
                .initImage(input(c, "image")).strength(c.get("strength").asDouble());
        boolean inpaint = "inpaint".equals(c.get("task").asText());
        if (inpaint) {
            b.mask(input(c, "mask"));
        }
        Map<String, List<float[]>> seen = new HashMap<>();
        DiffusionStages.probe = (what, values) -> seen.computeIfAbsent(what, k -> new ArrayList<>()).add(values.clone());
        sd.generate(b.build());
        DiffusionStages.probe = null;

        System.out.println(id + ":");
        JsonNode files = c.get("files");
        List<float[]> moments = seen.getOrDefault("moments", List.of());
        assertEquals(c.get("encodes").size(), moments.size(), "VAE encoder calls");
        for (int i = 0; i < moments.size(); i++) {
            close("moments " + (i + 1) + " (" + c.get("encodes").get(i).get("what").asText().split(" ")[0] + ")",
                    f32(files.get("encode" + (i + 1) + "_moments_f32").asText()), moments.get(i),
                    tol.get("moments_max_abs_rel").asDouble());
        }
        close("init_latents", f32(files.get("init_latents_f32").asText()), seen.get("init_latents").get(0),
                tol.get("init_latents_max_abs_rel").asDouble());
        if (files.has("image_latents_f32")) {
            close("image_latents", f32(files.get("image_latents_f32").asText()), seen.get("image_latents").get(0),
                    tol.get("image_latents_max_abs_rel").asDouble());
        }
        if (inpaint) {
            close("masked_image_latents", f32(files.get("masked_image_latents_f32").asText()),
                    seen.get("masked_image_latents").get(0), tol.get("masked_image_latents_max_abs_rel").asDouble());
            assertArrayEquals(f32(files.get("mask_latent_f32").asText()), seen.get("mask_latent").get(0),
                    "latent mask: exact");
        }
    }

    /**
     * The generator's draws in diffusers' order, shapes and values (cases.json generator_draws: the first 4 values of
     * each): replayed from the seed as the pipelines draw them.
     */
    @ParameterizedTest(name = "{index}: {0}")
    @MethodSource("cases")
    void theRandomDrawsAreDiffusersInItsOrder(String id, JsonNode c) {
        TorchGenerator g = new TorchGenerator(c.get("seed").asLong());
        for (JsonNode draw : c.get("generator_draws")) {
            int numel = 1;
            for (JsonNode d : draw.get("shape")) {
                numel *= d.asInt();
            }
            float[] v = new float[numel];
            g.randn(v);
            for (int i = 0; i < 4; i++) {
                assertEquals(draw.get("first4").get(i).floatValue(), v[i], draw.get("by").asText() + " value " + i);
            }
        }
        // what the pipelines draw, in order: the shapes the recorded draws have
        boolean inpaint = "inpaint".equals(c.get("task").asText());
        boolean nineAtMax = inpaint && c.get("unet_in_channels").asInt() == 9 && c.get("strength").asDouble() == 1.0;
        List<String> expected = !inpaint ? List.of("vae.sample", "img2img.prepare_latents")
                : nineAtMax ? List.of("inpaint.prepare_latents", "vae.sample")
                : List.of("vae.sample", "inpaint.prepare_latents", "vae.sample");
        List<String> got = new ArrayList<>();
        c.get("generator_draws").forEach(d -> got.add(d.get("by").asText().replace("pipeline_stable_diffusion_", "")));
        assertEquals(expected, got);
    }

    /** The 133x100 start image reaches the encoder as diffusers' 128x96 LANCZOS resize, byte for byte. */
    @Test
    void theFlooredStartImageIsPillowsResize() throws IOException {
        RgbImage start = ImageInputs.decode(Files.readAllBytes(DIR.resolve("inputs/start_133x100.png")));
        RgbImage resized = ImageInputs.decode(Files.readAllBytes(DIR.resolve(
                "cases/i2i_133x100_dpm12_s0.75_g7.5_seed2024.resized.png")));
        FloatImage got = VaeImageProcessor.preprocess(start);
        FloatImage want = VaeImageProcessor.preprocess(resized);
        assertEquals(96, got.height());
        assertEquals(128, got.width());
        assertArrayEquals(want.chw(), got.chw());
    }
}
