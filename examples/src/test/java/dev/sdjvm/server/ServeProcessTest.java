package dev.sdjvm.server;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.sdjvm.TestModels;
import java.io.IOException;
import java.net.ServerSocket;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code sd serve} as its own process: {@code /ping} 503 then 200, and SIGTERM ({@link Process#destroy()} on
 * Linux) with a request in flight: the request completes with 200, then the process exits 0. Its log: text lines
 * carry the request id, {@code /ping} stays out of the INFO log, and {@code --log-format json} writes one JSON
 * object per line with the request id in the MDC.
 */
@Timeout(value = 180, unit = TimeUnit.SECONDS)
class ServeProcessTest {
    private static final ObjectMapper JSON = new ObjectMapper();

    /** Starts {@code sd serve} on a free port with the tiny model; its stdout and stderr go to {@code log}. */
    private static Process serve(Path log, int port, String... extra) throws IOException {
        assumeTrue(System.getProperty("os.name").toLowerCase().contains("linux"), "SIGTERM via Process.destroy: Linux only");
        Path target = Paths.get("target").toAbsolutePath();
        Path cpFile = target.resolve("test-classpath.txt");
        assumeTrue(Files.isRegularFile(cpFile), "target/test-classpath.txt not written (run through Maven)");
        String cp = target.resolve("classes") + ":" + Files.readString(cpFile).trim();
        List<String> cmd = new ArrayList<>(List.of(Paths.get(System.getProperty("java.home"), "bin", "java").toString(),
                "-Xmx512m", "-cp", cp, "dev.sdjvm.cli.Main", "serve", "--port", Integer.toString(port),
                "--model", TestModels.resource("models/tiny-sd21-fp32").toString(), "--threads", "1"));
        cmd.addAll(List.of(extra));
        return new ProcessBuilder(cmd).redirectErrorStream(true).redirectOutput(log.toFile()).start();
    }

    private static int freePort() throws IOException {
        try (ServerSocket s = new ServerSocket(0)) {
            return s.getLocalPort();
        }
    }

    /** Polls /ping until 200 (or 120 s); returns whether it saw 503 on the way. */
    private static boolean awaitReady(HttpClient client, URI base, Path log) throws InterruptedException {
        int ping = -1;
        boolean saw503 = false;
        long end = System.nanoTime() + TimeUnit.SECONDS.toNanos(120);
        while (System.nanoTime() < end && ping != 200) {
            try {
                ping = client.send(HttpRequest.newBuilder(base.resolve("/ping")).build(),
                        HttpResponse.BodyHandlers.discarding()).statusCode();
                saw503 |= ping == 503;
            } catch (IOException notYetListening) {
                ping = -1;
            }
            Thread.sleep(100);
        }
        assertEquals(200, ping, () -> read(log));
        return saw503;
    }

    @Test
    void sigtermDrainsTheRequestInFlight(@TempDir Path tmp) throws Exception {
        int port = freePort();
        Path log = tmp.resolve("serve.log");
        Process p = serve(log, port);
        try {
            HttpClient client = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1).build();
            URI base = URI.create("http://127.0.0.1:" + port);
            long end;
            boolean saw503 = awaitReady(client, base, log);
            // a generation long enough to be in flight when SIGTERM arrives (guidance off: one UNet call per step)
            CompletableFuture<HttpResponse<byte[]>> inFlight = client.sendAsync(HttpRequest.newBuilder(base.resolve("/invocations"))
                    .header("Content-Type", "application/json")
                    .POST(HttpRequest.BodyPublishers.ofString(
                            "{\"prompt\":\"a\",\"parameters\":{\"num_inference_steps\":150,\"guidance_scale\":1,\"seed\":3}}"))
                    .build(), HttpResponse.BodyHandlers.ofByteArray());
            end = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
            while (System.nanoTime() < end && inflight(client, base) != 1) {
                Thread.sleep(20);
            }
            assertEquals(1, inflight(client, base), "request in flight");
            p.destroy();  // SIGTERM
            HttpResponse<byte[]> r = inFlight.get(60, TimeUnit.SECONDS);
            assertEquals(200, r.statusCode(), () -> new String(r.body(), StandardCharsets.UTF_8) + read(log));
            assertEquals("image/png", r.headers().firstValue("Content-Type").orElse(""));
            assertTrue(p.waitFor(60, TimeUnit.SECONDS), "process exits after draining");
            String out = read(log);
            assertTrue(out.contains("stop requested (SIGTERM, SIGINT or exit): draining"), out);
            assertTrue(out.contains("stopped"), out);
            // the request's lines carry its id; the health checks (503, then 200) are not in the INFO log
            String id = r.headers().firstValue("X-Request-Id").orElseThrow();
            assertTrue(out.contains("[request " + id + "] - POST /invocations -> 200"), out);
            assertFalse(out.contains("/ping"), out);
            System.out.println("saw 503 during load: " + saw503);
        } finally {
            p.destroyForcibly();
        }
    }

    @Test
    void jsonLogLinesCarryTheRequestId(@TempDir Path tmp) throws Exception {
        int port = freePort();
        Path log = tmp.resolve("serve.log");
        Process p = serve(log, port, "--log-format", "json");
        try {
            HttpClient client = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1).build();
            URI base = URI.create("http://127.0.0.1:" + port);
            awaitReady(client, base, log);
            HttpResponse<byte[]> ok = client.send(HttpRequest.newBuilder(base.resolve("/invocations"))
                    .header("Content-Type", "application/json")
                    .POST(HttpRequest.BodyPublishers.ofString("{\"prompt\":\"a\",\"parameters\":{\"num_inference_steps\":2}}"))
                    .build(), HttpResponse.BodyHandlers.ofByteArray());
            assertEquals(200, ok.statusCode(), () -> read(log));
            HttpResponse<byte[]> bad = client.send(HttpRequest.newBuilder(base.resolve("/invocations"))
                    .header("Content-Type", "application/json")
                    .POST(HttpRequest.BodyPublishers.ofString("{\"prompt\":\"a\",\"parameters\":{\"guidance_scale\":\"x\"}}"))
                    .build(), HttpResponse.BodyHandlers.ofByteArray());
            assertEquals(400, bad.statusCode(), () -> read(log));
            p.destroy();
            assertTrue(p.waitFor(60, TimeUnit.SECONDS), "process exits");
            String out = read(log);
            // every line of the JVM's is one JSON object; the only others are libtorch's own native warnings
            // ("[W1205 02:31:29.387172234 NNPACK.cpp:56] ..." on CPUs without NNPACK), which bypass the JVM's log
            List<JsonNode> lines = new ArrayList<>();
            for (String line : out.split("\n")) {
                if (line.matches("\\[[IWEF]\\d{4} \\d\\d:\\d\\d:\\d\\d\\.\\d+ .*")) {
                    continue;
                }
                if (!line.isBlank()) {
                    JsonNode n = JSON.readTree(line);
                    assertTrue(n.isObject() && n.has("level") && n.has("timestamp") && n.has("loggerName")
                            && n.has("formattedMessage"), line);
                    lines.add(n);
                }
            }
            for (HttpResponse<byte[]> r : List.of(ok, bad)) {
                String id = r.headers().firstValue("X-Request-Id").orElseThrow();
                List<JsonNode> mine = lines.stream().filter(n -> id.equals(n.path("mdc").path("request_id").asText()))
                        .toList();
                assertTrue(mine.stream().anyMatch(n -> n.path("formattedMessage").asText()
                        .startsWith("POST /invocations -> " + r.statusCode())), out);
            }
            // lines outside a request carry no request id; /ping stays out of the INFO log
            JsonNode listening = lines.stream().filter(n -> n.path("formattedMessage").asText().startsWith("listening on"))
                    .findFirst().orElseThrow(() -> new AssertionError(out));
            assertEquals("INFO", listening.path("level").asText());
            assertFalse(listening.path("mdc").has("request_id"), listening.toString());
            assertTrue(lines.stream().noneMatch(n -> n.path("formattedMessage").asText().contains("/ping")), out);
        } finally {
            p.destroyForcibly();
        }
    }

    private static double inflight(HttpClient c, URI base) {
        String text = metrics(c, base);
        return text.isEmpty() ? -1 : new PrometheusText(text).valueOrZero("sdjvm_inflight_requests");
    }

    private static String metrics(HttpClient c, URI base) {
        try {
            return c.send(HttpRequest.newBuilder(base.resolve("/metrics")).timeout(Duration.ofSeconds(5)).build(),
                    HttpResponse.BodyHandlers.ofString()).body();
        } catch (IOException | InterruptedException e) {
            return "";
        }
    }

    private static String read(Path log) {
        try {
            return Files.readString(log);
        } catch (IOException e) {
            return "";
        }
    }
}
