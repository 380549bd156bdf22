package dev.sdjvm.cli;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.sdjvm.TestModels;
import java.awt.image.BufferedImage;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import javax.imageio.ImageIO;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The {@code sd} command line in-process: outputs, files and exit codes. */
class MainTest {
    static final ObjectMapper JSON = new ObjectMapper();

    record Run(int code, String out, String err) {
    }

    static Run sd(String... args) {
        StringWriter out = new StringWriter();
        StringWriter err = new StringWriter();
        int code = Main.run(args, new PrintWriter(out, true), new PrintWriter(err, true));
        return new Run(code, out.toString(), err.toString());
    }

    static String tiny() {
        return TestModels.referenceTiny().toString();
    }

    @Test
    void logFormatFromTheCommandLineOrTheEnvironment() {
        assertEquals("json", Main.logFormat(new String[] {"serve", "--log-format", "json"}, null));
        assertEquals("json", Main.logFormat(new String[] {"serve", "--log-format=JSON"}, "text"));
        assertEquals("text", Main.logFormat(new String[] {"serve", "--log-format", "text"}, "json"));
        assertEquals("json", Main.logFormat(new String[] {"serve"}, "json"));
        assertEquals(null, Main.logFormat(new String[] {"serve"}, null));
        // an unknown value leaves the log as text; picocli names the option's error
        assertEquals(null, Main.logFormat(new String[] {"serve", "--log-format", "xml"}, null));
        StringWriter err = new StringWriter();
        int code = Main.run(new String[] {"serve", "--log-format", "xml"}, new PrintWriter(new StringWriter()),
                new PrintWriter(err));
        assertEquals(Main.USAGE, code);
        assertTrue(err.toString().contains("--log-format"), err.toString());
    }

    @Test
    void usageErrorsExitWith2AndNoStackTrace() {
        Run r = sd();
        assertEquals(2, r.code());
        assertTrue(r.err().contains("missing command"), r.err());
        r = sd("generate", "--bogus", "x");
        assertEquals(2, r.code());
        assertTrue(r.err().contains("--bogus"), r.err());
        r = sd("generate");
        assertEquals(2, r.code());
        assertTrue(r.err().contains("PROMPT"), r.err());
        // an invalid request is rejected before the model loads, naming the field
        r = sd("generate", "a cat", "--steps", "0", "--model", "/nonexistent");
        assertEquals(2, r.code());
        assertTrue(r.err().contains("num_inference_steps"), r.err());
        r = sd("generate", "a cat", "--guidance-rescale", "1.5", "--model", "/nonexistent");
        assertEquals(2, r.code());
        assertTrue(r.err().contains("guidance_rescale"), r.err());
        assertFalse(r.err().contains("\tat "), r.err());
        r = sd("generate", "a cat", "--format", "gif");
        assertEquals(2, r.code());
        assertTrue(r.err().contains("--format"), r.err());
        r = sd("tokenize");
        assertEquals(2, r.code());
        r = sd("bench", "--steps", "0");
        assertEquals(2, r.code());
    }

    @Test
    void otherErrorsExitWith1InOneLine() {
        Run r = sd("info", "--model", "/nonexistent/model");
        assertEquals(1, r.code());
        assertTrue(r.err().startsWith("error: ") && r.err().contains("/nonexistent/model"), r.err());
        assertFalse(r.err().contains("\tat "), r.err());
    }

    @Test
    void helpEverywhere() {
        for (String cmd : new String[] {"generate", "tokenize", "info", "schedulers", "serve", "bench"}) {
            Run r = sd(cmd, "--help");
            assertEquals(0, r.code(), cmd);
            assertTrue(r.out().startsWith("Usage: sd " + cmd), r.out());
        }
        assertTrue(sd("--help").out().contains("generate"));
    }

