package dev.sdjvm.server;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.sdjvm.cli.ImageFiles;
import dev.sdjvm.image.RgbImage;
import java.awt.image.BufferedImage;
import java.io.ByteArrayInputStream;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Base64;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.function.BooleanSupplier;
import javax.imageio.ImageIO;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/** The server's HTTP contract against a controllable {@link FakeEngine}, with the JDK's HttpClient. */
@Timeout(value = 60, unit = TimeUnit.SECONDS)
class InferenceServerTest {
    static final ObjectMapper JSON = new ObjectMapper();
    final HttpClient client = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1)
            .connectTimeout(Duration.ofSeconds(5)).build();
    InferenceServer server;

    ServerConfig config() {
        return ServerConfig.defaults().withPort(0).withWorkers(2).withQueue(2).withMaxBodyBytes(4096)
                .withTimeout(Duration.ofSeconds(20)).withDrainTimeout(Duration.ofSeconds(10));
    }

    InferenceServer start(ServerConfig c, FakeEngine e) throws Exception {
        server = InferenceServer.start(c, () -> e);
        server.ready().get(10, TimeUnit.SECONDS);
        return server;
    }

    @AfterEach
    void stop() {
        if (server != null) {
            server.shutdown();
        }
    }

    URI uri(String path) {
        return URI.create("http://127.0.0.1:" + server.port() + path);
    }

    HttpResponse<byte[]> get(String path) throws Exception {
        return client.send(HttpRequest.newBuilder(uri(path)).GET().build(), HttpResponse.BodyHandlers.ofByteArray());
    }

    HttpResponse<byte[]> post(String path, String contentType, String accept, String body) throws Exception {
        return client.send(postRequest(path, contentType, accept, body), HttpResponse.BodyHandlers.ofByteArray());
    }

    HttpRequest postRequest(String path, String contentType, String accept, String body) {
        HttpRequest.Builder b = HttpRequest.newBuilder(uri(path)).POST(HttpRequest.BodyPublishers.ofString(body));
        if (contentType != null) {
            b.header("Content-Type", contentType);
        }
        if (accept != null) {
            b.header("Accept", accept);
        }
        return b.build();
    }

    static JsonNode json(HttpResponse<byte[]> r) throws Exception {
        return JSON.readTree(r.body());
    }

    static void assertError(HttpResponse<byte[]> r, int status, String field) throws Exception {
        assertEquals(status, r.statusCode(), () -> new String(r.body(), StandardCharsets.UTF_8));
        assertEquals("application/json", r.headers().firstValue("Content-Type").orElse(""));
        JsonNode n = json(r);
        assertTrue(n.path("error").isTextual() && !n.path("error").asText().isEmpty());
        // every error carries the request id of the log lines, and no internals
        String id = n.path("request_id").asText();
        assertTrue(id.matches("[A-Za-z0-9._:-]{1,64}"), n.toString());
        assertEquals(id, r.headers().firstValue("X-Request-Id").orElse(""));
        String text = n.path("error").asText();
        assertFalse(text.contains("\n") || text.contains("\tat ") || text.matches("(?s).*(^|[^0-9A-Za-z])0x[0-9a-f]{6,}.*"), text);
        if (field == null) {
            assertTrue(n.path("field").isNull(), n.toString());
        } else {
            assertEquals(field, n.path("field").asText(), n.toString());
        }
    }

    static void waitFor(BooleanSupplier c, String what) throws InterruptedException {
        long end = System.nanoTime() + TimeUnit.SECONDS.toNanos(15);
        while (!c.getAsBoolean()) {
            if (System.nanoTime() > end) {
                throw new AssertionError("timed out waiting for " + what);
            }
            Thread.sleep(10);
        }
    }

    static BufferedImage decode(byte[] b) throws Exception {
        BufferedImage img = ImageIO.read(new ByteArrayInputStream(b));
        assertNotNull(img, "not an image");
        return img;
    }

    static void assertSamePixels(RgbImage expected, BufferedImage actual) {
        assertEquals(expected.width(), actual.getWidth());
        assertEquals(expected.height(), actual.getHeight());
        for (int y = 0; y < expected.height(); y++) {
            for (int x = 0; x < expected.width(); x++) {
                int rgb = actual.getRGB(x, y);
                int e = expected.get(x, y, 0) << 16 | expected.get(x, y, 1) << 8 | expected.get(x, y, 2);
                assertEquals(e, rgb & 0xffffff, "pixel " + x + "," + y);
            }
        }
    }

    @Test
    void pingIs503WhileLoadingThen200() throws Exception {
        CountDownLatch loaded = new CountDownLatch(1);
        server = InferenceServer.start(config(), () -> {
            loaded.await(20, TimeUnit.SECONDS);
            return new FakeEngine(1);
        });
        HttpResponse<byte[]> r = get("/ping");
        assertEquals(503, r.statusCode());
        assertEquals("loading", json(r).path("status").asText());
        // invocations are refused with 503 + Retry-After while loading
        HttpResponse<byte[]> inv = post("/invocations", "application/json", null, "{\"prompt\":\"a\"}");
        assertError(inv, 503, null);
        assertTrue(inv.headers().firstValue("Retry-After").isPresent());
        loaded.countDown();
        server.ready().get(10, TimeUnit.SECONDS);
        r = get("/ping");
        assertEquals(200, r.statusCode());
        assertEquals("healthy", json(r).path("status").asText());
    }

    @Test
    void pingIs503WhenTheLoadFails() throws Exception {
        server = InferenceServer.start(config(), () -> {
            throw new IllegalStateException("no such model");
        });
        assertTrue(server.ready().handle((e, ex) -> ex != null).get(10, TimeUnit.SECONDS));
        HttpResponse<byte[]> r = get("/ping");
        assertEquals(503, r.statusCode());
        assertEquals("failed", json(r).path("status").asText());
    }

    @Test
    void pngByDefaultWithParametersText() throws Exception {
        start(config(), new FakeEngine(1));
        HttpResponse<byte[]> r = post("/invocations", "application/json", null,
                "{\"prompt\":\"a lighthouse\",\"parameters\":{\"negative_prompt\":\"fog\",\"num_inference_steps\":3,"
                        + "\"guidance_scale\":6.5,\"seed\":42,\"scheduler\":\"euler\"}}");
        assertEquals(200, r.statusCode(), () -> new String(r.body(), StandardCharsets.UTF_8));
        assertEquals("image/png", r.headers().firstValue("Content-Type").orElse(""));
        assertEquals("42", r.headers().firstValue("X-Seed").orElse(""));
        assertEquals("1", r.headers().firstValue("X-Image-Count").orElse(""));
        assertSamePixels(FakeEngine.image("a lighthouse", 42, 0), decode(r.body()));
        assertEquals("a lighthouse\nNegative prompt: fog\nSteps: 3, Sampler: Euler, CFG scale: 6.5, Seed: 42, "
                + "Size: 16x16, Model: fake-model", ImageFiles.readPngText(r.body()).get("parameters"));
    }

    @Test
    void jpegAndJsonByAccept() throws Exception {
        start(config(), new FakeEngine(1));
        HttpResponse<byte[]> jpeg = post("/invocations", "application/json", "image/jpeg",
                "{\"prompt\":\"x\",\"parameters\":{\"num_inference_steps\":1,\"seed\":1}}");
        assertEquals(200, jpeg.statusCode());
        assertEquals("image/jpeg", jpeg.headers().firstValue("Content-Type").orElse(""));
        assertEquals(0xFF, jpeg.body()[0] & 0xff);
        assertEquals(0xD8, jpeg.body()[1] & 0xff);
        assertEquals(FakeEngine.SIZE, decode(jpeg.body()).getWidth());

        HttpResponse<byte[]> js = post("/invocations", "application/json", "application/json",
                "{\"prompt\":\"x\",\"parameters\":{\"num_inference_steps\":2,\"seed\":5,\"num_images_per_prompt\":3}}");
        assertEquals(200, js.statusCode());
        assertEquals("application/json", js.headers().firstValue("Content-Type").orElse(""));
        JsonNode n = json(js);
        assertEquals(5, n.path("seed").asLong());
        assertEquals(3, n.path("images").size());
        for (int i = 0; i < 3; i++) {
            assertSamePixels(FakeEngine.image("x", 5, i), decode(Base64.getDecoder().decode(n.path("images").get(i).asText())));
        }
        assertEquals(2, n.path("parameters").path("num_inference_steps").asInt());
        assertEquals("DPMSolverMultistepScheduler", n.path("parameters").path("scheduler").asText());
        assertEquals(2, n.path("timings").path("steps").asInt());
        assertTrue(n.path("timings").has("seconds_per_step"));
        // preference order with q values: JSON preferred over PNG here
        HttpResponse<byte[]> q = post("/invocations", "application/json", "image/png;q=0.5, application/json",
                "{\"prompt\":\"x\",\"parameters\":{\"num_inference_steps\":1}}");
        assertEquals("application/json", q.headers().firstValue("Content-Type").orElse(""));
    }

    @Test
    void textPlainBodyIsThePrompt() throws Exception {
        start(config(), new FakeEngine(1));
        HttpResponse<byte[]> r = post("/invocations", "text/plain; charset=utf-8", "application/json",
                "une tour {\"not\": json}\n");
        assertEquals(200, r.statusCode());
        assertEquals("une tour {\"not\": json}\n", json(r).path("parameters").path("prompt").asText());
    }

    @Test
    void errorStatuses() throws Exception {
        start(config(), new FakeEngine(1));
        assertError(get("/nope"), 404, null);
        HttpResponse<byte[]> m = get("/invocations");
        assertError(m, 405, null);
        assertEquals("POST", m.headers().firstValue("Allow").orElse(""));
        assertError(post("/ping", "application/json", null, "{}"), 405, null);
        assertError(post("/metrics", "application/json", null, "{}"), 405, null);
        assertError(post("/invocations", "application/xml", null, "<prompt/>"), 415, null);
        assertError(post("/invocations", "application/json", "text/html", "{\"prompt\":\"a\"}"), 406, null);
        assertError(post("/invocations", "application/json", null, "{\"prompt\":\"" + "a".repeat(5000) + "\"}"), 413, null);
        assertError(post("/invocations", "application/json", null, "{\"prompt\":"), 400, null);
        assertError(post("/invocations", "application/json", null, "[1]"), 400, null);
        assertError(post("/invocations", "application/json", null, "{\"parameters\":{}}"), 400, "prompt");
        assertError(post("/invocations", "application/json", null, "{\"prompt\":3}"), 400, "prompt");
        assertError(post("/invocations", "application/json", null, "{\"prompt\":\"a\",\"extra\":1}"), 400, "extra");
        assertError(post("/invocations", "application/json", null,
                "{\"prompt\":\"a\",\"parameters\":{\"strength\":0.5}}"), 400, "strength");
        assertError(post("/invocations", "application/json", null,
                "{\"prompt\":\"a\",\"parameters\":{\"num_inference_steps\":\"many\"}}"), 400, "num_inference_steps");
        assertError(post("/invocations", "application/json", null,
                "{\"prompt\":\"a\",\"parameters\":{\"num_inference_steps\":0}}"), 400, "num_inference_steps");
        assertError(post("/invocations", "application/json", null,
                "{\"prompt\":\"a\",\"parameters\":{\"num_inference_steps\":2.5}}"), 400, "num_inference_steps");
        assertError(post("/invocations", "application/json", null,
                "{\"prompt\":\"a\",\"parameters\":{\"guidance_scale\":\"high\"}}"), 400, "guidance_scale");
        assertError(post("/invocations", "application/json", null,
                "{\"prompt\":\"a\",\"parameters\":{\"guidance_rescale\":1.5}}"), 400, "guidance_rescale");
        assertError(post("/invocations", "application/json", null,
                "{\"prompt\":\"a\",\"parameters\":{\"guidance_rescale\":\"x\"}}"), 400, "guidance_rescale");
        assertError(post("/invocations", "application/json", null,
                "{\"prompt\":\"a\",\"parameters\":{\"seed\":-1}}"), 400, "seed");
        assertError(post("/invocations", "application/json", null,
                "{\"prompt\":\"a\",\"parameters\":{\"num_images_per_prompt\":100}}"), 400, "num_images_per_prompt");
        // a size the artifacts do not make (checked in the worker) ...
        assertError(post("/invocations", "application/json", null,
                "{\"prompt\":\"a\",\"parameters\":{\"height\":24}}"), 400, "height");
        // ... and one over the work budget (checked before queueing): 413 naming the limit
        HttpResponse<byte[]> big = post("/invocations", "application/json", null,
                "{\"prompt\":\"a\",\"parameters\":{\"height\":512}}");
        assertError(big, 413, "height");
        assertTrue(json(big).path("error").asText().contains("max_image_pixels"), json(big).toString());
        assertError(post("/invocations", "application/json", null,
                "{\"prompt\":\"a\",\"parameters\":{\"scheduler\":\"nope\"}}"), 400, "scheduler");
        // nothing of that reached the engine's generation loop
        HttpResponse<byte[]> metrics = get("/metrics");
        PrometheusText text = new PrometheusText(new String(metrics.body(), StandardCharsets.UTF_8));
        assertEquals(16, text.value("sdjvm_http_requests_total", "path", "/invocations", "code", "400",
                "outcome", "CLIENT_ERROR"));
        assertEquals(1, text.value("sdjvm_http_requests_total", "path", "other", "code", "404"));
    }

    @Test
    void metricsInPrometheusFormat() throws Exception {
        start(config(), new FakeEngine(1));
        for (int i = 0; i < 3; i++) {
            assertEquals(200, post("/invocations", "application/json", null,
                    "{\"prompt\":\"a\",\"parameters\":{\"num_inference_steps\":1}}").statusCode());
        }
        HttpResponse<byte[]> r = get("/metrics");
        assertEquals(200, r.statusCode());
        assertTrue(r.headers().firstValue("Content-Type").orElse("").startsWith("text/plain; version=0.0.4"));
        // every sample line parses (PrometheusText fails on one that does not)
        PrometheusText t = new PrometheusText(new String(r.body(), StandardCharsets.UTF_8));
        assertEquals(3, t.value("sdjvm_http_requests_total", "path", "/invocations", "code", "200", "outcome", "SUCCESS"));
        // this scrape counts itself
        assertEquals(1, t.value("sdjvm_http_requests_total", "path", "/metrics", "code", "200"));
        assertEquals("histogram", t.types.get("sdjvm_invocation_duration_seconds"));
        assertEquals(3, t.value("sdjvm_invocation_duration_seconds_bucket", "le", "+Inf"));
        assertEquals(3, t.value("sdjvm_invocation_duration_seconds_count"));
        double sum = t.value("sdjvm_invocation_duration_seconds_sum");
        assertTrue(sum > 0 && sum < 30, "latency sum " + sum);
        // the buckets are cumulative and keep the bounds of before (0.05 ... 120 s)
        double previous = 0;
        for (double le : Metrics.BUCKETS) {
            String bound = le == Math.rint(le) ? String.format(java.util.Locale.ROOT, "%.1f", le) : Double.toString(le);
            double c = t.value("sdjvm_invocation_duration_seconds_bucket", "le", bound);
            assertTrue(c >= previous && c <= 3, bound + ": " + c);
            previous = c;
        }
        assertEquals(0, t.value("sdjvm_queue_depth"));
        assertEquals(0, t.value("sdjvm_inflight_requests"));
        assertEquals(3, t.value("sdjvm_images_generated_total"));
        assertEquals(1, t.value("sdjvm_model_info", "model", "fake-model", "precision", "float32"));
        assertEquals(1, t.value("sdjvm_model_ready"));
        // the fake engine's steps (1 per request) and each generation's wait for a worker
        assertEquals(3, t.value("sdjvm_denoise_step_duration_seconds_count"));
        assertEquals(3, t.value("sdjvm_queue_wait_seconds_count"));
        double stepSum = t.value("sdjvm_denoise_step_duration_seconds_sum");
        assertTrue(stepSum > 0 && stepSum < 10, "step time " + stepSum);
        // JVM and process metrics from Micrometer's binders, with sane values
        double heap = t.find("jvm_memory_used_bytes", "area", "heap").stream()
                .mapToDouble(PrometheusText.Sample::value).sum();
        assertTrue(heap > 1 << 20 && heap <= Runtime.getRuntime().maxMemory(), "heap used " + heap);
        double threads = t.value("jvm_threads_live_threads");
        assertTrue(threads >= 5 && threads < 10_000, "threads " + threads);
        assertTrue(t.value("jvm_classes_loaded_classes") > 1000);
        assertTrue(t.value("process_uptime_seconds") > 0);
        assertTrue(t.value("process_files_open_files") > 0);
        assertTrue(t.value("system_cpu_count") >= 1);
        assertTrue(t.value("jvm_gc_max_data_size_bytes") > 0);
        assertTrue(t.value("jvm_gc_memory_allocated_bytes_total") >= 0);
        assertTrue(t.value("sdjvm_process_rss_bytes") > 1 << 20);
        // the benchmark's HTTP target reads the model's facts from the same text
        var facts = new dev.sdjvm.bench.HttpTarget(uri("/"), Duration.ofSeconds(10)).facts();
        assertEquals("fake-model", facts.name());
        assertEquals("float32", facts.precision());
        assertEquals(0.5, facts.loadSeconds());
        assertEquals(1234, facts.weightBytes());
        assertTrue(facts.peakRssBytes() > 1 << 20, "peak RSS " + facts.peakRssBytes());
    }

    @Test
    void theGenerationRunsWithItsRequestIdInTheLogContext() throws Exception {
        FakeEngine e = new FakeEngine(1);
        start(config(), e);
        for (int i = 0; i < 2; i++) {
            HttpResponse<byte[]> r = post("/invocations", "application/json", null,
                    "{\"prompt\":\"a\",\"parameters\":{\"num_inference_steps\":1}}");
            assertEquals(200, r.statusCode());
            // on the worker thread, each request's own id (so the library's log lines during it carry the id)
            assertEquals(r.headers().firstValue("X-Request-Id").orElseThrow(), e.requestIdInMdc);
        }
    }

    @Test
    void overloadGets503WithRetryAfterAndBoundedQueue() throws Exception {
        FakeEngine e = new FakeEngine(1);
        e.gate = new CountDownLatch(1);
        start(config().withWorkers(1).withQueue(1), e);
        String body = "{\"prompt\":\"a\",\"parameters\":{\"num_inference_steps\":1,\"seed\":%d}}";
        CompletableFuture<HttpResponse<byte[]>> first = client.sendAsync(
                postRequest("/invocations", "application/json", null, String.format(body, 1)), HttpResponse.BodyHandlers.ofByteArray());
        waitFor(() -> server.inFlight() == 1, "first request running");
        CompletableFuture<HttpResponse<byte[]>> second = client.sendAsync(
                postRequest("/invocations", "application/json", null, String.format(body, 2)), HttpResponse.BodyHandlers.ofByteArray());
        waitFor(() -> server.queueDepth() == 1, "second request queued");
        for (int i = 0; i < 3; i++) {
            HttpResponse<byte[]> over = post("/invocations", "application/json", null, String.format(body, 3 + i));
            assertError(over, 503, null);
            long retry = Long.parseLong(over.headers().firstValue("Retry-After").orElseThrow());
            assertTrue(retry >= 1, "Retry-After " + retry);
        }
        assertEquals(1, server.queueDepth());
        PrometheusText m = new PrometheusText(new String(get("/metrics").body(), StandardCharsets.UTF_8));
        assertEquals(1, m.value("sdjvm_queue_depth"));
        assertEquals(1, m.value("sdjvm_inflight_requests"));
        e.gate.countDown();
        HttpResponse<byte[]> r1 = first.get(20, TimeUnit.SECONDS);
        HttpResponse<byte[]> r2 = second.get(20, TimeUnit.SECONDS);
        assertEquals(200, r1.statusCode());
        assertEquals(200, r2.statusCode());
        assertSamePixels(FakeEngine.image("a", 1, 0), decode(r1.body()));
        assertSamePixels(FakeEngine.image("a", 2, 0), decode(r2.body()));
        assertEquals(2, e.completed.get());
        waitFor(() -> server.queueDepth() == 0 && server.inFlight() == 0, "idle");
    }

    @Test
    void concurrentClientsGetTheirOwnImages() throws Exception {
        FakeEngine e = new FakeEngine(5);
        start(config().withWorkers(2).withQueue(8), e);
        List<CompletableFuture<HttpResponse<byte[]>>> fs = new ArrayList<>();
        for (int i = 0; i < 8; i++) {
            fs.add(client.sendAsync(postRequest("/invocations", "application/json", null,
                    "{\"prompt\":\"p" + i + "\",\"parameters\":{\"num_inference_steps\":4,\"seed\":" + (100 + i) + "}}"),
                    HttpResponse.BodyHandlers.ofByteArray()));
        }
        for (int i = 0; i < 8; i++) {
            HttpResponse<byte[]> r = fs.get(i).get(20, TimeUnit.SECONDS);
            assertEquals(200, r.statusCode());
            assertEquals(Long.toString(100 + i), r.headers().firstValue("X-Seed").orElse(""));
            assertSamePixels(FakeEngine.image("p" + i, 100 + i, 0), decode(r.body()));
        }
    }

    @Test
    void deadlineCancelsTheGenerationWith504() throws Exception {
        FakeEngine e = new FakeEngine(50);
        start(config().withWorkers(1).withQueue(1).withTimeout(Duration.ofMillis(400)), e);
        long t0 = System.nanoTime();
        HttpResponse<byte[]> r = post("/invocations", "application/json", null,
                "{\"prompt\":\"a\",\"parameters\":{\"num_inference_steps\":200}}");
        double secs = (System.nanoTime() - t0) / 1e9;
        assertError(r, 504, null);
        assertTrue(secs < 5, "took " + secs + " s; 200 steps would take 10 s");
        waitFor(() -> e.cancelled.get() == 1, "generation cancelled");
        assertEquals(0, e.completed.get());
        // the worker is free again
        assertEquals(200, post("/invocations", "application/json", null,
                "{\"prompt\":\"a\",\"parameters\":{\"num_inference_steps\":1}}").statusCode());
    }

    @Test
    void shutdownLetsTheRequestInFlightFinish() throws Exception {
        FakeEngine e = new FakeEngine(100);
        start(config().withWorkers(1).withQueue(1), e);
        CompletableFuture<HttpResponse<byte[]>> inFlight = client.sendAsync(postRequest("/invocations",
                "application/json", null, "{\"prompt\":\"last\",\"parameters\":{\"num_inference_steps\":10,\"seed\":9}}"),
                HttpResponse.BodyHandlers.ofByteArray());
        waitFor(() -> server.inFlight() == 1, "request running");
        CompletableFuture<Void> stopping = CompletableFuture.runAsync(server::shutdown);
        // new work is turned away while draining (503), or the listener is already gone
        waitFor(() -> {
            try {
                return get("/ping").statusCode() == 503;
            } catch (Exception ex) {
                return true;
            }
        }, "ping 503 while draining");
        assertFalse(stopping.isDone(), "shutdown returned before the in-flight request finished");
        HttpResponse<byte[]> r = inFlight.get(20, TimeUnit.SECONDS);
        assertEquals(200, r.statusCode());
        assertSamePixels(FakeEngine.image("last", 9, 0), decode(r.body()));
        stopping.get(20, TimeUnit.SECONDS);
        assertTrue(e.closed, "engine closed at the end of shutdown");
        assertEquals(0, e.cancelled.get());
    }

    @Test
    void configValidation() {
        assertArrayEquals(new Object[] {"127.0.0.1", 8080}, new Object[] {ServerConfig.defaults().bind(),
                ServerConfig.defaults().port()});
        assertEquals(Duration.ofSeconds(60), ServerConfig.defaults().timeout());
        org.junit.jupiter.api.Assertions.assertThrows(dev.sdjvm.errors.InvalidRequestException.class,
                () -> ServerConfig.defaults().withWorkers(0));
    }
}
