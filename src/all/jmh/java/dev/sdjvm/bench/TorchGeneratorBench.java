package dev.sdjvm.bench;

import dev.sdjvm.tensor.TorchGenerator;
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
 * {@code torch.randn} reimplementation throughput: a [1,4,64,64] latent (16384) and a [1,4,96,96] one (36864).
 * Run: {@code java -cp target/test-classes:target/classes:$(cat target/test-classpath.txt) org.openjdk.jmh.Main
 * TorchGeneratorBench -f 1 -wi 3 -i 5 -w 1 -r 1}.
 */
@State(Scope.Thread)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MICROSECONDS)
@Warmup(iterations = 2, time = 1)
@Measurement(iterations = 3, time = 1)
@Fork(1)
public class TorchGeneratorBench {

    @Param({"16384", "36864"})
    public int size;

    private TorchGenerator generator;
    private float[] out;

    @Setup
    public void setup() {
        generator = new TorchGenerator(42);
        out = new float[size];
    }

    @Benchmark
    public float[] randn() {
        generator.randn(out);
        return out;
    }
}