    /** The 125 reference prompts (transformers' CLIPTokenizer, see reference/README.md) through --jsonl. */
    @Test
    void tokenizeJsonlMatchesTheReferenceIds(@TempDir Path tmp) throws Exception {
        JsonNode cases = JSON.readTree(TestModels.resource("reference/tokenizer_cases.json").toFile());
        List<String> lines = new ArrayList<>();
        for (JsonNode c : cases) {
            lines.add(JSON.writeValueAsString(c.path("prompt").asText()));
        }
        Path f = tmp.resolve("prompts.jsonl");
        Files.write(f, lines, StandardCharsets.UTF_8);
        String tok = TestModels.resource("reference/tokenizer").toString();
        Run r = sd("tokenize", "--tokenizer", tok, "--jsonl", f.toString());
        assertEquals(0, r.code(), r.err());
        String[] out = r.out().split("\n");
        assertEquals(cases.size(), out.length);
        Run raw = sd("tokenize", "--tokenizer", tok, "--raw", "--jsonl", f.toString());
        String[] rawOut = raw.out().split("\n");
        for (int i = 0; i < cases.size(); i++) {
            JsonNode c = cases.get(i);
            assertEquals(JSON.writeValueAsString(c.path("input_ids_77")), out[i], c.path("prompt").asText());
            assertEquals(JSON.writeValueAsString(c.path("ids")), rawOut[i], c.path("prompt").asText());
        }
        // positional prompts come first, one line each; --model DIR uses DIR/tokenizer
        Run pos = sd("tokenize", "--model", tiny(), cases.get(0).path("prompt").asText(), cases.get(1).path("prompt").asText());
        assertEquals(JSON.writeValueAsString(cases.get(0).path("input_ids_77")) + "\n"
                + JSON.writeValueAsString(cases.get(1).path("input_ids_77")) + "\n", pos.out().replace("\r", ""));
    }

    @Test
    void tokenizeRejectsLinesThatAreNotJsonStrings(@TempDir Path tmp) throws Exception {
        Path f = tmp.resolve("bad.jsonl");
        Files.writeString(f, "\"ok\"\n{\"prompt\": 1}\n");
        Run r = sd("tokenize", "--tokenizer", TestModels.resource("reference/tokenizer").toString(), "--jsonl", f.toString());
        assertEquals(2, r.code());
        assertTrue(r.err().contains("line 2"), r.err());
    }

    @Test
    void generateWritesPngsWithParametersAndPrintsTheSeed(@TempDir Path tmp) throws Exception {
        Path out = tmp.resolve("cat.png");
        Run r = sd("generate", "a cat", "--negative-prompt", "dog", "--steps", "2", "--seed", "42", "--count", "2",
                "--scheduler", "euler", "--model", tiny(), "--output", out.toString(), "--no-progress");
        assertEquals(0, r.code(), r.err());
        Path f1 = tmp.resolve("cat-1.png");
        Path f2 = tmp.resolve("cat-2.png");
        assertEquals("seed: 42\nsaved: " + f1 + "\nsaved: " + f2 + "\n", r.out().replace("\r", ""));
        List<Path> files = List.of(f1, f2);
        for (int i = 0; i < files.size(); i++) {
            Path f = files.get(i);
            // each image says how to get it again: the batch's seed and size, and its position in the batch
            String expected = "a cat\nNegative prompt: dog\nSteps: 2, Sampler: Euler, CFG scale: 7.5, Seed: 42, "
                    + "Size: 128x128, Model hash: " + ModelHashTest.expectedHash(TestModels.referenceTiny())
                    + ", Model: tiny-sd21-dev, Batch size: 2, Batch pos: " + i;
            byte[] png = Files.readAllBytes(f);
            assertEquals(expected, ImageFiles.readPngText(png).get("parameters"));
            BufferedImage img = ImageIO.read(f.toFile());
            assertEquals(128, img.getWidth());
            assertEquals(128, img.getHeight());
        }
        assertFalse(java.util.Arrays.equals(Files.readAllBytes(f1), Files.readAllBytes(f2)), "two different images");
    }

