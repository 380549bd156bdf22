package dev.sdjvm;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.sdjvm.image.PngFiles;
import dev.sdjvm.image.RgbImage;
import java.awt.image.BufferedImage;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import javax.imageio.ImageIO;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The A1111 parameters text, and GenerationResult.writePng: the chunk read back from the file it wrote. */
class GenerationParametersTest {
    @Test
    void a1111Text() {
        GenerationRequest r = GenerationRequest.builder("a lighthouse").negativePrompt("fog").steps(20)
                .guidanceScale(7.5).build();
        assertEquals("a lighthouse\nNegative prompt: fog\nSteps: 20, Sampler: DPM++ 2M, CFG scale: 7.5, Seed: 42, "
                + "Size: 512x512, Model: sd2_512_root",
                GenerationParameters.a1111(r, 42, "DPMSolverMultistepScheduler", 512, 512, "sd2_512_root"));
        GenerationRequest r2 = GenerationRequest.builder("x").steps(4).guidanceScale(7).numImages(2)
                .schedulerOverrides(Map.of("use_karras_sigmas", true)).build();
        assertEquals("x\nSteps: 4, Sampler: Euler Karras, CFG scale: 7, Seed: 1, Size: 768x512, Batch size: 2",
                GenerationParameters.a1111(r2, 1, "EulerDiscreteScheduler", 768, 512, null));
        // one image of a batch: the batch's seed, its size and the image's 0-based position, plus the model hash
        assertEquals("x\nSteps: 4, Sampler: Euler Karras, CFG scale: 7, Seed: 1, Size: 768x512, Model hash: 0123456789, "
                + "Model: m, Batch size: 2, Batch pos: 1",
                GenerationParameters.a1111(r2, 1, "EulerDiscreteScheduler", 768, 512, "0123456789", "m", 1));
        assertEquals("a lighthouse\nNegative prompt: fog\nSteps: 20, Sampler: DPM++ 2M, CFG scale: 7.5, Seed: 42, "
                + "Size: 512x512, Model hash: 0123456789, Model: sd2_512_root",
                GenerationParameters.a1111(r, 42, "DPMSolverMultistepScheduler", 512, 512, "0123456789", "sd2_512_root", 0));
        assertEquals("Euler a", GenerationParameters.samplerName("EulerAncestralDiscreteScheduler", "euler_a", Map.of()));
        assertEquals("DPM++ 2M SDE Karras",
                GenerationParameters.samplerName("DPMSolverMultistepScheduler", "dpm++2m-sde-karras", Map.of()));
        assertEquals("DDIM", GenerationParameters.samplerName("DDIMScheduler", null, null));
    }

    private static RgbImage image(int w, int h, int salt) {
        byte[] px = new byte[w * h * 3];
        for (int i = 0; i < px.length; i++) {
            px[i] = (byte) (i * 7 + salt);
        }
        return new RgbImage(w, h, px);
    }

    @Test
    void writePngPutsEachImagesParametersInATextChunk(@TempDir Path tmp) throws Exception {
        GenerationRequest r = GenerationRequest.builder("a café at dusk").negativePrompt("fog").steps(20)
                .guidanceScale(7.5).numImages(2).scheduler("dpm++2m-karras").build();
        RgbImage first = image(8, 4, 0);
        RgbImage second = image(8, 4, 1);
        GenerationResult result = GenerationResult.builder().images(List.of(first, second)).seed(42)
                .timings(new GenerationResult.Timings(0, 0, 0, 0, 0, 0, 20)).scheduler("DPMSolverMultistepScheduler")
                .request(r).build();
        Path f0 = tmp.resolve("a.png");
        Path f1 = tmp.resolve("b.png");
        result.writePng(f0);
        result.writePng(1, f1);
        String expected = "a café at dusk\nNegative prompt: fog\nSteps: 20, Sampler: DPM++ 2M Karras, CFG scale: 7.5, "
                + "Seed: 42, Size: 8x4, Batch size: 2, Batch pos: ";
        assertEquals(Map.of("parameters", expected + "0"), PngFiles.readText(f0));
        assertEquals(Map.of("parameters", expected + "1"), PngFiles.readText(f1));
        assertEquals(expected + "1", result.parameters(1));
        // a tEXt chunk (Latin-1), the one A1111's "PNG Info" reads
        String raw = new String(Files.readAllBytes(f0), StandardCharsets.ISO_8859_1);
        assertTrue(raw.contains("tEXtparameters\0a café at dusk\nNegative prompt: fog"), "tEXt chunk");
        // the pixels are the image's
        BufferedImage back = ImageIO.read(f1.toFile());
        for (int y = 0; y < 4; y++) {
            for (int x = 0; x < 8; x++) {
                int e = second.get(x, y, 0) << 16 | second.get(x, y, 1) << 8 | second.get(x, y, 2);
                assertEquals(e, back.getRGB(x, y) & 0xffffff);
            }
        }
        assertThrows(IndexOutOfBoundsException.class, () -> result.writePng(2, tmp.resolve("c.png")));
        // text Latin-1 cannot hold goes into an iTXt chunk, read back the same
        GenerationResult intl = GenerationResult.builder().images(List.of(first)).seed(1)
                .timings(new GenerationResult.Timings(0, 0, 0, 0, 0, 0, 2)).scheduler("EulerDiscreteScheduler")
                .request(GenerationRequest.of("富士山 at dawn").withDefaults(50, 7.5)).build();
        intl.writePng(f0);
        assertEquals(intl.parameters(0), PngFiles.readText(f0).get("parameters"));
        assertTrue(intl.parameters(0).startsWith("富士山 at dawn\nSteps: 50, Sampler: Euler, CFG scale: 7.5, Seed: 1"));
    }
}
