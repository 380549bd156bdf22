package dev.sdjvm.examples;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.awt.image.BufferedImage;
import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import javax.imageio.ImageIO;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * Runs each example main as a user would: its own JVM, the examples' runtime class path, a fresh working directory
 * (the embedded model is extracted into a cache there, not into the home directory).
 */
@Timeout(value = 300, unit = TimeUnit.SECONDS)
class ExamplesTest {
    record Run(int exit, String out, List<String> lines) {
    }

    /** Runs {@code main} in {@code dir}; {@code pressEnter} types Enter on its console at once, else closes it. */
    static Run run(Class<?> main, Path dir, boolean pressEnter, String... args) throws IOException, InterruptedException {
        Path target = Paths.get("target").toAbsolutePath();
        Path cpFile = target.resolve("classpath.txt");
        assumeTrue(Files.isRegularFile(cpFile), "target/classpath.txt not written (run through Maven)");
        String cp = target.resolve("classes") + ":" + Files.readString(cpFile).trim();
        List<String> command = new ArrayList<>(List.of(Paths.get(System.getProperty("java.home"), "bin", "java")
                .toString(), "-Xmx1g", "-Dsdjvm.cache=" + dir.resolve("cache"), "-cp", cp, main.getName()));
        command.addAll(List.of(args));
        Process p = new ProcessBuilder(command).directory(dir.toFile()).redirectErrorStream(true).start();
        List<String> lines = new ArrayList<>();
        try (OutputStream stdin = p.getOutputStream();
             BufferedReader out = new BufferedReader(new InputStreamReader(p.getInputStream(), StandardCharsets.UTF_8))) {
            if (pressEnter) {
                stdin.write('\n');
            }
            stdin.close();
            for (String line = out.readLine(); line != null; line = out.readLine()) {
                lines.add(line);
            }
        }
        assertTrue(p.waitFor(120, TimeUnit.SECONDS), "exits");
        return new Run(p.exitValue(), String.join("\n", lines), lines);
    }

    static BufferedImage png(Path f) throws IOException {
        assertTrue(Files.isRegularFile(f), f + " written");
        BufferedImage img = ImageIO.read(f.toFile());
        assertEquals(64, img.getWidth());
        assertEquals(64, img.getHeight());
        return img;
    }

    @Test
    void quickStartWritesTheImage(@TempDir Path dir) throws Exception {
        Run r = run(QuickStart.class, dir, false);
        assertEquals(0, r.exit(), r.out());
        png(dir.resolve("circle.png"));
    }

    @Test
    void fullRequestReportsProgressAndWritesBothImages(@TempDir Path dir) throws Exception {
        Run r = run(FullRequest.class, dir, false);
        assertEquals(0, r.exit(), r.out());
        assertEquals(20, r.lines().stream().filter(l -> l.startsWith("step ")).count(), r.out());
        assertTrue(r.out().contains("step 20/20"), r.out());
        assertTrue(r.out().contains("seed 42, "), r.out());
        assertTrue(r.out().contains(", 2 images"), r.out());
        // two different images from one seed (the batch draws one latent each)
        BufferedImage a = png(dir.resolve("image-1.png"));
        BufferedImage b = png(dir.resolve("image-2.png"));
        assertFalse(java.util.Arrays.equals(a.getRGB(0, 0, 64, 64, null, 0, 64), b.getRGB(0, 0, 64, 64, null, 0, 64)));
        // each file carries its parameters (GenerationResult.writePng)
        assertEquals("a yellow circle on a purple background\nNegative prompt: a square\nSteps: 20, Sampler: DPM++ 2M "
                + "Karras, CFG scale: 4, Seed: 42, Size: 64x64, Batch size: 2, Batch pos: 1",
                dev.sdjvm.image.PngFiles.readText(dir.resolve("image-2.png")).get("parameters"));
    }

    @Test
    void fullRequestCancelsWhenEnterIsPressed(@TempDir Path dir) throws Exception {
        // Enter typed at once: the flag is set while the model loads, so the first step's listener call cancels
        Run r = run(FullRequest.class, dir, true);
        assertEquals(0, r.exit(), r.out());
        assertTrue(r.out().contains("cancelled: cancelled by the step listener after step 1 of 20"), r.out());
        assertFalse(r.out().contains("step 20/20"), r.out());
        assertFalse(Files.exists(dir.resolve("image-1.png")), "no image after a cancel");
    }

    @Test
    void imageToImageWritesBothImages(@TempDir Path dir) throws Exception {
        Path inputs = dev.sdjvm.TestModels.resource("reference/tasks/inputs");
        Run r = run(ImageToImage.class, dir, false, dev.sdjvm.TestModels.resource("models/tiny-sd21-fp32").toString(),
                inputs.resolve("start_64.png").toString(), inputs.resolve("mask_64.png").toString());
        assertEquals(0, r.exit(), r.out());
        BufferedImage a = png(dir.resolve("img2img.png"));
        BufferedImage b = png(dir.resolve("inpaint.png"));
        assertFalse(java.util.Arrays.equals(a.getRGB(0, 0, 64, 64, null, 0, 64), b.getRGB(0, 0, 64, 64, null, 0, 64)));
    }

    @Test
    void imageServiceAnswersEveryClientAndRejectsTheInvalidRequest(@TempDir Path dir) throws Exception {
        Run r = run(ImageService.class, dir, false);
        assertEquals(0, r.exit(), r.out());
        for (int i = 1; i <= 3; i++) {
            assertTrue(r.out().contains("request " + i + ": 200, "), r.out());
        }
        assertTrue(r.out().contains("request 4: 400, num_inference_steps: must be in 1..1000, got 0"), r.out());
    }
}
