package dev.sdjvm.bench;

import dev.sdjvm.tensor.Bf16;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.FloatBuffer;
import java.nio.ShortBuffer;
import java.util.SplittableRandom;
import java.util.concurrent.TimeUnit;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.Warmup;

/**
 * Bulk float32 &lt;-&gt; bfloat16 conversion throughput. Sizes: 1M elements and a [1,4,64,64] SD latent (16384).
 * Run: {@code mvn -o -q -Pbench -pl src/all -am test-compile exec:exec -Djmh.args="Bf16Bench -f 1 -wi 2 -i 3"}.
 */
@State(Scope.Thread)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MICROSECONDS)
@Warmup(iterations = 2, time = 1)
@Measurement(iterations = 3, time = 1)
@Fork(1)
public class Bf16Bench {

    @Param({"1048576", "16384"})
    public int size;

    private float[] floats;
    private float[] scratch;
    private short[] shorts;
    private FloatBuffer directFloats;
    private ShortBuffer directShorts;

    @Setup
    public void setup() {
        SplittableRandom r = new SplittableRandom(42);
        floats = new float[size];
        for (int i = 0; i < size; i++) {
            floats[i] = (float) (r.nextGaussian() * 3.0);
        }
        scratch = floats.clone();
        shorts = Bf16.fromFloat(floats);
        directFloats = ByteBuffer.allocateDirect(4 * size).order(ByteOrder.nativeOrder()).asFloatBuffer();
        directFloats.put(floats).flip();
        directShorts = ByteBuffer.allocateDirect(2 * size).order(ByteOrder.nativeOrder()).asShortBuffer();
    }

    @Benchmark
    public short[] floatArrayToBf16() {
        Bf16.fromFloat(floats, 0, shorts, 0, size);
        return shorts;
    }

    @Benchmark
    public float[] bf16ArrayToFloat() {
        Bf16.toFloat(shorts, 0, scratch, 0, size);
        return scratch;
    }

    @Benchmark
    public ShortBuffer directFloatToBf16() {
        directFloats.rewind();
        directShorts.clear();
        Bf16.fromFloat(directFloats, directShorts);
        return directShorts;
    }

    @Benchmark
    public FloatBuffer directBf16ToFloat() {
        directShorts.rewind();
        directFloats.clear();
        Bf16.toFloat(directShorts, directFloats);
        return directFloats;
    }

    @Benchmark
    public float[] roundInPlace() {
        Bf16.roundToBf16(scratch);
        return scratch;
    }

    /** Baseline: the per-element scalar method (NaN branch) in a plain loop. */
    @Benchmark
    public short[] scalarLoopToBf16() {
        float[] f = floats;
        short[] s = shorts;
        for (int i = 0; i < f.length; i++) {
            s[i] = Bf16.fromFloat(f[i]);
        }
        return s;
    }

    /**
     * Comparison: the same rounding with a branch-free NaN mask ({@code (0x7F800000 - |u|) >> 31}) instead of the
     * conditional that {@link Bf16} uses.
     */
    @Benchmark
    public short[] branchFreeToBf16() {
        float[] f = floats;
        short[] s = shorts;
        for (int i = 0; i < f.length; i++) {
            int u = Float.floatToRawIntBits(f[i]);
            int nan = (0x7F80_0000 - (u & 0x7FFF_FFFF)) >> 31;
            s[i] = (short) (((u + 0x7FFF + ((u >>> 16) & 1)) >>> 16) | nan);
        }
        return s;
    }
}
