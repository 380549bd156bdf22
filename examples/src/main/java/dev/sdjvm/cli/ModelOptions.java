package dev.sdjvm.cli;

import dev.sdjvm.CpuOptions;
import dev.sdjvm.LoadOptions;
import dev.sdjvm.RequestLimits;
import dev.sdjvm.StableDiffusion;
import java.nio.file.Path;
import picocli.CommandLine.Option;

/** {@code --model}, {@code --backend}, {@code --threads}, {@code --unet-replicas}, {@code --pipelines} and the work budget: how a command loads its model. */
public final class ModelOptions {
    @Option(names = {"-m", "--model"}, paramLabel = "DIR",
            description = "Model directory (AWS's sd2_512_root layout). Default: the model embedded in the library.")
    Path model;

    @Option(names = {"-t", "--threads"}, paramLabel = "N", defaultValue = "0",
            description = "libtorch intra-op threads (0 = libtorch's default). Default: ${DEFAULT-VALUE}.")
    int threads;

    @Option(names = "--unet-replicas", paramLabel = "N", defaultValue = "${env:SDJVM_UNET_REPLICAS:-0}",
            description = "UNet copies per pipeline; 2 runs the two halves of classifier-free guidance concurrently (on "
                    + "two NeuronCores on Neuron). 0 = automatic: 2 on Neuron, 1 on the CPU. Environment: "
                    + "SDJVM_UNET_REPLICAS. Default: ${DEFAULT-VALUE}.")
    int unetReplicas;

    @Option(names = "--optimize", negatable = true, defaultValue = "true", fallbackValue = "true",
            description = "Optimize the TorchScript graphs at load time (CPU); --no-optimize runs them as traced. "
                    + "Default: ${DEFAULT-VALUE}.")
    boolean optimize;

    @Option(names = "--cpu-rewrites", paramLabel = "MODE", defaultValue = "measured",
            description = "With --optimize on the CPU: 'measured' keeps each graph rewrite only where it measured faster "
                    + "(and right) on this CPU, timed once per CPU and artifact and cached; 'all' makes every rewrite "
                    + "that applies. Default: ${DEFAULT-VALUE}.")
    String cpuRewrites;

    @Option(names = "--tuning-cache", paramLabel = "DIR",
            description = "Where measured rewrite decisions are cached ('none': measure at every load). Default: "
                    + "$XDG_CACHE_HOME/sdjvm or ~/.cache/sdjvm.")
    String tuningCache;

    @Option(names = "--pipelines", paramLabel = "N", defaultValue = "${env:SDJVM_PIPELINES:-1}",
            description = "Independent pipelines serving concurrent requests (throughput mode; on Neuron each on its own "
                    + "group of cores). Environment: SDJVM_PIPELINES. Default: ${DEFAULT-VALUE}.")
    int pipelines;

    @Option(names = "--backend", paramLabel = "B", defaultValue = "${env:SDJVM_BACKEND:-AUTO}",
            description = "AUTO, CPU or NEURON (each artifact's NEFF through libnrt). Environment: SDJVM_BACKEND. "
                    + "Default: ${DEFAULT-VALUE}.")
    dev.sdjvm.Backend backend;

    @Option(names = "--max-image-pixels", paramLabel = "N", defaultValue = "0",
            description = "Largest height x width of one image (0 = 4x the model's size). Default: ${DEFAULT-VALUE}.")
    long maxImagePixels;

    @Option(names = "--max-batch-pixels", paramLabel = "N", defaultValue = "0",
            description = "Largest height x width x images of one request (0 = from the machine's memory, at most 16x "
                    + "the model's size). Default: ${DEFAULT-VALUE}.")
    long maxBatchPixels;

    @Option(names = "--max-work", paramLabel = "N", defaultValue = "0",
            description = "Largest height x width x images x steps of one request (0 = 4 images of the model's size "
                    + "at 1000 steps). Default: ${DEFAULT-VALUE}.")
    long maxWork;

    @Option(names = "--max-steps", paramLabel = "N", defaultValue = "0",
            description = "Largest num_inference_steps (0 = 1000). Default: ${DEFAULT-VALUE}.")
    int maxSteps;

    @Option(names = "--max-images", paramLabel = "N", defaultValue = "0",
            description = "Largest num_images_per_prompt (0 = 16). Default: ${DEFAULT-VALUE}.")
    int maxImages;

    /** The work budget these options give (each 0 is derived from the model and the machine at check time). */
    public RequestLimits limits() {
        return RequestLimits.of(maxImagePixels, maxBatchPixels, maxWork, maxSteps, maxImages);
    }

    /**
     * {@code --threads} in 0..the CPUs available to this JVM: more libtorch threads than CPUs only slow it down, and
     * thousands made a generation hang (each OpenMP thread spins at every parallel region). Checked before the load.
     */
    public void checkThreads() {
        int cpus = Runtime.getRuntime().availableProcessors();
        if (threads < 0 || threads > cpus) {
            throw new dev.sdjvm.errors.InvalidRequestException("threads", "--threads must be in 0.." + cpus
                    + " (the CPUs available; 0 = libtorch's default), got " + threads);
        }
    }

    /** The load options with {@code maxConcurrent} generations. */
    public LoadOptions loadOptions(int maxConcurrent) {
        checkThreads();
        return LoadOptions.defaults().withBackend(backend).withThreads(threads).withUnetReplicas(unetReplicas)
                .withMaxConcurrent(maxConcurrent).withPipelines(pipelines).withLimits(limits())
                .withOptimize(optimize).withCpu(cpuOptions(cpuRewrites, tuningCache));
    }

    /**
     * The CPU options of the programs: {@link CpuOptions#application()} (the process only generates: huge pages, one
     * OpenBLAS thread and malloc_trim on, measured to help) with the rewrite mode and cache asked for.
     *
     * @param mode  "measured" or "all"
     * @param cache a directory, "none", or null for the default
     */
    public static CpuOptions cpuOptions(String mode, String cache) {
        CpuOptions c = CpuOptions.application();
        switch (mode == null ? "measured" : mode.toLowerCase(java.util.Locale.ROOT)) {
            case "measured" -> { }
            case "all" -> c = c.withMeasure(false);
            default -> throw new dev.sdjvm.errors.InvalidRequestException("cpu-rewrites",
                    "--cpu-rewrites must be 'measured' or 'all', got '" + mode + "'");
        }
        if (cache != null) {
            c = c.withTuningCache(cache.isBlank() || cache.equals("none") ? null : Path.of(cache));
        }
        return c;
    }

    /** {@return the pipelines asked for (throughput mode)} */
    public int pipelines() {
        return pipelines;
    }

    /** Loads the model (or the embedded default). */
    public StableDiffusion load(int maxConcurrent) {
        LoadOptions o = loadOptions(maxConcurrent);
        return model == null ? StableDiffusion.loadDefault(o) : StableDiffusion.load(model, o);
    }

    /** The model directory, or null for the embedded default. */
    public Path model() {
        return model;
    }
}
