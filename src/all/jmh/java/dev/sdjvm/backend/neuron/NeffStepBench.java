package dev.sdjvm.backend.neuron;

import dev.sdjvm.GenerationRequest;
import dev.sdjvm.LoadOptions;
import dev.sdjvm.StableDiffusion;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;

/**
 * The Java side of a denoising step on the NEFF path, at Stable Diffusion 2.1-base's 512x512 sizes (latents
 * 4x64x64, text embeddings 77x1024, bf16 UNet I/O), through the simulated Neuron runtime with one or two UNet replicas:
 * generations of 1 and 21 steps; (t21 - t1) / 20 is the cost of one step, which is the Java work (scale input, bf16
 * conversion, tensor writes/reads, execute calls on two threads, CFG, DPM-Solver++ step) plus the simulator's own
 * compute. The simulator's compute per step (its {@code exec_ns_total}) is printed at tear-down and subtracted in the
 * README's figure.
 *
 * <pre>mvn -Pbench -pl src/all -am test-compile exec:exec -Djmh.args="NeffStepBench -f 1 -wi 5 -i 10"</pre>
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MICROSECONDS)
public class NeffStepBench {
    @Param({"1", "21"})
    public int steps;

    /** 1: the CFG halves run one after the other on the calling thread, so (t21 - t1) / 20 minus the simulator's
     *  compute per step is exactly the Java side; 2: the halves on two cores from two threads (AWS's placement). */
    @Param({"1", "2"})
    public int replicas;

    private Path dir;
    private StableDiffusion sd;
    private GenerationRequest request;
    private long execNs;
    private long executes;
    private long runs;

    @Setup(Level.Trial)
    public void setUp() throws Exception {
        NrtSim.library();
        NrtSim.reset();
        dir = SimModels.sd21(Files.createTempDirectory("neff-bench"), 0);
        sd = StableDiffusion.load(dir, LoadOptions.defaults().withUnetReplicas(replicas));
        request = GenerationRequest.builder("a photo of an astronaut riding a horse on mars").steps(steps)
                .guidanceScale(7.5).seed(1L).build();
    }

    @Setup(Level.Iteration)
    public void resetCounters() {
        NrtSim.control().nrtsim_reset_stats();
        runs = 0;
    }

    @Benchmark
    public Object generate() {
        runs++;
        return sd.generate(request).latents();
    }

    @TearDown(Level.Iteration)
    public void collect() {
        var s = NrtSim.stats();
        execNs += s.get("exec_ns_total");
        executes += s.get("executes");
        System.out.printf("%n[steps %d replicas %d] simulator compute: %.1f us per generation (%d executes)%n", steps, replicas,
                s.get("exec_ns_total") / 1e3 / Math.max(1, runs), s.get("executes") / Math.max(1, runs));
    }

    @TearDown(Level.Trial)
    public void tearDown() throws Exception {
        sd.close();
        try (var w = Files.walk(dir)) {
            w.sorted(java.util.Comparator.reverseOrder()).forEach(p -> p.toFile().delete());
        }
    }
}
