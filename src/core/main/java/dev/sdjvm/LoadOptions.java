package dev.sdjvm;

import dev.sdjvm.errors.InvalidRequestException;

/**
 * How {@link StableDiffusion#load(java.nio.file.Path, LoadOptions)} sets a model up.
 *
 * <p>Immutable; made by {@link #defaults()} and changed by the {@code with*} methods (there is no public constructor,
 * so options can be added without breaking callers). Equal when all options are.
 */
public final class LoadOptions {
    private final Backend backend;
    private final int threads;
    private final int unetReplicas;
    private final int maxConcurrent;
    private final boolean warmup;
    private final int pipelines;
    private final RequestLimits limits;
    private final boolean optimize;
    private final CpuOptions cpu;

    private LoadOptions(Backend backend, int threads, int unetReplicas, int maxConcurrent, boolean warmup,
                        int pipelines, RequestLimits limits, boolean optimize, CpuOptions cpu) {
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
        this.backend = backend;
        this.threads = threads;
        this.unetReplicas = unetReplicas;
        this.maxConcurrent = maxConcurrent;
        this.warmup = warmup;
        this.pipelines = pipelines;
        this.limits = limits == null ? RequestLimits.auto() : limits;
        this.optimize = optimize;
        this.cpu = cpu == null ? CpuOptions.defaults() : cpu;
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

    /**
     * {@return where to run ({@link Backend#AUTO} by default)}
     */
    public Backend backend() {
        return backend;
    }

    /**
     * {@return libtorch intra-op threads (process-wide), or 0 to keep libtorch's default}
     */
    public int threads() {
        return threads;
    }

    /**
     * {@return UNet copies; with 2 and a batch-1 UNet, the uncond and cond halves of classifier-free guidance run
     * concurrently (AWS's {@code DataParallel(unet, [0, 1])}, on Neuron on two NeuronCores); 0 (the default) =
     * automatic: 2 on Neuron when the cores allow, 1 on the CPU}
     */
    public int unetReplicas() {
        return unetReplicas;
    }

    /**
     * {@return generations allowed to run at once; more wait (1 by default: one generation already uses every core)}
     */
    public int maxConcurrent() {
        return maxConcurrent;
    }

    /**
     * {@return run every artifact once at load time, which checks that their shapes fit together and finds dtype and
     * batch of artifacts without a manifest (true by default)}
     */
    public boolean warmup() {
        return warmup;
    }

    /**
     * {@return throughput mode: independent pipelines (each with its own modules; on Neuron each on its own group of
     * cores) serving concurrent requests, one request per pipeline at a time. 1 by default; with more than 1, {@code
     * maxConcurrent} is ignored (it is the pipeline count)}
     */
    public int pipelines() {
        return pipelines;
    }

    /**
     * {@return what one generation may cost, checked before any work ({@link RequestLimits#auto()}: derived from the
     * model and the machine); null = auto}
     */
    public RequestLimits limits() {
        return limits;
    }

    /**
     * {@return CPU backend: rewrite the TorchScript graphs at load time for faster CPU inference (fused
     * scaled-dot-product attention for the traced attention, float32 compute for bfloat16 artifacts on CPUs without
     * bfloat16 instructions, channels-last convolutions; see {@code docs/performance.md}). Results stay within the
     * parity tolerances. True by default; false runs the artifacts exactly as traced (for comparison). Ignored by the
     * Neuron backends}
     */
    public boolean optimize() {
        return optimize;
    }

    /**
     * {@return CPU backend: how rewrites are chosen (measured on this CPU and cached, by default) and which
     * process-wide settings the library may make ({@link CpuOptions#defaults()}; the CLI and the server use {@link
     * CpuOptions#application()}); null = defaults}
     */
    public CpuOptions cpu() {
        return cpu;
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof LoadOptions l && l.backend == backend && l.threads == threads
                && l.unetReplicas == unetReplicas && l.maxConcurrent == maxConcurrent && l.warmup == warmup
                && l.pipelines == pipelines && l.limits.equals(limits) && l.optimize == optimize && l.cpu.equals(cpu);
    }

    @Override
    public int hashCode() {
        return java.util.Objects.hash(backend, threads, unetReplicas, maxConcurrent, warmup, pipelines, limits, optimize,
                cpu);
    }

    @Override
    public String toString() {
        return "LoadOptions[backend=" + backend + ", threads=" + threads + ", unetReplicas=" + unetReplicas
                + ", maxConcurrent=" + maxConcurrent + ", warmup=" + warmup + ", pipelines=" + pipelines + ", limits="
                + limits + ", optimize=" + optimize + ", cpu=" + cpu + "]";
    }
}
