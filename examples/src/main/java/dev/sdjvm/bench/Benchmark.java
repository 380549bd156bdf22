package dev.sdjvm.bench;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import java.io.IOException;
import java.io.PrintWriter;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * The benchmark: per steps count, warm-up (excluded), {@code runs} sequential requests (latency percentiles,
 * single-stream QPS, seconds and Java overhead per step), then, when {@code concurrency} &gt; 1, {@code runs} requests
 * from {@code concurrency} clients at once (QPS under load; with one client that figure is the single-stream one). Cost per 10 000 images = price per hour / 3600 x 10 000 / QPS.
 * Percentiles interpolate linearly between order statistics (numpy's default).
 */
public final class Benchmark {
    /**
     * @param steps        step counts, one row each
     * @param runs         measured requests per row (single-stream, and again under concurrency)
     * @param warmup       unmeasured requests first
     * @param concurrency  clients at once for the throughput measurement
     * @param pricePerHour instance price in USD per hour
     * @param prompt       the prompt
     * @param guidance     guidance scale
     * @param seed         seed of the first request (request i uses seed + i)
     */
    public record Config(List<Integer> steps, int runs, int warmup, int concurrency, double pricePerHour,
                         String prompt, double guidance, long seed) {
        public Config {
            if (steps == null || steps.isEmpty() || steps.stream().anyMatch(s -> s < 1)) {
                throw new IllegalArgumentException("steps: need positive step counts");
            }
            if (runs < 1 || warmup < 0 || concurrency < 1 || !(pricePerHour >= 0)) {
                throw new IllegalArgumentException("runs >= 1, warmup >= 0, concurrency >= 1, price >= 0");
            }
            steps = List.copyOf(steps);
        }
    }

    /** One table row. Latencies in milliseconds; NaN / -1 where unknown. */
    public record Row(String model, String mode, String precision, int steps, int runs, int concurrency,
                      double p50Ms, double p90Ms, double p95Ms, double p99Ms, double meanMs,
                      double qpsSingle, double qpsConcurrent, double costPer10kSingle, double costPer10kConcurrent,
                      double secondsPerStep, double overheadMsPerStep, double decodeSeconds, double loadSeconds,
                      long peakRssBytes, long weightBytes) {
    }

    private Benchmark() {
    }

    /** Runs every row for one target. */
    public static List<Row> run(Target target, Config c, PrintWriter log) throws InterruptedException {
        List<Row> rows = new ArrayList<>();
        AtomicInteger seq = new AtomicInteger();
        for (int steps : c.steps()) {
            for (int i = 0; i < c.warmup(); i++) {
                target.generate(c.prompt(), steps, c.guidance(), c.seed() + seq.getAndIncrement());
            }
            double[] lat = new double[c.runs()];
            double sps = 0;
            double ovh = 0;
            double dec = 0;
            long t0 = System.nanoTime();
            for (int i = 0; i < c.runs(); i++) {
                Target.Sample s = target.generate(c.prompt(), steps, c.guidance(), c.seed() + seq.getAndIncrement());
                lat[i] = s.latencySeconds();
                sps += s.secondsPerStep();
                ovh += s.overheadMsPerStep();
                dec += s.decodeSeconds();
            }
            double wallSingle = (System.nanoTime() - t0) / 1e9;
            double qpsSingle = c.runs() / wallSingle;
            // one client: the concurrent measurement would be a second single-stream run of the same thing
            double qpsConc = c.concurrency() > 1 ? concurrent(target, c, steps, seq) : qpsSingle;
            Arrays.sort(lat);
            Target.Facts f = target.facts();
            Row r = new Row(f.name(), f.mode(), f.precision(), steps, c.runs(), c.concurrency(),
                    1000 * percentile(lat, 0.50), 1000 * percentile(lat, 0.90), 1000 * percentile(lat, 0.95),
                    1000 * percentile(lat, 0.99), 1000 * Arrays.stream(lat).average().orElse(Double.NaN),
                    qpsSingle, qpsConc, cost(c.pricePerHour(), qpsSingle), cost(c.pricePerHour(), qpsConc),
                    sps / c.runs(), ovh / c.runs(), dec / c.runs(), f.loadSeconds(), f.peakRssBytes(), f.weightBytes());
            rows.add(r);
            if (log != null) {
                log.printf(Locale.ROOT, "bench: %s %s %d steps: p50 %.1f ms, %.3f QPS (1)%s%n", r.model(),
                        r.precision(), steps, r.p50Ms(), qpsSingle, c.concurrency() > 1
                                ? String.format(Locale.ROOT, ", %.3f QPS (%d)", qpsConc, c.concurrency()) : "");
                log.flush();
            }
        }
        return rows;
    }

    private static double concurrent(Target target, Config c, int steps, AtomicInteger seq) throws InterruptedException {
        int total = Math.max(c.runs(), c.concurrency());
        ExecutorService pool = Executors.newFixedThreadPool(c.concurrency());
        try {
            AtomicInteger left = new AtomicInteger(total);
            List<Future<?>> fs = new ArrayList<>();
            long t0 = System.nanoTime();
            for (int k = 0; k < c.concurrency(); k++) {
                fs.add(pool.submit(() -> {
                    while (left.getAndDecrement() > 0) {
                        target.generate(c.prompt(), steps, c.guidance(), c.seed() + seq.getAndIncrement());
                    }
                    return null;
                }));
            }
            for (Future<?> f : fs) {
                try {
                    f.get();
                } catch (ExecutionException e) {
                    Throwable cause = e.getCause();
                    throw cause instanceof RuntimeException ? (RuntimeException) cause : new IllegalStateException(cause);
                }
            }
            return total / ((System.nanoTime() - t0) / 1e9);
        } finally {
            pool.shutdownNow();
        }
    }

    /** Linear interpolation between order statistics of sorted values (numpy's default). */
    public static double percentile(double[] sorted, double p) {
        if (sorted.length == 0) {
            return Double.NaN;
        }
        double pos = p * (sorted.length - 1);
        int lo = (int) Math.floor(pos);
        int hi = Math.min(sorted.length - 1, lo + 1);
        return sorted[lo] + (pos - lo) * (sorted[hi] - sorted[lo]);
    }

    /** USD per 10 000 images at a QPS (one image per request). */
    public static double cost(double pricePerHour, double qps) {
        return qps > 0 ? pricePerHour / 3600.0 * 10_000 / qps : Double.NaN;
    }

    /** The Markdown table; the concurrent QPS and cost columns only with more than one client. */
    public static String markdown(List<Row> rows, Config c) {
        StringBuilder sb = new StringBuilder();
        int n = c.concurrency();
        boolean conc = n > 1;
        sb.append("| Model | Mode | Precision | Steps | P50 ms | P90 ms | P95 ms | P99 ms | QPS (1 client) | ");
        if (conc) {
            sb.append("QPS (").append(n).append(" clients) | ");
        }
        sb.append("$/10k img (1) | ");
        if (conc) {
            sb.append("$/10k img (").append(n).append(") | ");
        }
        sb.append("s/step | Java overhead ms/step | VAE decode s | Load s | Peak RSS MiB | Weights MiB |\n");
        sb.append("|---|---|---|---:|---:|---:|---:|---:|---:|").append(conc ? "---:|---:|" : "")
                .append("---:|---:|---:|---:|---:|---:|---:|\n");
        for (Row r : rows) {
            sb.append("| ").append(r.model()).append(" | ").append(r.mode()).append(" | ").append(r.precision())
                    .append(" | ").append(r.steps())
                    .append(" | ").append(f(r.p50Ms(), 1)).append(" | ").append(f(r.p90Ms(), 1))
                    .append(" | ").append(f(r.p95Ms(), 1)).append(" | ").append(f(r.p99Ms(), 1))
                    .append(" | ").append(f(r.qpsSingle(), 3));
            if (conc) {
                sb.append(" | ").append(f(r.qpsConcurrent(), 3));
            }
            sb.append(" | ").append(f(r.costPer10kSingle(), 2));
            if (conc) {
                sb.append(" | ").append(f(r.costPer10kConcurrent(), 2));
            }
            sb.append(" | ").append(f(r.secondsPerStep(), 4)).append(" | ").append(f(r.overheadMsPerStep(), 3))
                    .append(" | ").append(f(r.decodeSeconds(), 3))
                    .append(" | ").append(f(r.loadSeconds(), 2))
                    .append(" | ").append(r.peakRssBytes() < 0 ? "n/a" : f(r.peakRssBytes() / 1048576.0, 0))
                    .append(" | ").append(r.weightBytes() < 0 ? "n/a" : f(r.weightBytes() / 1048576.0, 1))
                    .append(" |\n");
        }
        sb.append("\nruns ").append(c.runs()).append(" per row (warm-up ").append(c.warmup())
                .append(" excluded), ").append(n).append(n > 1 ? " concurrent clients" : " client").append(", guidance ")
                .append(c.guidance())
                .append(", price $").append(c.pricePerHour()).append("/h.\n");
        return sb.toString();
    }

    private static String f(double v, int decimals) {
        return Double.isNaN(v) ? "n/a" : String.format(Locale.ROOT, "%." + decimals + "f", v);
    }

    /** Writes {@code {"config": ..., "hardware": ..., "rows": [...]}}. */
    public static void writeJson(Path file, List<Row> rows, Config c, Map<String, Object> hardware) throws IOException {
        Map<String, Object> root = new LinkedHashMap<>();
        root.put("config", c);
        root.put("hardware", hardware);
        root.put("rows", rows);
        new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT)
                .writeValue(file.toFile(), root);
    }

    /** CPU model, logical cores, OS, JVM. */
    public static Map<String, Object> hardware() {
        Map<String, Object> h = new LinkedHashMap<>();
        String cpu = null;
        try {
            for (String line : java.nio.file.Files.readAllLines(Path.of("/proc/cpuinfo"))) {
                if (line.startsWith("model name")) {
                    cpu = line.substring(line.indexOf(':') + 1).trim();
                    break;
                }
            }
        } catch (IOException | RuntimeException e) {
            // not Linux
        }
        h.put("cpu", cpu == null ? System.getProperty("os.arch") : cpu);
        h.put("logical_cores", Runtime.getRuntime().availableProcessors());
        h.put("os", System.getProperty("os.name") + " " + System.getProperty("os.version") + " " + System.getProperty("os.arch"));
        h.put("jvm", System.getProperty("java.vm.name") + " " + System.getProperty("java.version"));
        return h;
    }
}
