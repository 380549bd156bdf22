package dev.sdjvm.backend.neuron;

import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import org.bytedeco.pytorch.IValue;
import org.bytedeco.pytorch.IValueVector;
import org.bytedeco.pytorch.InferenceMode;
import org.bytedeco.pytorch.JitModule;
import org.bytedeco.pytorch.Scalar;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch;
import org.junit.jupiter.api.Test;

/**
 * On an Inferentia2 instance only: runs the Neuron-compiled SD 2.1 modules of the directory named by
 * {@code SDJVM_NEURON_MODEL} (the layout {@code tools/model/neuron_compile_sd21.py} writes) through libtorchneuron and
 * prints P50/P95 per module call, to compare with AWS's figures (docs/neuron.md). Skipped, with the reason printed,
 * without {@code /dev/neuron0} or without {@code SDJVM_NEURON_MODEL}.
 *
 * <p>The end-to-end generation P50/P95 needs the pipeline API ({@code dev.sdjvm.StableDiffusion}), which was not on
 * main when this test was written; until then it times the modules that make up a generation (20 UNet steps +
 * text encoder + VAE) through our own platform detection and loading path.
 */
class NeuronDeviceTest {
    private static void skipUnless(boolean condition, String reason) {
        if (!condition) {
            System.out.println("SKIPPED NeuronDeviceTest: " + reason);
        }
        assumeTrue(condition, reason);
    }

    @Test
    void runsCompiledModulesOnNeuronCores() throws Exception {
        skipUnless(Files.exists(Path.of("/dev/neuron0")), "no /dev/neuron0: not an Inferentia2/Trainium instance");
        String model = System.getenv("SDJVM_NEURON_MODEL");
        skipUnless(model != null && Files.isDirectory(Path.of(model)),
                "SDJVM_NEURON_MODEL does not name a compiled model directory (tools/model/neuron_compile_sd21.py output)");
        Path dir = Path.of(model).resolve("compiled_models");
        NeuronPlatform platform = NeuronPlatform.detect();
        System.out.println(platform);
        platform.requireAvailable();
        assertTrue(NeuronPlatform.isNeuronCompiled(dir.resolve("unet.pt")), "unet.pt is Neuron-compiled");
        platform.loadTorchNeuron();

        JsonNode manifest = Files.isRegularFile(dir.resolve("sdjvm-manifest.json"))
                ? new ObjectMapper().readTree(dir.resolve("sdjvm-manifest.json").toFile()) : null;
        int iters = Integer.parseInt(System.getenv().getOrDefault("SDJVM_NEURON_ITERS", "40"));
        try (InferenceMode guard = new InferenceMode(true)) {
            time("unet", dir, manifest, iters, List.of(
                    bf16(torch.randn(shape(manifest, "unet", 0, 1, 4, 64, 64))),
                    bf16(torch.ones(shape(manifest, "unet", 1, 1)).mul(new Scalar(999.0))),
                    bf16(torch.randn(shape(manifest, "unet", 2, 1, 77, 1024)))));
            time("text_encoder", dir, manifest, iters, List.of(
                    torch.ones(1, 77).mul(new Scalar(0)).toType(torch.ScalarType.Long)));
            time("vae_post_quant_conv", dir, manifest, iters, List.of(torch.randn(1, 4, 64, 64)));
            time("vae_decoder", dir, manifest, Math.max(5, iters / 4), List.of(torch.randn(1, 4, 64, 64)));
        }
    }

    private static Tensor bf16(Tensor t) {
        return t.toType(torch.ScalarType.BFloat16);
    }

    private static long[] shape(JsonNode manifest, String artifact, int input, long... dflt) {
        if (manifest == null) {
            return dflt;
        }
        JsonNode s = manifest.path("artifacts").path(artifact).path("inputs").path(input).path("shape");
        if (!s.isArray()) {
            return dflt;
        }
        long[] out = new long[s.size()];
        for (int i = 0; i < out.length; i++) {
            out[i] = s.get(i).asLong();
        }
        return out;
    }

    private static void time(String name, Path dir, JsonNode manifest, int iters, List<Tensor> inputs) {
        Path f = dir.resolve(name + ".pt");
        if (!Files.isRegularFile(f)) {
            System.out.println(name + ": " + f + " missing, not timed");
            return;
        }
        long t0 = System.nanoTime();
        JitModule m = torch.load(f.toString());
        System.out.printf("%s: loaded in %.1f s%n", name, (System.nanoTime() - t0) / 1e9);
        IValueVector args = new IValueVector();
        for (Tensor t : inputs) {
            args.push_back(new IValue(t));
        }
        for (int i = 0; i < 3; i++) {
            m.forward(args); // warm-up (lazy/async model load on the NeuronCore)
        }
        double[] ms = new double[iters];
        for (int i = 0; i < iters; i++) {
            long s = System.nanoTime();
            IValue out = m.forward(args);
            ms[i] = (System.nanoTime() - s) / 1e6;
            assertTrue(out != null);
        }
        Arrays.sort(ms);
        System.out.printf("%s: %d calls, P50 %.2f ms, P95 %.2f ms, min %.2f ms%n", name, iters,
                ms[(int) Math.floor(0.50 * (iters - 1))], ms[(int) Math.ceil(0.95 * (iters - 1))], ms[0]);
    }
}
