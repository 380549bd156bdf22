package dev.sdjvm;

import dev.sdjvm.errors.InvalidRequestException;

/**
 * How {@link StableDiffusion#load(java.nio.file.Path, LoadOptions)} sets a model up.
 *
 * @param backend           where to run ({@link Backend#AUTO} by default)
 * @param threads           libtorch intra-op threads (process-wide), or 0 to keep libtorch's default
 * @param unetReplicas      UNet copies; with 2 and a batch-1 UNet, the uncond and cond halves of classifier-free
 *                          guidance run concurrently (AWS's {@code DataParallel(unet, [0, 1])}, on Neuron on two
 *                          NeuronCores); 0 (the default) = automatic: 2 on Neuron when the cores allow, 1 on the CPU
 * @param maxConcurrent     generations allowed to run at once; more wait (1 by default: one generation already
 *                          uses every core)
 * @param warmup            run every artifact once at load time, which checks that their shapes fit together and
 *                          finds dtype and batch of artifacts without a manifest (true by default)
 * @param pipelines         throughput mode: independent pipelines (each with its own modules; on Neuron each on its
 *                          own group of cores) serving concurrent requests, one request per pipeline at a time.
 *                          1 by default; with more than 1, {@code maxConcurrent} is ignored (it is the pipeline count)
 * @param limits            what one generation may cost, checked before any work ({@link RequestLimits#auto()}: derived
 *                          from the model and the machine); null = auto
 * @param optimize          CPU backend: rewrite the TorchScript graphs at load time for faster CPU inference (fused
 *                          scaled-dot-product attention for the traced attention, float32 compute for bfloat16 artifacts
 *                          on CPUs without bfloat16 instructions, channels-last convolutions; see
 *                          {@code docs/performance.md}). Results stay within the parity tolerances. True by default;
 *                          false runs the artifacts exactly as traced (for comparison). Ignored by the Neuron backends
 * @param cpu               CPU backend: how rewrites are chosen (measured on this CPU and cached, by default) and which
 *                          process-wide settings the library may make ({@link CpuOptions#defaults()}; the CLI and the
 *                          server use {@link CpuOptions#application()}); null = defaults
 */
public record LoadOptions(Backend backend, int threads, int unetReplicas, int maxConcurrent, boolean warmup,
                          int pipelines, RequestLimits limits, boolean optimize, CpuOptions cpu) {
    /**
     * Checks the options.
     *
     * @param backend       where to run, not null
     * @param threads       libtorch intra-op threads, &gt;= 0
     * @param unetReplicas  UNet copies, 1..64, or 0 for automatic
     * @param maxConcurrent generations at once, &gt;= 1
     * @param warmup        run every artifact once at load time
     * @param pipelines     independent pipelines, 1..64
     * @param limits        the work budget per request, not null
     * @param optimize      optimize the TorchScript graphs at load time (CPU backend)
     * @param cpu           CPU tuning and process settings, or null for {@link CpuOptions#defaults()}
     * @throws InvalidRequestException naming the first invalid option
     */
    public LoadOptions {
        if (backend == null) {
            throw new InvalidRequestException("backend", "must not be null");
        }
        if (threads < 0) {
            throw new InvalidRequestException("threads", "must be >= 0, got " + threads);
        }
        if (unetReplicas < 0 || unetReplicas > 64) {
            throw new InvalidRequestException("unetReplicas", "must be in 1..64, or 0 for automatic, got " + unetReplicas);
        }
        if (maxConcurrent < 1) {
            throw new InvalidRequestException("maxConcurrent", "must be >= 1, got " + maxConcurrent);
        }
        if (pipelines < 1 || pipelines > 64) {
            throw new InvalidRequestException("pipelines", "must be in 1..64, got " + pipelines);
        }
        limits = limits == null ? RequestLimits.auto() : limits;
        cpu = cpu == null ? CpuOptions.defaults() : cpu;
    }

    /** {@return the defaults: AUTO backend, libtorch's threads, automatic UNet replicas, one generation at a time, warm-up on, graph optimization on, {@link CpuOptions#defaults()}} */
    public static LoadOptions defaults() {
        return new LoadOptions(Backend.AUTO, 0, 0, 1, true, 1, RequestLimits.auto(), true, CpuOptions.defaults());
    }

    /**
     * {@return these options with another backend}
     *
     * @param b where to run
     */
    public LoadOptions withBackend(Backend b) {
        return new LoadOptions(b, threads, unetReplicas, maxConcurrent, warmup, pipelines, limits, optimize, cpu);
    }

    /**
     * {@return these options with another libtorch thread count}
     *
     * @param t libtorch intra-op threads (process-wide), or 0 for libtorch's default
     */
    public LoadOptions withThreads(int t) {
        return new LoadOptions(backend, t, unetReplicas, maxConcurrent, warmup, pipelines, limits, optimize, cpu);
    }

    /**
     * {@return these options with another number of UNet copies}
     *
     * @param r UNet copies, 1..64
     */
    public LoadOptions withUnetReplicas(int r) {
        return new LoadOptions(backend, threads, r, maxConcurrent, warmup, pipelines, limits, optimize, cpu);
    }

    /**
     * {@return these options with another number of concurrent generations}
     *
     * @param m generations allowed to run at once, &gt;= 1
     */
    public LoadOptions withMaxConcurrent(int m) {
        return new LoadOptions(backend, threads, unetReplicas, m, warmup, pipelines, limits, optimize, cpu);
    }

    /**
     * {@return these options with the load-time warm-up on or off}
     *
     * @param w run every artifact once at load time
     */
    public LoadOptions withWarmup(boolean w) {
        return new LoadOptions(backend, threads, unetReplicas, maxConcurrent, w, pipelines, limits, optimize, cpu);
    }

    /**
     * {@return these options with another number of independent pipelines (throughput mode)}
     *
     * @param p pipelines, 1..64
     */
    public LoadOptions withPipelines(int p) {
        return new LoadOptions(backend, threads, unetReplicas, maxConcurrent, warmup, p, limits, optimize, cpu);
    }

    /**
     * These options with another work budget.
     *
     * @param l the limits every {@code generate} checks before any work
     * @return the new options
     */
    public LoadOptions withLimits(RequestLimits l) {
        return new LoadOptions(backend, threads, unetReplicas, maxConcurrent, warmup, pipelines, l, optimize, cpu);
    }

    /**
     * {@return these options with the load-time graph optimization (CPU backend) on or off}
     *
     * @param o true: optimize the TorchScript graphs for CPU inference; false: run them exactly as traced
     */
    public LoadOptions withOptimize(boolean o) {
        return new LoadOptions(backend, threads, unetReplicas, maxConcurrent, warmup, pipelines, limits, o, cpu);
    }

    /**
     * {@return these options with other CPU tuning and process settings}
     *
     * @param c how rewrites are chosen and which process-wide settings are made, not null
     */
    public LoadOptions withCpu(CpuOptions c) {
        return new LoadOptions(backend, threads, unetReplicas, maxConcurrent, warmup, pipelines, limits, optimize,
                java.util.Objects.requireNonNull(c, "cpu"));
    }
}
