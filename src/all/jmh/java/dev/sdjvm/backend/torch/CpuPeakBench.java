package dev.sdjvm.backend.torch;

import java.util.concurrent.TimeUnit;
import org.bytedeco.pytorch.InferenceMode;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorOptional;
import org.bytedeco.pytorch.global.torch;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;
import org.openjdk.jmh.annotations.Warmup;

/**
 * What this CPU can do through libtorch, the bound for the CPU figures in {@code docs/performance.md}: a float32 3x3
 * convolution in channels-last (the VAE decoder's and the UNet's convolutions; {@code shape} = channels x side) and
 * a float32 4096^3 matmul and a bfloat16 1024^3 one, on libtorch's intra-op threads ({@code -Dsdjvm.threads=N}, default libtorch's).
 * GFLOP/s = 2 x C x C x 9 x side^2 / time for the convolution, 2 x n^3 / time for the matmuls.
 * Run: {@code mvn -Pbench -pl src/all -am test-compile exec:exec -Djmh.args="CpuPeakBench -f 1 -wi 1 -i 3"}.
 */
@State(Scope.Thread)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MILLISECONDS)
@Warmup(iterations = 1, time = 2)
@Measurement(iterations = 3, time = 2)
@Fork(1)
public class CpuPeakBench {

    /** channels x side of the convolution's input [1, C, side, side]. */
    @Param({"128x512", "256x256", "512x128"})
    public String shape;

    private Tensor x;
    private Tensor w;
    private Tensor bias;
    private Tensor a;
    private Tensor b;
    private Tensor a16;
    private Tensor b16;
    private InferenceMode mode;

    @Setup(Level.Trial)
    public void setup() {
        Torch.load();
        int threads = Integer.getInteger("sdjvm.threads", 0);
        if (threads > 0) {
            Torch.setNumThreads(threads);
        }
        mode = new InferenceMode();
        String[] p = shape.split("x");
        long c = Long.parseLong(p[0]);
        long side = Long.parseLong(p[1]);
        x = torch.randn(new long[] {1, c, side, side}).contiguous(torch.MemoryFormat.ChannelsLast);
        w = torch.randn(new long[] {c, c, 3, 3}).contiguous(torch.MemoryFormat.ChannelsLast);
        bias = torch.randn(new long[] {c});
        a = torch.randn(new long[] {4096, 4096});
        b = torch.randn(new long[] {4096, 4096});
        a16 = torch.randn(new long[] {1024, 1024}).to(torch.ScalarType.BFloat16);
        b16 = torch.randn(new long[] {1024, 1024}).to(torch.ScalarType.BFloat16);
    }

    @TearDown(Level.Trial)
    public void tearDown() {
        for (Tensor t : new Tensor[] {x, w, bias, a, b, a16, b16}) {
            t.close();
        }
        mode.close();
    }

    @Benchmark
    public long conv3x3Float32ChannelsLast() {
        try (TensorOptional bo = new TensorOptional(bias);
             Tensor y = torch.conv2d(x, w, bo, new long[] {1, 1}, new long[] {1, 1}, new long[] {1, 1}, 1)) {
            return y.numel();  // freed at once: the outputs are up to 134 MB each
        }
    }

    /** bf16 1024^3 matmul: native speed on CPUs with bf16 instructions, libtorch's scalar fallback without. */
    @Benchmark
    public long matmul1024Bfloat16() {
        try (Tensor y = torch.mm(a16, b16)) {
            return y.numel();
        }
    }

    @Benchmark
    public long matmul4096Float32() {
        try (Tensor y = torch.mm(a, b)) {
            return y.numel();
        }
    }
}
