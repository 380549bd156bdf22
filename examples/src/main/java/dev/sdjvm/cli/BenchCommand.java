package dev.sdjvm.cli;

import dev.sdjvm.LoadOptions;
import dev.sdjvm.StableDiffusion;
import dev.sdjvm.bench.Benchmark;
import dev.sdjvm.bench.HttpTarget;
import dev.sdjvm.bench.LibraryTarget;
import java.io.PrintWriter;
import java.net.URI;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.ParameterException;
import picocli.CommandLine.Spec;

/** {@code sd bench}: AWS's latency/cost table for whatever hardware this runs on. */
@Command(name = "bench", mixinStandardHelpOptions = true,
        description = {"Benchmarks generation: per (precision, steps) row P50/P90/P95/P99 latency, QPS single-stream "
                + "and under --concurrency clients, cost per 10 000 images at --price-per-hour, seconds and Java "
                + "overhead per step, load time, peak RSS vs weight bytes.",
                "Mode library: in this process (one row group per --model). Mode http: against a running "
                        + "'sd serve' at --url (as AWS measured with invoke_endpoint).",
                "Prints a Markdown table on stdout; --json FILE writes the numbers."})
public final class BenchCommand implements Callable<Integer> {
    /** The default price: the figure AWS's Inferentia2 SD table implies for inf2.xlarge (USD per hour). */
    public static final double DEFAULT_PRICE = 1.97;

    @Spec
    CommandSpec spec;

    @Option(names = "--mode", paramLabel = "library|http", defaultValue = "library",
            description = "library (in-process) or http. Default: ${DEFAULT-VALUE}.")
    String mode;

    @Option(names = {"-m", "--model"}, paramLabel = "DIR",
            description = "Model directory (repeatable: one row group each, e.g. an fp32 and a bf16 export). "
                    + "Default: the embedded model.")
    List<Path> models;

    @Option(names = "--url", paramLabel = "URL", defaultValue = "http://127.0.0.1:8080",
            description = "Server base URL for --mode http. Default: ${DEFAULT-VALUE}.")
    URI url;

    @Option(names = "--steps", paramLabel = "N[,N...]", split = ",", defaultValue = "20,30,50",
            description = "Step counts, one row each. Default: ${DEFAULT-VALUE}.")
    List<Integer> steps;

    @Option(names = "--runs", paramLabel = "N", defaultValue = "10",
            description = "Measured requests per row (and again under concurrency). Default: ${DEFAULT-VALUE}.")
    int runs;

    @Option(names = "--warmup", paramLabel = "N", defaultValue = "1",
            description = "Unmeasured requests before each row. Default: ${DEFAULT-VALUE}.")
    int warmup;

    @Option(names = "--concurrency", paramLabel = "N", defaultValue = "2",
            description = "Clients at once for the throughput column. Default: ${DEFAULT-VALUE}.")
    int concurrency;

    @Option(names = "--price-per-hour", paramLabel = "USD", defaultValue = "" + DEFAULT_PRICE,
            description = "Instance price for the cost column. Default: ${DEFAULT-VALUE} (see docs/programs.md).")
    double price;

    @Option(names = {"-p", "--prompt"}, paramLabel = "TEXT", defaultValue = "a photo of an astronaut riding a horse on mars",
            description = "Prompt. Default: '${DEFAULT-VALUE}'.")
    String prompt;

    @Option(names = "--guidance", paramLabel = "SCALE", defaultValue = "7.5", description = "Guidance scale. Default: ${DEFAULT-VALUE}.")
    double guidance;

    @Option(names = {"-s", "--seed"}, paramLabel = "N", defaultValue = "0", description = "First seed (request i: seed+i). Default: ${DEFAULT-VALUE}.")
    long seed;

    @Option(names = {"-t", "--threads"}, paramLabel = "N", defaultValue = "0", description = "libtorch threads (library mode). Default: libtorch's.")
    int threads;

    @Option(names = "--unet-replicas", paramLabel = "N", defaultValue = "1", description = "UNet copies (library mode). Default: ${DEFAULT-VALUE}.")
    int unetReplicas;

    @Option(names = "--optimize", negatable = true, defaultValue = "true", fallbackValue = "true",
            description = "Optimize the TorchScript graphs at load time (library mode; LoadOptions.optimize). "
                    + "--no-optimize runs them as traced. Default: ${DEFAULT-VALUE}.")
    boolean optimize;

