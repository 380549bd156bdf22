package dev.sdjvm.tensor;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import org.bytedeco.javacpp.FloatPointer;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.javacpp.ShortPointer;
import org.bytedeco.pytorch.Generator;
import org.bytedeco.pytorch.GeneratorOptional;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * Cross-checks {@link TorchGenerator} and {@link Bf16} against the libtorch the library runs on (JavaCPP
 * {@code org.bytedeco:pytorch}), in this JVM: {@code torch::randn} with a CPU generator, and
 * {@code Tensor.to(kBFloat16)}. The torch 1.13 fixtures pin the reference behaviour; this test shows the runtime
 * libtorch (2.10 at the time of writing, CPU capability printed to the test output) agrees. Skipped with a reason
 * when the native library cannot be loaded on this platform.
 */
class LibtorchCrossCheckTest {

    @BeforeAll
    static void loadLibtorch() {
        String capability;
        try {
            capability = torch.get_cpu_capability().getString();
        } catch (Throwable t) {
            Assumptions.abort("libtorch native library not loadable here: " + t);
            return;
        }
        System.out.println("libtorch CPU capability: " + capability);
    }

    private static float[] values(Tensor t) {
        Tensor c = t.contiguous();
        float[] out = new float[(int) c.numel()];
        c.data_ptr_float().get(out);
        return out;
    }

    @Test
    void randnMatchesLibtorchBitForBit() {
        long[][] shapes = {{1}, {3}, {15}, {16}, {17}, {100}, {1, 4, 16, 16}, {1, 4, 64, 64}, {2}, {1, 4, 64, 64},
            {5}, {33}};
        List<String> failures = new ArrayList<>();
        int compared = 0;
        try (PointerScope scope = new PointerScope()) {
            for (long seed : new long[] {0, 7, 42, (1L << 32) + 5, 1234567890123456789L, -1L, 2023}) {
                Generator g = torch.make_generator_cpu(seed);
                TorchGenerator mine = new TorchGenerator(seed);
                // one generator through all shapes: consecutive draws, the numel<16 cache carried across calls
                for (long[] shape : shapes) {
                    float[] ref = values(torch.randn(shape, new GeneratorOptional(g)));
                    float[] got = new float[ref.length];
                    mine.randn(got);
                    int bad = 0;
                    for (int i = 0; i < ref.length; i++) {
                        bad += Float.floatToRawIntBits(ref[i]) != Float.floatToRawIntBits(got[i]) ? 1 : 0;
                    }
                    compared += ref.length;
                    if (bad > 0) {
                        failures.add("seed " + Long.toUnsignedString(seed) + " numel " + ref.length + ": " + bad
                                + " differ");
                    }
                }
            }
        }
        assertTrue(failures.isEmpty(), String.join("\n", failures));
        assertTrue(compared > 200_000);
    }

    @Test
    void bf16ConversionMatchesLibtorch() {
        SplittableRandom r = new SplittableRandom(7);
        int n = 1 << 16;
        float[] src = new float[n];
        for (int i = 0; i < n; i++) {
            int bits = r.nextInt();
            if (i % 3 == 0) {
                bits = (bits & 0xFFFF_0000) | 0x8000; // exact ties
            }
            src[i] = Float.intBitsToFloat(bits);
        }
        try (PointerScope scope = new PointerScope()) {
            FloatPointer fp = new FloatPointer(src);
            Tensor f = torch.from_blob(fp, new long[] {n});
            Tensor b = f.to(torch.ScalarType.BFloat16).contiguous();
            short[] ref = new short[n];
            new ShortPointer(b.data_ptr()).get(ref);
            short[] got = Bf16.fromFloat(src);
            for (int i = 0; i < n; i++) {
                int bits = Float.floatToRawIntBits(src[i]);
                assertEquals(ref[i], got[i], () -> String.format("float bits 0x%08x", bits));
            }
            float[] back = values(b.to(torch.ScalarType.Float));
            float[] mine = Bf16.toFloat(got);
            for (int i = 0; i < n; i++) {
                assertEquals(Float.floatToRawIntBits(back[i]), Float.floatToRawIntBits(mine[i]));
            }
        }
    }
}