    /** stable-diffusion.cpp's short options, -p as well as the positional prompt, and --seed -1. */
    @Test
    void generateTakesStableDiffusionCppOptions(@TempDir Path tmp) throws Exception {
        Path out = tmp.resolve("short.png");
        Run r = sd("generate", "-p", "a cat", "-n", "dog", "--steps", "2", "-s", "-1", "-H", "64", "-W", "48",
                "-m", tiny(), "-t", "1", "-o", out.toString(), "--no-progress", "--sampling-method", "euler",
                "--cfg-scale", "5");
        assertEquals(0, r.code(), r.err());
        // the random seed is on stderr before the model loads, and it is the seed that ran and was written
        java.util.regex.Matcher m = java.util.regex.Pattern.compile("random seed: (\\d+)").matcher(r.err());
        assertTrue(m.find(), r.err());
        String seed = m.group(1);
        assertEquals("seed: " + seed + "\nsaved: " + out + "\n", r.out().replace("\r", ""));
        assertEquals("a cat\nNegative prompt: dog\nSteps: 2, Sampler: Euler, CFG scale: 5, Seed: " + seed
                + ", Size: 48x64, Model hash: " + ModelHashTest.expectedHash(TestModels.referenceTiny())
                + ", Model: tiny-sd21-dev", ImageFiles.readPngText(Files.readAllBytes(out)).get("parameters"));
        BufferedImage img = ImageIO.read(out.toFile());
        assertEquals(48, img.getWidth());
        assertEquals(64, img.getHeight());
        // a given seed is not announced as random
        r = sd("generate", "a cat", "--steps", "1", "-s", "3", "-m", tiny(), "-o", out.toString(), "--no-progress");
        assertEquals(0, r.code(), r.err());
        assertFalse(r.err().contains("random seed"), r.err());
        assertTrue(r.out().startsWith("seed: 3\n"), r.out());
    }

    @Test
    void thePromptIsGivenOnceEitherWay() {
        Run r = sd("generate", "a cat", "-p", "a dog", "--model", "/nonexistent");
        assertEquals(2, r.code());
        assertTrue(r.err().contains("the prompt is given twice") && r.err().contains("a dog"), r.err());
        r = sd("generate", "--steps", "2");
        assertEquals(2, r.code());
        assertTrue(r.err().contains("PROMPT") && r.err().contains("--prompt"), r.err());
        r = sd("generate", "a cat", "--seed", "-2", "--model", "/nonexistent");
        assertEquals(2, r.code());
        assertTrue(r.err().contains("--seed") && r.err().contains("-1 for a random seed"), r.err());
        // the short options are in the help text
        String help = sd("generate", "--help").out();
        for (String o : List.of("-p, --prompt", "-n, --negative-prompt", "-m, --model", "-H, --height", "-W, --width",
                "-s, --seed", "-i, --init-im", "-t, --threads", "-o, --output")) {
            assertTrue(help.contains(o), o + " in\n" + help);
        }
    }

    static String fixture() {
        return TestModels.resource("models/tiny-sd21-fp32").toString();
    }

    static String input(String name) {
        return TestModels.resource("reference/tasks/inputs/" + name).toString();
    }

    @Test
    void generateFromAnImageAndInpaintWriteTheStrengthIntoTheParameters(@TempDir Path tmp) throws Exception {
        Path out = tmp.resolve("i2i.png");
        Run r = sd("generate", "a red circle", "--init-image", input("start_133x100.png"), "--strength", "0.5",
                "--steps", "4", "--seed", "7", "--guidance", "5", "--model", fixture(), "--threads", "1", "-o",
                out.toString(), "--no-progress");
        assertEquals(0, r.code(), r.err());
        String hash = ModelHashTest.expectedHash(TestModels.resource("models/tiny-sd21-fp32"));
        assertEquals("a red circle\nSteps: 4, Sampler: DPM++ 2M, CFG scale: 5, Seed: 7, Size: 128x96, Model hash: "
                + hash + ", Model: tiny-sd21-fp32, Denoising strength: 0.5",
                ImageFiles.readPngText(Files.readAllBytes(out)).get("parameters"));
        BufferedImage img = ImageIO.read(out.toFile());
        assertEquals(128, img.getWidth(), "the image's size floored to a multiple of 8");
        assertEquals(96, img.getHeight());

        Path inp = tmp.resolve("inpaint.png");
        r = sd("generate", "a red circle", "--init-image", input("start_64.png"), "--mask", input("mask_64.png"),
                "--steps", "3", "--seed", "7", "--model", fixture(), "--threads", "1", "-o", inp.toString(),
                "--no-progress");
        assertEquals(0, r.code(), r.err());
        assertTrue(ImageFiles.readPngText(Files.readAllBytes(inp)).get("parameters")
                .endsWith("Size: 64x64, Model hash: " + hash + ", Model: tiny-sd21-fp32, Denoising strength: 1, "
                        + "Mask blur: 0"));
    }

