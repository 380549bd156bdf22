package dev.sdjvm.server;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

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
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code sd serve} as its own process: {@code /ping} 503 then 200, and SIGTERM ({@link Process#destroy()} on
 * Linux) with a request in flight: the request completes with 200, then the process exits 0.
 */
@Timeout(value = 180, unit = TimeUnit.SECONDS)
class ServeProcessTest {
    @Test
    void sigtermDrainsTheRequestInFlight(@TempDir Path tmp) throws Exception {
        assumeTrue(System.getProperty("os.name").toLowerCase().contains("linux"), "SIGTERM via Process.destroy: Linux only");
        Path target = Paths.get("target").toAbsolutePath();
        Path cpFile = target.resolve("test-classpath.txt");
        assumeTrue(Files.isRegularFile(cpFile), "target/test-classpath.txt not written (run through Maven)");
        String cp = target.resolve("classes") + ":" + Files.readString(cpFile).trim();
        int port;
        try (ServerSocket s = new ServerSocket(0)) {
            port = s.getLocalPort();
        }
        Path log = tmp.resolve("serve.log");
        Process p = new ProcessBuilder(List.of(Paths.get(System.getProperty("java.home"), "bin", "java").toString(),
                "-Xmx512m", "-cp", cp, "dev.sdjvm.cli.Main", "serve", "--port", Integer.toString(port),
                "--model", TestModels.resource("models/tiny-sd21-fp32").toString(), "--threads", "1"))
                .redirectErrorStream(true).redirectOutput(log.toFile()).start();
        try {
            HttpClient client = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1).build();
            URI base = URI.create("http://127.0.0.1:" + port);
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
            // a generation long enough to be in flight when SIGTERM arrives (guidance off: one UNet call per step)
            CompletableFuture<HttpResponse<byte[]>> inFlight = client.sendAsync(HttpRequest.newBuilder(base.resolve("/invocations"))
                    .header("Content-Type", "application/json")
                    .POST(HttpRequest.BodyPublishers.ofString(
                            "{\"prompt\":\"a\",\"parameters\":{\"num_inference_steps\":150,\"guidance_scale\":1,\"seed\":3}}"))
                    .build(), HttpResponse.BodyHandlers.ofByteArray());
            end = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
            while (System.nanoTime() < end && !metrics(client, base).contains("sdjvm_inflight_requests 1")) {
                Thread.sleep(20);
            }
            assertTrue(metrics(client, base).contains("sdjvm_inflight_requests 1"), "request in flight");
            p.destroy();  // SIGTERM
            HttpResponse<byte[]> r = inFlight.get(60, TimeUnit.SECONDS);
            assertEquals(200, r.statusCode(), () -> new String(r.body(), StandardCharsets.UTF_8) + read(log));
            assertEquals("image/png", r.headers().firstValue("Content-Type").orElse(""));
            assertTrue(p.waitFor(60, TimeUnit.SECONDS), "process exits after draining");
            String out = read(log);
            assertTrue(out.contains("stop requested (SIGTERM, SIGINT or exit): draining"), out);
            assertTrue(out.contains("stopped"), out);
            System.out.println("saw 503 during load: " + saw503);
        } finally {
            p.destroyForcibly();
        }
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
