package dev.sdjvm.server;

import static dev.sdjvm.server.InferenceServerTest.assertError;
import static dev.sdjvm.server.InferenceServerTest.json;
import static dev.sdjvm.server.InferenceServerTest.waitFor;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.sdjvm.errors.BackendException;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.net.SocketTimeoutException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * The server under abuse, against a {@link FakeEngine}: floods of idle and half-open connections (the 13 sockets
 * that took the JDK server down, and 200), slow bodies, client disconnects, Errors thrown by a generation, 50
 * concurrent invocations. /ping must keep answering within a second, every accepted request must be answered, and
 * no server thread may die.
 */
@Timeout(value = 120, unit = TimeUnit.SECONDS)
class ServerAbuseTest {
    final HttpClient client = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1)
            .connectTimeout(Duration.ofSeconds(5)).build();
    final List<Socket> sockets = new ArrayList<>();
    InferenceServer server;

    ServerConfig config() {
        return ServerConfig.defaults().withPort(0).withWorkers(1).withQueue(2).withTimeout(Duration.ofSeconds(20))
                .withDrainTimeout(Duration.ofSeconds(5));
    }

    InferenceServer start(ServerConfig c, FakeEngine e) throws Exception {
        server = InferenceServer.start(c, () -> e);
        server.ready().get(10, TimeUnit.SECONDS);
        return server;
    }

    @AfterEach
    void stop() {
        for (Socket s : sockets) {
            try {
                s.close();
            } catch (IOException ignored) {
                // closed
            }
        }
        if (server != null) {
            server.shutdown();
        }
    }

    URI uri(String path) {
        return URI.create("http://127.0.0.1:" + server.port() + path);
    }

    Socket open(String send) throws IOException {
        Socket s = new Socket();
        s.connect(new InetSocketAddress("127.0.0.1", server.port()), 5000);
        sockets.add(s);
        if (send != null) {
            s.getOutputStream().write(send.getBytes(StandardCharsets.US_ASCII));
            s.getOutputStream().flush();
        }
        return s;
    }

    /** GET /ping on a new connection (connect included, closed after); returns the seconds it took (asserting 200). */
    double ping() throws Exception {
        long t0 = System.nanoTime();
        try (Socket s = new Socket()) {
            s.connect(new InetSocketAddress("127.0.0.1", server.port()), 5000);
            s.getOutputStream().write("GET /ping HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
                    .getBytes(StandardCharsets.US_ASCII));
            String got = readUntilClosed(s, 5000);
            assertTrue(got.startsWith("HTTP/1.1 200") && got.contains("healthy"), got);
        }
        return (System.nanoTime() - t0) / 1e9;
    }

    HttpResponse<byte[]> invoke(String body) throws Exception {
        return client.send(HttpRequest.newBuilder(uri("/invocations")).header("Content-Type", "application/json")
                .timeout(Duration.ofSeconds(30)).POST(HttpRequest.BodyPublishers.ofString(body)).build(),
                HttpResponse.BodyHandlers.ofByteArray());
    }

    String metrics() {
        try {
            return new String(client.send(HttpRequest.newBuilder(uri("/metrics")).build(),
                    HttpResponse.BodyHandlers.ofByteArray()).body(), StandardCharsets.UTF_8);
        } catch (IOException | InterruptedException e) {
            throw new AssertionError("GET /metrics failed", e);
        }
    }

    /** Everything the socket receives until the server closes it (or the timeout passes). */
    static String readUntilClosed(Socket s, int timeoutMillis) throws IOException {
        s.setSoTimeout(timeoutMillis);
        StringBuilder sb = new StringBuilder();
        byte[] buf = new byte[4096];
        try (InputStream in = s.getInputStream()) {
            int n;
            while ((n = in.read(buf)) > 0) {
                sb.append(new String(buf, 0, n, StandardCharsets.ISO_8859_1));
            }
        } catch (SocketTimeoutException e) {
            sb.append("<still open>");
        } catch (IOException e) {
            sb.append("<reset>");
        }
        return sb.toString();
    }

    /** The server's threads by name (a pool replaces a dead thread with a new name). */
    static java.util.Set<String> serverThreads() {
        return Thread.getAllStackTraces().keySet().stream()
                .filter(t -> t.getName().startsWith("sdjvm-") && !t.getName().startsWith("sdjvm-loader")
                        && t.isAlive())
                .map(Thread::getName).collect(java.util.stream.Collectors.toCollection(java.util.TreeSet::new));
    }

    /** Starts every pool thread (they start lazily) and returns their names. */
    java.util.Set<String> warmUp() throws Exception {
        for (int i = 0; i < 4; i++) {
            ping();
            assertEquals(200, invoke("{\"prompt\":\"a\",\"parameters\":{\"num_inference_steps\":1}}").statusCode());
        }
        return serverThreads();
    }

    @Test
    void twoHundredHalfOpenConnectionsDoNotTakePingDown() throws Exception {
        FakeEngine e = new FakeEngine(1);
        start(config().withHeaderTimeout(Duration.ofSeconds(3)), e);
        java.util.Set<String> threadsBefore = warmUp();
        // the issue's probe: a request head without its final empty line, 200 times
        for (int i = 0; i < 200; i++) {
            open("GET /ping HTTP/1.1\r\nHost: x\r\n");
        }
        waitFor(() -> server.openConnections() >= 200, "200 connections open");
        double worst = 0;
        for (int i = 0; i < 10; i++) {
            worst = Math.max(worst, ping());
        }
        assertTrue(worst < 1.0, "/ping took " + worst + " s under the flood");
        HttpResponse<byte[]> r = invoke("{\"prompt\":\"a\",\"parameters\":{\"num_inference_steps\":2,\"seed\":4}}");
        assertEquals(200, r.statusCode());
        // the header timeout answers each of them 408 and closes it
        for (Socket s : sockets) {
            String got = readUntilClosed(s, 10_000);
            assertTrue(got.startsWith("HTTP/1.1 408"), got);
            assertTrue(got.contains("\"request_id\""), got);
            assertFalse(got.endsWith("<still open>"), got);
        }
        waitFor(() -> server.openConnections() <= 1, "every flood connection closed");  // 1: the HttpClient's
        assertEquals(200, new PrometheusText(metrics()).value("sdjvm_http_timeouts_total", "phase", "head"));
        assertEquals(threadsBefore, serverThreads(), "no thread was added or lost");
    }

    @Test
    void theConnectionCapEvictsIdleConnectionsNotPing() throws Exception {
        start(config().withMaxConnections(50), new FakeEngine(1));
        for (int i = 0; i < 200; i++) {
            open(null);  // connected, silent
        }
        waitFor(() -> server.openConnections() <= 50, "evictions down to the cap");
        // 200 silent connections at a cap of 50: 150 evicted (151 with the HttpClient's own connection)
        double evicted = new PrometheusText(metrics()).value("sdjvm_connections_closed_for_cap_total", "reason", "evicted");
        assertTrue(evicted >= 150 && evicted <= 151, "evicted " + evicted);
        for (int i = 0; i < 10; i++) {
            assertTrue(ping() < 1.0);
        }
        assertTrue(server.openConnections() <= 51, "open " + server.openConnections());
        int closed = 0;
        for (Socket s : sockets) {
            if (readUntilClosed(s, 50).isEmpty()) {
                closed++;
            }
        }
        assertTrue(closed >= 150, closed + " of 200 closed");
    }

    @Test
    void aSlowBodyGets408() throws Exception {
        start(config().withBodyTimeout(Duration.ofSeconds(1)), new FakeEngine(1));
        Socket s = open("POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                + "Content-Length: 100\r\n\r\n{\"prompt\":");
        long t0 = System.nanoTime();
        String got = readUntilClosed(s, 10_000);
        assertTrue(got.startsWith("HTTP/1.1 408"), got);
        assertTrue((System.nanoTime() - t0) / 1e9 < 5, "answered within the body timeout");
        assertTrue(ping() < 1.0);
    }

    @Test
    void aClientThatDisconnectsCancelsItsGenerationAndFreesTheWorker() throws Exception {
        FakeEngine e = new FakeEngine(20);
        start(config(), e);
        String body = "{\"prompt\":\"a\",\"parameters\":{\"num_inference_steps\":500}}";
        Socket s = open("POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                + "Content-Length: " + body.length() + "\r\n\r\n" + body);
        waitFor(() -> server.inFlight() == 1, "generation running");
        long t0 = System.nanoTime();
        s.close();
        waitFor(() -> e.cancelled.get() == 1, "generation cancelled");
        assertTrue((System.nanoTime() - t0) / 1e9 < 2, "cancelled at its next step, not after 500 x 20 ms");
        waitFor(() -> server.inFlight() == 0, "worker free");
        assertEquals(0, e.completed.get());
        assertEquals(1, server.cancelled("client_disconnect"));
        PrometheusText m = new PrometheusText(metrics());
        assertEquals(1, m.value("sdjvm_http_requests_total", "path", "/invocations", "code", "499"));
        assertEquals(1, m.value("sdjvm_invocations_cancelled_total", "reason", "client_disconnect"));
        assertEquals(0, m.valueOrZero("sdjvm_http_requests_total", "path", "/invocations", "code", "200"));
        assertEquals(200, invoke("{\"prompt\":\"a\",\"parameters\":{\"num_inference_steps\":1}}").statusCode());
    }

    @Test
    void aQueuedClientThatDisconnectsFreesItsSlot() throws Exception {
        FakeEngine e = new FakeEngine(1);
        e.gate = new CountDownLatch(1);
        start(config().withQueue(1), e);
        String body = "{\"prompt\":\"a\",\"parameters\":{\"num_inference_steps\":1}}";
        String raw = "POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: "
                + body.length() + "\r\nConnection: close\r\n\r\n" + body;
        Socket first = open(raw);
        waitFor(() -> server.inFlight() == 1, "first running");
        Socket queued = open(raw);
        waitFor(() -> server.queueDepth() == 1, "second queued");
        queued.close();
        waitFor(() -> server.queueDepth() == 0, "the queued slot is freed");
        CompletableFuture<HttpResponse<byte[]>> third = client.sendAsync(HttpRequest.newBuilder(uri("/invocations"))
                .header("Content-Type", "application/json").POST(HttpRequest.BodyPublishers.ofString(body)).build(),
                HttpResponse.BodyHandlers.ofByteArray());
        waitFor(() -> server.queueDepth() == 1, "third queued, not refused");
        e.gate.countDown();
        assertEquals(200, third.get(20, TimeUnit.SECONDS).statusCode());
        assertTrue(readUntilClosed(first, 10_000).startsWith("HTTP/1.1 200"));
        assertEquals(2, e.completed.get(), "the disconnected one never ran");
        assertEquals(1, server.cancelled("client_disconnect"));
    }

    @Test
    void errorsInAGenerationAreCleanAnswersAndTheServerStaysHealthy() throws Exception {
        FakeEngine e = new FakeEngine(1);
        start(config(), e);
        java.util.Set<String> threadsBefore = warmUp();
        String body = "{\"prompt\":\"a\",\"parameters\":{\"num_inference_steps\":2}}";
        String nativeMessage = "The following operation failed in the TorchScript interpreter.\n"
                + "Traceback of TorchScript, serialized code (most recent call last):\n"
                + "  File \"code/__torch__.py\", line 12\nRuntimeError: [enforce fail at alloc_cpu.cpp:117] "
                + "err == 0. DefaultCPUAllocator: can't allocate memory\nframe #0: c10::ThrowEnforceNotMet + 0x8c "
                + "(0x7f3a2b4c5d6e in /home/someone/.javacpp/cache/libc10.so)\n";
        Object[][] failures = {
            {(java.util.function.Supplier<Throwable>) () -> new BackendException(nativeMessage), 500},
            {(java.util.function.Supplier<Throwable>) () -> new OutOfMemoryError("Java heap space"), 503},
            {(java.util.function.Supplier<Throwable>) StackOverflowError::new, 500},
            {(java.util.function.Supplier<Throwable>) () -> new RuntimeException(nativeMessage), 500},
        };
        for (Object[] f : failures) {
            @SuppressWarnings("unchecked")
            java.util.function.Supplier<Throwable> t = (java.util.function.Supplier<Throwable>) f[0];
            e.failure = t;
            HttpResponse<byte[]> r = invoke(body);
            assertError(r, (Integer) f[1], null);
            String text = new String(r.body(), StandardCharsets.UTF_8);
            assertFalse(text.contains("/home") || text.contains(".so") || text.contains("frame #")
                    || text.contains("0x7f") || text.contains("TorchScript"), text);
            e.failure = null;
            assertTrue(ping() < 1.0);
            assertEquals(200, invoke(body).statusCode(), "the worker survived " + t.get());
        }
        assertEquals(threadsBefore, serverThreads(), "no server thread died");
    }

    @Test
    void fiftyConcurrentInvocationsAreEachAnswered() throws Exception {
        FakeEngine e = new FakeEngine(2);
        start(config().withWorkers(2).withQueue(20), e);
        List<CompletableFuture<HttpResponse<byte[]>>> fs = new ArrayList<>();
        for (int i = 0; i < 50; i++) {
            fs.add(client.sendAsync(HttpRequest.newBuilder(uri("/invocations"))
                    .header("Content-Type", "application/json")
                    .POST(HttpRequest.BodyPublishers.ofString("{\"prompt\":\"p" + i
                            + "\",\"parameters\":{\"num_inference_steps\":10,\"seed\":" + i + "}}")).build(),
                    HttpResponse.BodyHandlers.ofByteArray()));
        }
        int ok = 0;
        int busy = 0;
        for (int i = 0; i < 50; i++) {
            HttpResponse<byte[]> r = fs.get(i).get(60, TimeUnit.SECONDS);
            if (r.statusCode() == 200) {
                ok++;
                assertEquals(Integer.toString(i), r.headers().firstValue("X-Seed").orElse(""));
            } else {
                assertError(r, 503, null);
                assertTrue(r.headers().firstValue("Retry-After").isPresent());
                busy++;
            }
        }
        assertEquals(50, ok + busy);
        assertTrue(ok >= 22, ok + " admitted and answered (2 workers + 20 queued at least)");
        assertEquals(ok, e.completed.get());
        assertTrue(ping() < 1.0);
    }

    @Test
    void malformedAndOversizedRequestsAreNamed4xx() throws Exception {
        start(config().withMaxBodyBytes(1024), new FakeEngine(1));
        String got = readUntilClosed(open("GARBAGE\r\n\r\n"), 5000);
        assertTrue(got.startsWith("HTTP/1.1 400"), got);
        got = readUntilClosed(open("GET /ping HTTP/1.1\r\nHost: x\r\nX-Big: " + "a".repeat(40_000) + "\r\n\r\n"), 5000);
        assertTrue(got.startsWith("HTTP/1.1 431"), got);
        got = readUntilClosed(open("POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999\r\n\r\n"), 5000);
        assertTrue(got.startsWith("HTTP/1.1 413"), got);
        // a chunked body that grows past the limit
        Socket s = open("POST /invocations HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
                + "Content-Type: application/json\r\n\r\n");
        OutputStream out = s.getOutputStream();
        for (int i = 0; i < 3; i++) {
            out.write(("200\r\n" + "a".repeat(512) + "\r\n").getBytes(StandardCharsets.US_ASCII));
        }
        out.flush();
        got = readUntilClosed(s, 5000);
        assertTrue(got.startsWith("HTTP/1.1 413"), got);
        HttpResponse<byte[]> r = invoke("{\"prompt\":\"a\",\"parameters\":{\"num_inference_steps\":1,"
                + "\"num_images_per_prompt\":16,\"height\":64,\"width\":64}}");
        assertError(r, 413, "height");
        assertTrue(json(r).path("error").asText().contains("max_image_pixels"));
        assertTrue(ping() < 1.0);
    }
}
