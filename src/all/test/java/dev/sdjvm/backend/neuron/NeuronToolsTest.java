package dev.sdjvm.backend.neuron;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The Python tools: both answer --help without torch installed, and trace_cpu_sd21.py --manifest-only writes a
 * "sdjvm-manifest/1" manifest for a copy of the tiny CPU fixture whose shapes are the module contracts of the
 * fixture's README (text [1,77,16], latents [1,4,16,16], image [1,3,128,128]).
 */
class NeuronToolsTest {
    @TempDir
    Path tmp;

    record Result(int exit, String output) {}

    static Result run(List<String> cmd) throws IOException, InterruptedException {
        Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
        String out = new String(p.getInputStream().readAllBytes());
        if (!p.waitFor(300, TimeUnit.SECONDS)) {
            p.destroyForcibly();
            return new Result(-1, out);
        }
        return new Result(p.exitValue(), out);
    }

    static String python(String exe, boolean needTorch) {
        try {
            Result r = run(List.of(exe, "-c", needTorch ? "import torch" : "import argparse"));
            return r.exit() == 0 ? exe : null;
        } catch (IOException | InterruptedException e) {
            return null;
        }
    }

    @Test
    void helpWorksWithoutTorch() throws Exception {
        String py = python("python3", false);
        if (py == null) {
            System.out.println("SKIPPED: no python3 on PATH");
        }
        assumeTrue(py != null, "no python3 on PATH");
        for (String tool : new String[] {"../../tools/model/neuron_compile_sd21.py", "../../tools/model/trace_cpu_sd21.py"}) {
            Result r = run(List.of(py, tool, "--help"));
            assertEquals(0, r.exit(), r.output());
            assertTrue(r.output().contains("--out") && r.output().contains("sdjvm-manifest.json"), r.output());
        }
    }

    @Test
    void manifestOfTheTinyFixture() throws Exception {
        String py = python("/usr/bin/python3", true);
        if (py == null) {
            System.out.println("SKIPPED: /usr/bin/python3 with torch not available");
        }
        assumeTrue(py != null, "/usr/bin/python3 with torch not available");
        Path src = NeuronArchiveTest.FIXTURE.getParent();
        Path dst = tmp.resolve("model");
        List<Path> files = new ArrayList<>();
        try (Stream<Path> s = Files.walk(src)) {
            s.forEach(files::add);
        }
        for (Path f : files) {
            Path t = dst.resolve(src.relativize(f).toString());
            if (Files.isDirectory(f)) {
                Files.createDirectories(t);
            } else {
                Files.copy(f, t, StandardCopyOption.REPLACE_EXISTING);
            }
        }
        Result r = run(List.of(py, "../../tools/model/trace_cpu_sd21.py", "--manifest-only", "--out", dst.toString(), "--dtype",
                "fp32", "--threads", "1"));
        assertEquals(0, r.exit(), r.output());
        JsonNode m = new ObjectMapper().readTree(dst.resolve("compiled_models/sdjvm-manifest.json").toFile());
        assertEquals("sdjvm-manifest/1", m.get("format").asText());
        assertEquals("cpu", m.get("target").asText());
        assertEquals(128, m.get("height").asInt());
        assertEquals(128, m.get("width").asInt());
        assertTrue(m.get("torch").asText().startsWith("1.13"), m.get("torch").asText());
        JsonNode a = m.get("artifacts");
        assertEquals("[1,77,16]", a.at("/text_encoder/outputs/0/shape").toString());
        assertEquals("last_hidden_state", a.at("/text_encoder/outputs/0/name").asText());
        assertEquals("int64", a.at("/text_encoder/inputs/0/dtype").asText());
        assertTrue(a.at("/unet/batch").isNull(), "CPU trace: dynamic batch");
        assertEquals("[1,4,16,16]", a.at("/unet/outputs/0/shape").toString());
        assertEquals("float32", a.at("/unet/inputs/1/dtype").asText());
        assertEquals("[1]", a.at("/unet/inputs/1/shape").toString());
        assertEquals("[1,4,16,16]", a.at("/vae_post_quant_conv/outputs/0/shape").toString());
        assertEquals("[1,3,128,128]", a.at("/vae_decoder/outputs/0/shape").toString());
    }
}