    @Test
    void imageOptionErrorsAreUsageErrorsNamingTheField(@TempDir Path tmp) throws Exception {
        Path out = tmp.resolve("x.png");
        Path notImage = tmp.resolve("not.png");
        Files.writeString(notImage, "hello");
        String[][] cases = {
            {"mask_image", "--mask", input("mask_64.png")},
            {"strength", "--init-image", input("start_64.png"), "--strength", "1.5"},
            {"strength", "--strength", "0.5"},
            {"--init-image: no such file", "--init-image", tmp.resolve("missing.png").toString()},
            {"invalid image: ", "--init-image", notImage.toString()},
            {"invalid mask_image: the mask is 64x64 but the image is 133x100", "--init-image",
                input("start_133x100.png"), "--mask", input("mask_64.png")},
            {"compiled_models/vae_encoder.pt", "--init-image", input("start_64.png"), "--model", tiny()},
        };
        for (String[] c : cases) {
            List<String> args = new ArrayList<>(List.of("generate", "a cat", "--steps", "2", "-o", out.toString(),
                    "--no-progress"));
            args.addAll(List.of(c).subList(1, c.length));
            if (!args.contains("--model")) {
                args.addAll(List.of("--model", fixture()));
            }
            Run r = sd(args.toArray(new String[0]));
            assertEquals(2, r.code(), String.join(" ", c) + ": " + r.err());
            assertTrue(r.err().contains(c[0]), r.err());
            assertFalse(r.err().contains("\tat "), r.err());
        }
        assertFalse(Files.exists(out));
    }

    @Test
    void generateJpegWithProgressLines(@TempDir Path tmp) throws Exception {
        Path out = tmp.resolve("x.jpg");
        Run r = sd("generate", "a dog", "--steps", "2", "--model", tiny(), "--no-optimize", "--output", out.toString());
        assertEquals(0, r.code(), r.err());
        assertTrue(r.out().startsWith("seed: "), r.out());
        byte[] b = Files.readAllBytes(out);
        assertArrayEquals(new byte[] {(byte) 0xFF, (byte) 0xD8}, new byte[] {b[0], b[1]});
        // not a terminal here: plain progress lines on stderr, the last one says 2/2
        assertTrue(r.err().contains("step 2/2"), r.err());
    }

    @Test
    void anOutputDirectoryGetsNumberedFilesInsideAndAFullDiskIsNamed(@TempDir Path tmp) throws Exception {
        Path dir = Files.createDirectory(tmp.resolve("imgs"));
        Run r = sd("generate", "a dog", "--steps", "1", "--count", "2", "--model", tiny(), "--no-optimize",
                "--no-progress", "--output", dir + "/");
        assertEquals(0, r.code(), r.err());
        assertTrue(Files.isRegularFile(dir.resolve("out-1.png")) && Files.isRegularFile(dir.resolve("out-2.png")),
                r.out());
        try (var siblings = Files.list(tmp)) {
            assertEquals(1, siblings.count(), "nothing written beside the directory");
        }
        Run missing = sd("generate", "a dog", "--steps", "1", "--model", tiny(), "--output", tmp + "/nope/");
        assertEquals(2, missing.code());
        assertTrue(missing.err().contains("directory does not exist"), missing.err());
        Path full = Path.of("/dev/full");
        if (Files.isWritable(full)) {
            Run r2 = sd("generate", "a dog", "--steps", "1", "--model", tiny(), "--no-optimize", "--no-progress",
                    "--output", full.toString());
            assertEquals(1, r2.code(), r2.err());
            assertTrue(r2.err().contains("cannot write /dev/full: No space left on device"), r2.err());
            assertFalse(r2.err().contains("I/O error writing PNG"), r2.err());
        }
    }

