package dev.sdjvm;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.sdjvm.errors.InvalidRequestException;
import dev.sdjvm.errors.RequestLimitException;
import dev.sdjvm.image.GrayImage;
import dev.sdjvm.image.ImageInputs;
import dev.sdjvm.image.RgbImage;
import java.awt.image.BufferedImage;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;
import org.junit.jupiter.api.function.Executable;
import org.junit.jupiter.api.io.TempDir;

/**
 * Image-to-image and inpainting through the facade, beyond diffusers' numbers (TaskReferenceTest): the request's
 * checks (strength, mask, latents), the defaults, the dispatch, the work budget, and the errors a model that cannot
 * run the task gives (no VAE encoder, an inpainting UNet without a mask, compiled artifacts of another size).
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class ImageTasksTest {
    private static final Path TASKS = TestModels.resource("reference/tasks");
    private StableDiffusion tiny;
    private RgbImage start;
    private RgbImage mask;

    @BeforeAll
    void load() throws Exception {
        tiny = StableDiffusion.load(TestModels.resource("models/tiny-sd21-fp32"), LoadOptions.defaults().withThreads(1));
        start = ImageInputs.decode(Files.readAllBytes(TASKS.resolve("inputs/start_64.png")));
        mask = ImageInputs.decode(Files.readAllBytes(TASKS.resolve("inputs/mask_64.png")));
    }

    @AfterAll
    void close() {
        tiny.close();
    }

    static GenerationRequest.Builder req() {
        return GenerationRequest.builder("a red circle on a blue background").steps(10).guidanceScale(5).seed(3L);
    }

    static void rejects(String field, Executable e) {
        InvalidRequestException x = assertThrows(InvalidRequestException.class, e);
        assertEquals(field, x.field(), x.getMessage());
    }

    @Test
    void strengthIsInZeroToOneAndNeedsAnImage() {
        for (double bad : new double[] {0, -0.1, 1.0000001, 2, Double.NaN, Double.POSITIVE_INFINITY}) {
            rejects("strength", () -> req().initImage(start).strength(bad).build());
        }
        rejects("strength", () -> req().strength(0.5).build());
        assertEquals(1.0, req().initImage(start).strength(1.0).build().strength());
        assertEquals(0.3, req().initImage(start).strength(0.3).build().resolvedStrength());
        // diffusers' defaults: 0.8 for image-to-image, 1.0 for inpainting
        assertNull(req().initImage(start).build().strength());
        assertEquals(GenerationRequest.DEFAULT_STRENGTH, req().initImage(start).build().resolvedStrength());
        assertEquals(0.8, GenerationRequest.DEFAULT_STRENGTH);
        assertEquals(1.0, req().initImage(start).mask(mask).build().resolvedStrength());
    }

    @Test
    void theMaskHasTheImagesSizeAndNeedsAnImage() {
        RgbImage wide = new RgbImage(72, 64, new byte[72 * 64 * 3]);
        InvalidRequestException e = assertThrows(InvalidRequestException.class,
                () -> req().initImage(start).mask(wide).build());
        assertEquals("mask_image", e.field());
        assertEquals("mask_image: the mask is 72x64 but the image is 64x64 (width x height): they must have the same "
                + "size", e.getMessage());
        rejects("mask_image", () -> req().mask(mask).build());
        rejects("latents", () -> req().initImage(start).latents(new float[256]).build());
        req().initImage(start).mask(mask).latents(new float[256]).build();  // inpainting takes latents, as diffusers
    }

    @Test
    void aModelWithoutAVaeEncoderNamesTheMissingFile() {
        try (StableDiffusion sd = StableDiffusion.load(TestModels.referenceTiny())) {
            RgbImage img = new RgbImage(128, 128, new byte[128 * 128 * 3]);
            for (GenerationRequest r : List.of(req().initImage(img).build(), req().initImage(img).mask(img).build())) {
                InvalidRequestException e = assertThrows(InvalidRequestException.class, () -> sd.generate(r));
                assertEquals("image", e.field());
                assertTrue(e.getMessage().contains("compiled_models/vae_encoder.pt"), e.getMessage());
            }
        }
    }

    @Test
    void imageToImageRunsTheLastStrengthOfTheScheduleAtTheImagesFlooredSize() throws Exception {
        List<Integer> steps = new ArrayList<>();
        GenerationResult r = tiny.generate(req().initImage(start).listener((s, n, t, el) -> steps.add(n)).build());
        assertEquals(8, r.timings().steps(), "int(10 x 0.8) steps");
        assertEquals(8, steps.get(0), "the listener's total");
        assertEquals("DPMSolverMultistepScheduler", r.scheduler());
        RgbImage odd = ImageInputs.decode(Files.readAllBytes(TASKS.resolve("inputs/start_133x100.png")));
        GenerationResult o = tiny.generate(req().initImage(odd).strength(0.25).build());
        assertEquals(2, o.timings().steps(), "int(10 x 0.25)");
        assertEquals(128, o.images().get(0).width());
        assertEquals(96, o.images().get(0).height());
        // height/width resize the image to them (both diffusers' VaeImageProcessor.preprocess arguments)
        GenerationResult sized = tiny.generate(req().initImage(odd).height(64).width(80).strength(0.25).build());
        assertEquals(80, sized.images().get(0).width());
        assertEquals(64, sized.images().get(0).height());
        // the same request, the same image; another start image, another one
        assertArrayEquals(r.latents(), tiny.generate(req().initImage(start).build()).latents());
        RgbImage dark = new RgbImage(64, 64, new byte[64 * 64 * 3]);
        assertFalse(java.util.Arrays.equals(r.latents(), tiny.generate(req().initImage(dark).build()).latents()));
        // a strength whose int(steps x strength) is 0 leaves no step: refused, as diffusers' inpainting does
        rejects("strength", () -> tiny.generate(req().steps(3).initImage(start).strength(0.3).build()));
    }

    @Test
    void imagesPerPromptShareTheStartImageAndDrawTheirOwnNoise() {
        GenerationResult two = tiny.generate(req().initImage(start).numImages(2).build());
        assertEquals(2, two.images().size());
        assertFalse(java.util.Arrays.equals(two.images().get(0).rgb(), two.images().get(1).rgb()));
        GenerationResult inpaint = tiny.generate(req().initImage(start).mask(mask).numImages(2).strength(0.5).build());
        assertEquals(2, inpaint.images().size());
        assertEquals(5, inpaint.timings().steps());
    }

    @Test
    void bufferedImagesGiveTheSameRequestAsTheirPixels() {
        BufferedImage rgb = start.toBufferedImage();
        BufferedImage grey = new BufferedImage(64, 64, BufferedImage.TYPE_BYTE_GRAY);
        byte[] g = new byte[64 * 64];
        for (int i = 0; i < g.length; i++) {
            g[i] = (byte) mask.rgb()[i * 3];
            grey.getRaster().setSample(i % 64, i / 64, 0, g[i] & 0xff);
        }
        GenerationRequest a = req().initImage(rgb).mask(grey).build();
        GenerationRequest b = req().initImage(start).mask(new GrayImage(64, 64, g)).build();
        assertArrayEquals(start.rgb(), a.initImage().rgb());
        assertArrayEquals(mask.rgb(), a.mask().rgb(), "a grey mask's raw values");
        assertArrayEquals(a.mask().rgb(), b.mask().rgb());
        assertArrayEquals(tiny.generate(a).latents(), tiny.generate(b).latents());
    }

    @Test
    void anInpaintingUnetTakesOnlyInpainting() {
        try (StableDiffusion sd = StableDiffusion.load(TestModels.resource("models/tiny-sd21-inpaint-fp32"),
                LoadOptions.defaults().withThreads(1))) {
            rejects("mask_image", () -> sd.generate(req().build()));
            rejects("mask_image", () -> sd.generate(req().initImage(start).build()));
            assertEquals(10, sd.generate(req().initImage(start).mask(mask).build()).timings().steps());
        }
    }

    @Test
    void compiledArtifactsTakeOnlyImagesOfTheirSize(@TempDir Path tmp) throws Exception {
        dev.sdjvm.backend.neuron.NrtSim.library();
        Path neuron = dev.sdjvm.backend.neuron.NrtSim.model("sim-neuron", tmp.resolve("neuron"));
        try (StableDiffusion sd = StableDiffusion.load(neuron)) {
            RgbImage odd = new RgbImage(100, 133, new byte[100 * 133 * 3]);
            InvalidRequestException e = assertThrows(InvalidRequestException.class,
                    () -> sd.generate(req().initImage(odd).build()));
            assertEquals("image", e.field());
            assertTrue(e.getMessage().contains("compiled for 64x64"), e.getMessage());
            // resized to the compiled size by height/width, it runs; inpainting resizes to the model's size anyway
            assertEquals(64, sd.generate(req().initImage(odd).height(64).width(64).build()).images().get(0).width());
            assertEquals(64, sd.generate(req().initImage(odd).mask(odd).build()).images().get(0).width());
        } finally {
            dev.sdjvm.backend.neuron.NrtSim.reset();
        }
    }

    @Test
    void theStartImageCountsInTheWorkBudget() {
        RequestLimits limits = RequestLimits.auto().withMaxImagePixels(64 * 64);
        RgbImage big = new RgbImage(65, 64, new byte[65 * 64 * 3]);
        RequestLimitException e = assertThrows(RequestLimitException.class,
                () -> limits.check(req().initImage(big).build(), 64, 64));
        assertEquals("image", e.field());
        assertEquals("max_image_pixels", e.limit());
        limits.check(req().initImage(start).build(), 64, 64);
        // image-to-image runs at the image's (floored) size: that is what steps and images multiply
        RequestLimits work = RequestLimits.auto().withMaxWork(64L * 64 * 10);
        RgbImage tall = new RgbImage(64, 130, new byte[64 * 130 * 3]);
        RequestLimitException w = assertThrows(RequestLimitException.class,
                () -> work.check(req().initImage(tall).build(), 64, 64));
        assertEquals("max_work", w.limit());
        work.check(req().initImage(start).build(), 64, 64);
        // inpainting runs at the model's size whatever the image's
        RequestLimits.auto().withMaxWork(64L * 64 * 10).check(req().initImage(tall).mask(tall).build(), 64, 64);
    }
}