    @Option(names = "--cpu-rewrites", paramLabel = "MODE", defaultValue = "measured",
            description = "With --optimize (library mode): 'measured' keeps each rewrite only where it measured faster "
                    + "on this CPU (cached); 'all' makes every applicable rewrite. Default: ${DEFAULT-VALUE}.")
    String cpuRewrites;

    @Option(names = "--tuning-cache", paramLabel = "DIR",
            description = "Where measured rewrite decisions are cached ('none': measure at every load; library mode).")
    String tuningCache;

    @Option(names = "--load-warmup", negatable = true, defaultValue = "true", fallbackValue = "true",
            description = "Run every artifact once while loading (library mode; LoadOptions.warmup), which the Load "
                    + "column then includes; --no-load-warmup times the load alone. Default: ${DEFAULT-VALUE}.")
    boolean loadWarmup;

    @Option(names = {"-H", "--height"}, paramLabel = "PX", description = "Image height (library mode; CPU-traced models take other sizes). Default: the model's.")
    Integer height;

    @Option(names = {"-W", "--width"}, paramLabel = "PX", description = "Image width (library mode). Default: the model's.")
    Integer width;

    @Option(names = "--timeout", paramLabel = "DURATION", defaultValue = "600s", converter = Durations.class,
            description = "HTTP request timeout (http mode). Default: ${DEFAULT-VALUE}.")
    Duration timeout;

    @Option(names = "--json", paramLabel = "FILE", description = "Also write the results as JSON.")
    Path json;

    @Option(names = "--verbose", description = "Log at INFO level.")
    boolean verbose;

    @Override
    public Integer call() throws Exception {
        Benchmark.Config cfg;
        try {
            cfg = new Benchmark.Config(steps, runs, warmup, concurrency, price, prompt, guidance, seed);
        } catch (IllegalArgumentException e) {
            throw new ParameterException(spec.commandLine(), e.getMessage());
        }
        PrintWriter out = spec.commandLine().getOut();
        PrintWriter err = spec.commandLine().getErr();
        List<Benchmark.Row> rows = new ArrayList<>();
        switch (mode.toLowerCase(java.util.Locale.ROOT)) {
            case "library": {
                List<Path> dirs = models == null || models.isEmpty() ? List.of(StableDiffusion.defaultModelPath()) : models;
                for (Path dir : dirs) {
                    // a benchmark measures the sizes it is asked for: no work budget beyond steps and images
                    LoadOptions o = LoadOptions.defaults().withThreads(threads).withUnetReplicas(unetReplicas)
                            .withMaxConcurrent(concurrency).withLimits(dev.sdjvm.RequestLimits.of(Long.MAX_VALUE,
                                    Long.MAX_VALUE, Long.MAX_VALUE, 0, 0)).withOptimize(optimize).withWarmup(loadWarmup)
                            .withCpu(ModelOptions.cpuOptions(cpuRewrites, tuningCache));
                    long t0 = System.nanoTime();
                    StableDiffusion sd = StableDiffusion.load(dir, o);
                    double load = (System.nanoTime() - t0) / 1e9;
                    err.println("bench: " + sd.info().backendDetail());
                    try (LibraryTarget t = new LibraryTarget(sd, load, height, width)) {
                        rows.addAll(Benchmark.run(t, cfg, err));
                    }
                }
                break;
            }
            case "http": {
                if (models != null && !models.isEmpty()) {
                    throw new ParameterException(spec.commandLine(), "--model is for --mode library; the server at --url has its own");
                }
                HttpTarget t = new HttpTarget(url, timeout);
                t.awaitReady(Duration.ofSeconds(30));
                rows.addAll(Benchmark.run(t, cfg, err));
                break;
            }
            default:
                throw new ParameterException(spec.commandLine(), "--mode: expected library or http, got '" + mode + "'");
        }
        Map<String, Object> hw = Benchmark.hardware();
        out.println("Hardware: " + hw.get("cpu") + ", " + hw.get("logical_cores") + " logical cores, " + hw.get("jvm"));
        out.println();
        out.print(Benchmark.markdown(rows, cfg));
        out.flush();
        if (json != null) {
            Benchmark.writeJson(json, rows, cfg, hw);
        }
        return Main.OK;
    }
}