    @Test
    void infoJson() throws Exception {
        Run quick = sd("info", "--model", tiny(), "--json", "--no-load");
        assertEquals(0, quick.code(), quick.err());
        JsonNode q = JSON.readTree(quick.out());
        assertEquals(128, q.path("height").asInt());
        assertEquals("PNDMScheduler", q.path("scheduler_config_class").asText());
        // cross_attention_dim 16 and SD 2.x's pad token "!": SD 2.x-like; requests default to DPM-Solver++
        assertEquals("SD2", q.path("family").asText(), q.path("family_evidence").asText());
        assertEquals("DPMSolverMultistepScheduler", q.path("default_scheduler").asText());
        assertEquals(4, q.path("artifacts").size());
        long sum = 0;
        for (JsonNode a : q.path("artifacts")) {
            long size = Files.size(TestModels.referenceTiny().resolve(a.path("file").asText()));
            assertEquals(size, a.path("bytes").asLong());
            sum += size;
        }
        assertEquals(sum, q.path("weights_bytes").asLong());

        Run loaded = sd("info", "--model", tiny(), "--json");
        assertEquals(0, loaded.code(), loaded.err());
        JsonNode l = JSON.readTree(loaded.out());
        assertTrue(l.path("loaded").asBoolean());
        assertEquals("cpu", l.path("backend").asText());
        JsonNode unet = null;
        for (JsonNode a : l.path("artifacts")) {
            if (a.path("role").asText().equals("unet")) {
                unet = a;
            }
        }
        // the reference tiny UNet is a float32 CPU trace (its README): dynamic batch
        assertEquals("float32", unet.path("dtype").asText());
        assertEquals("dynamic", unet.path("batch").asText());
        assertEquals("TorchScript CPU (compiled_models)", q.path("layout").asText());
        assertEquals("TorchScript CPU (compiled_models)", l.path("layout").asText());
        Run text = sd("info", "--model", tiny(), "--no-load");
        assertTrue(text.out().contains("compiled_models/unet.pt"), text.out());
        assertTrue(text.out().contains("layout:     TorchScript CPU (compiled_models)"), text.out());
        assertTrue(text.out().contains("family:     SD2 ("), text.out());
        String hash = ModelHashTest.expectedHash(TestModels.referenceTiny());
        assertEquals(hash, q.path("model_hash").asText());
        assertEquals(hash, l.path("model_hash").asText());
        assertTrue(text.out().contains("model hash " + hash), text.out());
    }

    /** Unknown facts are left out, never shown as null: a model without a manifest, and the embedded one (whose CPU
     *  manifest has no torch-neuronx or neuronx-cc version). */
    @Test
    void infoShowsNoNulls() throws Exception {
        for (String[] args : new String[][] {{"info", "--model", tiny(), "--no-load"}, {"info", "--no-load"},
            {"info", "--no-load", "--json"}, {"info", "--model", tiny(), "--no-load", "--json"}}) {
            Run r = sd(args);
            assertEquals(0, r.code(), r.err());
            assertFalse(r.out().contains("null"), String.join(" ", args) + "\n" + r.out());
        }
        Run embedded = sd("info", "--no-load");
        assertTrue(embedded.out().contains("manifest:   sdjvm-manifest/1, target cpu, created by "), embedded.out());
    }

    @Test
    void versionIsTheBuildsVersion() {
        String version = System.getProperty("sdjvm.version");
        assertTrue(version != null && !version.isEmpty(), "sdjvm.version is set by examples/pom.xml");
        Run r = sd("-V");
        assertEquals(0, r.code(), r.err());
        assertTrue(r.out().startsWith("sd (stable-diffusion-jvm) " + version + "\n"), r.out());
        assertTrue(r.out().contains("libtorch: org.bytedeco:pytorch "), r.out());
        assertFalse(r.out().contains("unknown"), r.out());
    }

