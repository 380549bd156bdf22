package dev.sdjvm.bench;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * A running {@code sd serve} (or any server with its contract) over HTTP: {@code POST /invocations} with
 * {@code Accept: application/json} (to read the server-side step timings). Model facts come from {@code /metrics}.
 */
public final class HttpTarget implements Target {
    private static final ObjectMapper JSON = new ObjectMapper();
    private final URI base;
    private final HttpClient client;
    private final Duration timeout;

    public HttpTarget(URI base, Duration timeout) {
        String s = base.toString();
        this.base = URI.create(s.endsWith("/") ? s.substring(0, s.length() - 1) : s);
        this.timeout = timeout;
        this.client = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(10)).build();
    }

    /** Waits until {@code /ping} answers 200. */
    public void awaitReady(Duration max) {
        long end = System.nanoTime() + max.toNanos();
        String last = "no answer";
        while (System.nanoTime() < end) {
            try {
                HttpResponse<String> r = client.send(HttpRequest.newBuilder(base.resolve(base.getPath() + "/ping"))
                        .timeout(Duration.ofSeconds(10)).GET().build(), HttpResponse.BodyHandlers.ofString());
                if (r.statusCode() == 200) {
                    return;
                }
                last = "status " + r.statusCode();
            } catch (IOException e) {
                last = e.toString();
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new IllegalStateException("interrupted");
            }
            try {
                Thread.sleep(500);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new IllegalStateException("interrupted");
            }
        }
        throw new IllegalStateException(base + "/ping did not answer 200 within " + max.toSeconds() + " s (" + last + ")");
    }

    @Override
    public Sample generate(String prompt, int steps, double guidance, long seed) {
        ObjectNode body = JSON.createObjectNode();
        body.put("prompt", prompt);
        ObjectNode p = body.putObject("parameters");
        p.put("num_inference_steps", steps);
        p.put("guidance_scale", guidance);
        p.put("seed", seed);
        try {
            HttpRequest req = HttpRequest.newBuilder(URI.create(base + "/invocations"))
                    .timeout(timeout)
                    .header("Content-Type", "application/json")
                    .header("Accept", "application/json")
                    .POST(HttpRequest.BodyPublishers.ofByteArray(JSON.writeValueAsBytes(body))).build();
            long t0 = System.nanoTime();
            HttpResponse<byte[]> r = client.send(req, HttpResponse.BodyHandlers.ofByteArray());
            double lat = (System.nanoTime() - t0) / 1e9;
            if (r.statusCode() != 200) {
                throw new IllegalStateException("POST /invocations: status " + r.statusCode() + ": "
                        + new String(r.body(), StandardCharsets.UTF_8));
            }
            JsonNode t = JSON.readTree(r.body()).path("timings");
            return new Sample(lat, t.path("seconds_per_step").asDouble(Double.NaN),
                    t.path("overhead_ms_per_step").asDouble(Double.NaN), t.path("decode_ms").asDouble(Double.NaN) / 1000);
        } catch (IOException e) {
            throw new IllegalStateException("POST " + base + "/invocations failed: " + e, e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException("interrupted");
        }
    }

    @Override
    public Facts facts() {
        String text;
        try {
            HttpResponse<String> r = client.send(HttpRequest.newBuilder(URI.create(base + "/metrics"))
                    .timeout(Duration.ofSeconds(10)).GET().build(), HttpResponse.BodyHandlers.ofString());
            text = r.statusCode() == 200 ? r.body() : "";
        } catch (IOException e) {
            text = "";
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            text = "";
        }
        // sdjvm_model_info{height="512",model="...",precision="...",width="512"} 1 (labels in any order)
        Matcher m = Pattern.compile("(?m)^sdjvm_model_info\\{([^\n]*)\\} ").matcher(text);
        String name = base.toString();
        String precision = "unknown";
        if (m.find()) {
            name = label(m.group(1), "model", name);
            precision = label(m.group(1), "precision", precision);
        }
        return new Facts(name, "http", precision, gauge(text, "sdjvm_model_load_seconds"),
                (long) gauge(text, "sdjvm_model_weight_bytes", -1), (long) gauge(text, "sdjvm_process_peak_rss_bytes", -1));
    }

    private static String label(String labels, String key, String dflt) {
        Matcher m = Pattern.compile("(?:^|,)" + key + "=\"((?:[^\"\\\\]|\\\\.)*)\"").matcher(labels);
        return m.find() ? m.group(1).replace("\\\"", "\"").replace("\\\\", "\\") : dflt;
    }

    private static double gauge(String text, String name) {
        return gauge(text, name, Double.NaN);
    }

    private static double gauge(String text, String name, double dflt) {
        Matcher m = Pattern.compile("(?m)^" + name + " (\\S+)$").matcher(text);
        return m.find() ? Double.parseDouble(m.group(1)) : dflt;
    }

    @Override
    public void close() {
        // HttpClient has no close() on JDK 17
    }
}
