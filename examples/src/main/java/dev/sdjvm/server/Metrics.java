package dev.sdjvm.server;

import java.util.Locale;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.LongAdder;
import java.util.function.Supplier;

/** Counters and a latency histogram in the Prometheus text exposition format (version 0.0.4). */
final class Metrics {
    /** Latency buckets in seconds (Stable Diffusion requests take seconds to a minute). */
    static final double[] BUCKETS = {0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 60, 120};

    private static final Map<String, String> COUNTER_HELP = Map.of(
            "sdjvm_invocations_cancelled_total", "Generations cancelled, by reason (client_disconnect, deadline, shutdown).",
            "sdjvm_http_timeouts_total", "Connections timed out, by phase (idle: closed; head, body: 408).",
            "sdjvm_connections_closed_for_cap_total",
            "Connections closed at the connection cap (evicted: the one idle the longest; refused: the new one).");
    private final Map<String, LongAdder> requests = new ConcurrentHashMap<>();
    private final AtomicLong[] bucketCounts = new AtomicLong[BUCKETS.length + 1];
    private final LongAdder latencyCount = new LongAdder();
    private final AtomicLong latencySumNanos = new AtomicLong();
    private final LongAdder images = new LongAdder();

    Metrics() {
        for (int i = 0; i < bucketCounts.length; i++) {
            bucketCounts[i] = new AtomicLong();
        }
    }

    /** One finished request. */
    void request(String path, int status) {
        requests.computeIfAbsent(path + "\u0000" + status, k -> new LongAdder()).increment();
    }

    /** Latency of one {@code /invocations} request (any status). */
    void latency(long nanos) {
        double s = nanos / 1e9;
        int i = 0;
        while (i < BUCKETS.length && s > BUCKETS[i]) {
            i++;
        }
        bucketCounts[i].incrementAndGet();
        latencyCount.increment();
        latencySumNanos.addAndGet(nanos);
    }

    void images(int n) {
        images.add(n);
    }

    /** The exposition text. */
    String render(Map<String, Supplier<Number>> gauges, Map<String, String> help, String modelInfoLabels) {
        return render(gauges, help, modelInfoLabels, Map.of());
    }

    /**
     * The exposition text, with extra labelled counters: name -&gt; (label value -&gt; count); the label is
     * {@code reason} (cancellations, connections closed for the cap) or {@code phase} (timeouts).
     */
    String render(Map<String, Supplier<Number>> gauges, Map<String, String> help, String modelInfoLabels,
                  Map<String, Map<String, Long>> counters) {
        StringBuilder sb = new StringBuilder(2048);
        sb.append("# HELP sdjvm_http_requests_total HTTP requests by path and status code.\n");
        sb.append("# TYPE sdjvm_http_requests_total counter\n");
        Map<String, Long> sorted = new TreeMap<>();
        requests.forEach((k, v) -> sorted.put(k, v.sum()));
        for (var e : sorted.entrySet()) {
            String[] pc = e.getKey().split("\u0000", 2);
            sb.append("sdjvm_http_requests_total{path=\"").append(pc[0]).append("\",code=\"").append(pc[1])
                    .append("\"} ").append(e.getValue()).append('\n');
        }
        sb.append("# HELP sdjvm_invocation_duration_seconds Latency of /invocations requests (all statuses).\n");
        sb.append("# TYPE sdjvm_invocation_duration_seconds histogram\n");
        long cumulative = 0;
        for (int i = 0; i < BUCKETS.length; i++) {
            cumulative += bucketCounts[i].get();
            sb.append("sdjvm_invocation_duration_seconds_bucket{le=\"").append(le(BUCKETS[i])).append("\"} ")
                    .append(cumulative).append('\n');
        }
        cumulative += bucketCounts[BUCKETS.length].get();
        sb.append("sdjvm_invocation_duration_seconds_bucket{le=\"+Inf\"} ").append(cumulative).append('\n');
        sb.append("sdjvm_invocation_duration_seconds_sum ")
                .append(String.format(Locale.ROOT, "%.6f", latencySumNanos.get() / 1e9)).append('\n');
        sb.append("sdjvm_invocation_duration_seconds_count ").append(latencyCount.sum()).append('\n');
        sb.append("# HELP sdjvm_images_generated_total Images returned.\n");
        sb.append("# TYPE sdjvm_images_generated_total counter\n");
        sb.append("sdjvm_images_generated_total ").append(images.sum()).append('\n');
        for (var c : counters.entrySet()) {
            String name = c.getKey();
            String label = name.contains("timeouts") ? "phase" : "reason";
            sb.append("# HELP ").append(name).append(' ').append(COUNTER_HELP.getOrDefault(name, name)).append('\n');
            sb.append("# TYPE ").append(name).append(" counter\n");
            for (var v : c.getValue().entrySet()) {
                sb.append(name).append('{').append(label).append("=\"").append(label(v.getKey())).append("\"} ")
                        .append(v.getValue()).append('\n');
            }
        }
        for (var g : gauges.entrySet()) {
            String name = g.getKey();
            sb.append("# HELP ").append(name).append(' ').append(help.getOrDefault(name, name)).append('\n');
            sb.append("# TYPE ").append(name).append(" gauge\n");
            Number v = g.getValue().get();
            sb.append(name).append(' ').append(v instanceof Double || v instanceof Float
                    ? String.format(Locale.ROOT, "%.6f", v.doubleValue()) : v.toString()).append('\n');
        }
        if (modelInfoLabels != null) {
            sb.append("# HELP sdjvm_model_info The served model (value 1).\n");
            sb.append("# TYPE sdjvm_model_info gauge\n");
            sb.append("sdjvm_model_info{").append(modelInfoLabels).append("} 1\n");
        }
        return sb.toString();
    }

    private static String le(double b) {
        return b == Math.rint(b) ? String.format(Locale.ROOT, "%.1f", b) : Double.toString(b);
    }

    /** Escapes a Prometheus label value. */
    static String label(String v) {
        return v == null ? "" : v.replace("\\", "\\\\").replace("\"", "\\\"").replace("\n", "\\n");
    }
}
