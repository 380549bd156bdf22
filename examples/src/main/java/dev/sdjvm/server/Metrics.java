package dev.sdjvm.server;

import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.FunctionCounter;
import io.micrometer.core.instrument.Gauge;
import io.micrometer.core.instrument.Tags;
import io.micrometer.core.instrument.Timer;
import io.micrometer.core.instrument.binder.http.Outcome;
import io.micrometer.core.instrument.binder.jvm.ClassLoaderMetrics;
import io.micrometer.core.instrument.binder.jvm.JvmGcMetrics;
import io.micrometer.core.instrument.binder.jvm.JvmInfoMetrics;
import io.micrometer.core.instrument.binder.jvm.JvmMemoryMetrics;
import io.micrometer.core.instrument.binder.jvm.JvmThreadMetrics;
import io.micrometer.core.instrument.binder.system.FileDescriptorMetrics;
import io.micrometer.core.instrument.binder.system.ProcessorMetrics;
import io.micrometer.core.instrument.binder.system.UptimeMetrics;
import io.micrometer.prometheusmetrics.PrometheusConfig;
import io.micrometer.prometheusmetrics.PrometheusMeterRegistry;
import java.time.Duration;
import java.util.Arrays;
import java.util.concurrent.TimeUnit;
import java.util.function.Supplier;
import java.util.function.ToDoubleFunction;

/**
 * The server's meters, on a Micrometer {@link PrometheusMeterRegistry} of its own (one per server), rendered as
 * Prometheus text by {@link #scrape()}. Besides the server's own series ({@code sdjvm_*}) it carries Micrometer's JVM
 * and process binders ({@code jvm_*}, {@code process_*}, {@code system_cpu_*}). Names and labels: docs/programs.md.
 */
final class Metrics implements AutoCloseable {
    /**
     * Bucket bounds of the latency histograms, in seconds: Stable Diffusion requests take seconds to a minute, so the
     * bounds are dense there for {@code histogram_quantile(0.95, ...)}. A superset of the bounds this server used before
     * Micrometer (0.05 ... 120), so a dashboard's {@code le} values still exist.
     */
    static final double[] BUCKETS = {0.05, 0.1, 0.25, 0.5, 1, 2, 2.5, 3, 4, 5, 7.5, 10, 15, 20, 30, 45, 60, 90,
            120, 180, 300};
    /** Bucket bounds of the per-step histogram, in seconds (a step takes milliseconds on Neuron, seconds on a CPU). */
    static final double[] STEP_BUCKETS = {0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 0.75, 1, 1.5, 2.5,
            5, 10};

    private final PrometheusMeterRegistry registry = new PrometheusMeterRegistry(PrometheusConfig.DEFAULT);
    private final JvmGcMetrics gc = new JvmGcMetrics();
    private final Timer latency;
    private final Timer queueWait;
    private final Timer step;
    private final Counter images;

    Metrics() {
        new JvmMemoryMetrics().bindTo(registry);
        gc.bindTo(registry);
        new JvmThreadMetrics().bindTo(registry);
        new ClassLoaderMetrics().bindTo(registry);
        new JvmInfoMetrics().bindTo(registry);
        new ProcessorMetrics().bindTo(registry);
        new UptimeMetrics().bindTo(registry);
        new FileDescriptorMetrics().bindTo(registry);
        latency = Timer.builder("sdjvm.invocation.duration")
                .description("Latency of /invocations requests from the first byte to the answer (all statuses).")
                .serviceLevelObjectives(durations(BUCKETS))
                .register(registry);
        queueWait = Timer.builder("sdjvm.queue.wait")
                .description("Time an admitted generation waited for a worker.")
                .serviceLevelObjectives(durations(BUCKETS))
                .register(registry);
        step = Timer.builder("sdjvm.denoise.step.duration")
                .description("Duration of one denoising step (UNet, guidance and scheduler), every step of every "
                        + "generation.")
                .serviceLevelObjectives(durations(STEP_BUCKETS))
                .register(registry);
        images = Counter.builder("sdjvm.images.generated").description("Images returned.").register(registry);
    }

    private static Duration[] durations(double[] seconds) {
        return Arrays.stream(seconds).mapToObj(s -> Duration.ofNanos(Math.round(s * 1e9))).toArray(Duration[]::new);
    }

    /**
     * One finished request (counted once per request): {@code sdjvm_http_requests_total{path,code,outcome}}, outcome
     * as Micrometer's HTTP convention names it (SUCCESS, CLIENT_ERROR, SERVER_ERROR, ...; 499 client gone is a
     * CLIENT_ERROR).
     */
    void request(String path, int status) {
        Counter.builder("sdjvm.http.requests")
                .description("HTTP requests by path, status code and outcome (one per request).")
                .tags(Tags.of("path", path == null ? "other" : path, "code", Integer.toString(status),
                        "outcome", Outcome.forStatus(status).name()))
                .register(registry).increment();
    }

    /** Latency of one {@code /invocations} request (any status). */
    void latency(long nanos) {
        latency.record(nanos, TimeUnit.NANOSECONDS);
    }

    /** How long an admitted generation waited for a worker. */
    void queueWait(long nanos) {
        queueWait.record(nanos, TimeUnit.NANOSECONDS);
    }

    /** One denoising step. */
    void step(long nanos) {
        step.record(nanos, TimeUnit.NANOSECONDS);
    }

    void images(int n) {
        images.increment(n);
    }

    /** A labelled event counter ({@code name} without {@code _total}; label {@code label=value}). */
    void count(String name, String description, String label, String value) {
        Counter.builder(name).description(description).tag(label, value).register(registry).increment();
    }

    /** The count of a labelled counter registered through {@link #count} (0 if never counted). */
    long counted(String name, String label, String value) {
        Counter c = registry.find(name).tag(label, value).counter();
        return c == null ? 0 : (long) c.count();
    }

    /** A counter read from an object that counts by itself (e.g. a {@link java.util.concurrent.atomic.LongAdder}). */
    <T> void functionCounter(String name, String description, String label, String value, T obj,
                             ToDoubleFunction<T> f) {
        FunctionCounter.builder(name, obj, f).description(description).tag(label, value).register(registry);
    }

    /** A gauge read at every scrape ({@code baseUnit} null for none; it is appended to the name, e.g. _bytes). */
    void gauge(String name, String description, String baseUnit, Supplier<Number> value) {
        Gauge.builder(name, value).description(description).baseUnit(baseUnit).register(registry);
    }

    /** {@code sdjvm_model_info{model,precision,height,width} 1} and the model's gauges, once it is loaded. */
    void model(Engine.Info i) {
        gauge("sdjvm.model.weight", "Sum of the artifact file sizes.", "bytes", i::weightBytes);
        gauge("sdjvm.model.load", "Model load time including warm-up.", "seconds", i::loadSeconds);
        Gauge.builder("sdjvm.model.info", () -> 1).description("The served model (value 1).")
                .tags("model", i.model(), "precision", i.precision(), "height", Integer.toString(i.height()),
                        "width", Integer.toString(i.width()))
                .register(registry);
    }

    /** The Prometheus text exposition (format 0.0.4). */
    String scrape() {
        return registry.scrape();
    }

    @Override
    public void close() {
        gc.close();
        registry.close();
    }
}