    @Test
    void schedulersListsEveryNameAndHelpOnlyTheShortOnes() {
        Run r = sd("schedulers");
        assertEquals(0, r.code(), r.err());
        for (String name : dev.sdjvm.scheduler.Schedulers.names()) {
            assertTrue(r.out().toLowerCase(java.util.Locale.ROOT).contains(name.toLowerCase(java.util.Locale.ROOT)),
                    name + " listed\n" + r.out());
        }
        assertTrue(r.out().contains("dpm++2m-karras       DPMSolverMultistepScheduler      use_karras_sigmas=true"),
                r.out());
        String help = sd("generate", "--help").out();
        for (var a : dev.sdjvm.scheduler.Schedulers.aliases()) {
            assertTrue(help.contains(a.name()), a.name() + " in --help");
            for (String spelling : a.spellings()) {
                assertFalse(help.contains(spelling + ","), spelling + " is not in --help\n" + help);
            }
        }
        assertTrue(help.contains("sd schedulers"), help);
    }

    /** Every error is one line on stderr, checked before the model is loaded where it can be. */
    @Test
    void errorsAreOneLineAndCheckedBeforeTheGeneration(@org.junit.jupiter.api.io.TempDir java.nio.file.Path tmp)
            throws Exception {
        // an output nobody can write (/proc refuses new files, even for root) fails before the model loads
        long t0 = System.nanoTime();
        Run r = sd("generate", "a cat", "--steps", "1", "--model", tiny(), "-o", "/proc/sdjvm-out.png");
        assertEquals(2, r.code(), r.err());
        assertTrue(r.err().startsWith("error: output: cannot write to /proc"), r.err());
        assertEquals(1, r.err().strip().lines().count(), r.err());
        assertTrue((System.nanoTime() - t0) / 1e9 < 3, "before the load and the generation");
        // an existing directory is an output directory: out.png inside it
        r = sd("generate", "a cat", "--steps", "1", "--no-progress", "--model", tiny(), "-o", tmp.toString());
        assertEquals(0, r.code(), r.err());
        assertTrue(Files.isRegularFile(tmp.resolve("out.png")), r.out());
        // --threads beyond the CPUs (3000 hung a generation)
        r = sd("generate", "a cat", "--model", tiny(), "--threads", "3000", "-o", tmp.resolve("x.png").toString());
        assertEquals(2, r.code(), r.err());
        assertTrue(r.err().contains("--threads must be in 0.."), r.err());
        assertEquals(1, r.err().strip().lines().count(), r.err());
        r = sd("serve", "--model", tiny(), "--threads", "3000", "--port", "0");
        assertEquals(2, r.code(), r.err());
        // a manifest with absurd sizes: one line naming the file, no native backtrace
        java.nio.file.Path m = dev.sdjvm.TestModels.copy(dev.sdjvm.TestModels.resource("models/tiny-sd21-fp32"),
                tmp.resolve("m"));
        java.nio.file.Path mf = m.resolve("compiled_models/sdjvm-manifest.json");
        com.fasterxml.jackson.databind.node.ObjectNode n = (com.fasterxml.jackson.databind.node.ObjectNode)
                JSON.readTree(mf.toFile());
        n.put("height", 1_000_000_000);
        n.put("width", 1_000_000_000);
        JSON.writeValue(mf.toFile(), n);
        r = sd("generate", "a cat", "--model", m.toString(), "-o", tmp.resolve("y.png").toString());
        assertEquals(1, r.code(), r.err());
        assertEquals(1, r.err().strip().lines().count(), r.err());
        assertTrue(r.err().contains("sdjvm-manifest.json") && r.err().contains("height"), r.err());
        // and a request over the work budget is a usage error naming the limit
        r = sd("generate", "a cat", "--model", tiny(), "--height", "1024", "--width", "1024", "--steps", "1",
                "-o", tmp.resolve("z.png").toString());
        assertEquals(2, r.code(), r.err());
        assertTrue(r.err().contains("max_image_pixels"), r.err());
    }

    @Test
    void firstLineKeepsOneLine() {
        assertEquals("a", Main.firstLine("a\n  frame #0: 0x7f00 in /home/x/libc10.so"));
        assertEquals("", Main.firstLine(null));
    }
}
