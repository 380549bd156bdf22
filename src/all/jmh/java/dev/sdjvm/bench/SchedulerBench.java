package dev.sdjvm.bench;

import dev.sdjvm.scheduler.Scheduler;
import dev.sdjvm.scheduler.Schedulers;
import java.util.Map;
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
 * One scheduler step over a [1,4,64,64] latent (SD 2.1-base at 512x512), in place, SD 2.1-base's scheduler config.
 * The schedule is 1000 steps long and restarted every 998 steps (amortized, &lt; 0.1% of the time), so the
 * measured step is almost always the steady-state multistep update.
 *
 * <pre>mvn -o -q -Pbench -pl src/all -am test-compile exec:exec -Djmh.args="SchedulerBench -f 1 -wi 2 -i 3"</pre>
 */
@State(Scope.Thread)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MICROSECONDS)
@Warmup(iterations = 2, time = 1)
@Measurement(iterations = 3, time = 1)
@Fork(1)
public class SchedulerBench {
    @Param({"dpm++2m", "euler", "unipc"})
    public String scheduler;

    private Scheduler s;
    private double[] timesteps;
    private float[] sample;
    private float[] eps;
    private int k;

    @Setup
    public void setup() {
        Map<String, Object> sd21Base = Map.of("_class_name", "PNDMScheduler", "beta_start", 0.00085, "beta_end",
                0.012, "beta_schedule", "scaled_linear", "num_train_timesteps", 1000, "prediction_type", "epsilon",
                "set_alpha_to_one", false, "skip_prk_steps", true, "steps_offset", 1, "clip_sample", false);
        s = Schedulers.create(scheduler, sd21Base, Map.of());
        s.setTimesteps(1000);
        timesteps = s.timesteps();
        SplittableRandom r = new SplittableRandom(0);
        sample = new float[4 * 64 * 64];
        eps = new float[sample.length];
        for (int i = 0; i < sample.length; i++) {
            sample[i] = (float) r.nextGaussian();
            eps[i] = (float) r.nextGaussian();
        }
        k = 0;
    }

    @Benchmark
    public float step() {
        if (k == timesteps.length - 2) {
            s.setTimesteps(1000);
            k = 0;
        }
        double t = timesteps[k++];
        s.step(eps, t, sample, sample);
        // keep the sample bounded (the fake model output does not denoise)
        return sample[0];
    }
}
