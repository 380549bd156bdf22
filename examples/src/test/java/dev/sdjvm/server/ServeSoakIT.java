package dev.sdjvm.server;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.net.SocketTimeoutException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * A bounded soak of {@code sd serve} as its own JVM ({@code -Xmx256m}, {@code --max-connections 8}, the embedded
 * default model) under hostile clients on raw sockets, all to 127.0.0.1, every loop bounded: while a monitor opens a
 * new connection for {@code GET /ping} every 200 ms, the storm sends pipelined requests it never reads (one socket
 * with megabytes of {@code /ping}, eight holding every connection slot with unread {@code /metrics}), half-closes,
 * a malformed chunked body, bad JSON, duplicate keys, and clients that reset their connection mid-generation.
 * Asserted: the process never dies, every {@code /ping} is answered 200 within 1 s, client mistakes get 4xx (never
 * 5xx), 400 bodies do not name Jackson's classes, the 499 count is at most one per disconnected request, and the
 * child's RSS (from {@code /proc}) after the storm and a GC is within 10% of before; then {@code sdjvm.soak.prompts}
 * (default 30; 500 for the long run) invocations with 900 KB prompts leave RSS after a GC within 10% of before.
 *
 * <p>Run alone: {@code mvn -B -pl examples -am verify -Dtest=none -Dsurefire.failIfNoSpecifiedTests=false
 * -Dit.test=ServeSoakIT -Dfailsafe.failIfNoSpecifiedTests=false [-Dsdjvm.soak.prompts=500]}. It prints its figures.
 */
@Timeout(value = 600, unit = TimeUnit.SECONDS)
class ServeSoakIT {
    private static Process server;
    private static Path log;
    private static int port;
    private static long pid;

    @BeforeAll
    static void startServer() throws Exception {
        assumeTrue(Files.isReadable(Path.of("/proc/self/status")), "RSS from /proc: Linux only");
        Path target = Paths.get("target").toAbsolutePath();
        Path cpFile = target.resolve("test-classpath.txt");
        assumeTrue(Files.isRegularFile(cpFile), "target/test-classpath.txt not written (run through Maven)");
        String cp = target.resolve("classes") + ":" + Files.readString(cpFile).trim();
        try (ServerSocket s = new ServerSocket(0)) {
            port = s.getLocalPort();
        }
        log = Files.createTempFile("sdjvm-soak-", ".log");
        server = new ProcessBuilder(List.of(Paths.get(System.getProperty("java.home"), "bin", "java").toString(),
                "-Xmx256m", "-XX:+ExitOnOutOfMemoryError", "-Dorg.bytedeco.javacpp.maxPhysicalBytes=0", "-cp", cp,
                "dev.sdjvm.cli.Main", "serve", "--port", Integer.toString(port), "--threads", "1",
                "--max-connections", "8", "--workers", "1", "--queue", "4"))
                .redirectErrorStream(true).redirectOutput(log.toFile()).start();
        pid = server.pid();
        long end = System.nanoTime() + TimeUnit.SECONDS.toNanos(180);
        int ping = -1;
        while (System.nanoTime() < end && ping != 200 && server.isAlive()) {
            ping = ping(2000).status;
            Thread.sleep(200);
        }
        assertEquals(200, ping, "the server did not become ready:\n" + tail());
    }

    @AfterAll
    static void stopServer() throws Exception {
        if (server != null) {
            server.destroy();
            if (!server.waitFor(30, TimeUnit.SECONDS)) {
                server.destroyForcibly();
            }
            System.out.println("server log tail:\n" + tail());
            Files.deleteIfExists(log);
        }
    }

    @Test
    void hostileClientsCannotStarvePingOrGrowMemory() throws Exception {
        // warm-up: the first generations, a few large bodies and a scrape allocate what stays (code, caches)
        for (int i = 0; i < 3; i++) {
            assertEquals(200, invoke("{\"prompt\":\"a red circle\",\"parameters\":{\"num_inference_steps\":2}}").status);
        }
        String big = bigPromptBody();
        for (int i = 0; i < 5; i++) {
            assertEquals(200, invoke(big).status);
        }
        long rssBefore = rssAfterGc();
        long fiveXxBefore = fiveXx(get("/metrics").text());  // the 503s /ping answered while the model loaded

        List<Long> pingMillis = Collections.synchronizedList(new ArrayList<>());
        List<String> pingFailures = Collections.synchronizedList(new ArrayList<>());
        AtomicBoolean storming = new AtomicBoolean(true);
        Thread monitor = new Thread(() -> {
            while (storming.get()) {
                long t0 = System.nanoTime();
                Response r = ping(1000);
                long ms = (System.nanoTime() - t0) / 1_000_000;
                pingMillis.add(ms);
                if (r.status != 200 || ms >= 1000) {
                    pingFailures.add(r.status + " in " + ms + " ms");
                }
                try {
                    Thread.sleep(200);
                } catch (InterruptedException e) {
                    return;
                }
            }
        }, "ping-monitor");
        monitor.start();
        List<Socket> held = new ArrayList<>();
        int held499Clients = 0;
        try {
            // 1. one socket pipelines /ping for 5 s and reads nothing
            Socket pipe = rawSocket(4096);
            held.add(pipe);
            long pingBytes = sendFor(pipe, "GET /ping HTTP/1.1\r\nHost: x\r\n\r\n".repeat(1000), 5000);
            // 2. eight sockets (the whole --max-connections) each pipeline 30 /metrics and read nothing
            for (int i = 0; i < 8; i++) {
                Socket s = rawSocket(4096);
                held.add(s);
                sendFor(s, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n".repeat(30), 2000);
            }
            Thread.sleep(1500);
            Response meanwhile = invoke("{\"prompt\":\"a\",\"parameters\":{\"num_inference_steps\":2}}");
            assertEquals(200, meanwhile.status, "a real request while the slots are held: " + meanwhile.text());
            // 3. half-close after a complete POST: answered (after interim 100 Continue probes)
            String body = "{\"prompt\":\"a\",\"parameters\":{\"num_inference_steps\":2}}";
            try (Socket s = rawSocket(0)) {
                s.getOutputStream().write(post(body, "application/json"));
                s.shutdownOutput();
                Response r = Response.parse(readAll(s, 60_000));
                assertEquals(200, r.status, "half-closed client: " + r.text());
                assertEquals("image/png", r.header("content-type"));
            }
            // 4. malformed chunked body: a valid chunk, then ZZZZ as the next size
            try (Socket s = rawSocket(0)) {
                s.getOutputStream().write(("POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                        + "Transfer-Encoding: chunked\r\n\r\n5\r\n{\"pro\r\nZZZZ\r\n\r\n").getBytes(StandardCharsets.US_ASCII));
                Response r = Response.parse(readAll(s, 10_000));
                assertEquals(400, r.status, r.text());
                assertTrue(r.text().contains("chunked"), r.text());
            }
            // 5. bad inputs: each a 4xx naming the problem in our words
            String[][] bad = {
                {"{\"prompt\":\"a\",\"prompt\":\"b\"}", "duplicate key 'prompt'"},
                {"{\"prompt\":\"a\",\"parameters\":{\"seed\":1,\"seed\":2}}", "duplicate key 'seed'"},
                {"{\"prompt\":\"a\",\"parameters\":{\"guidance_scale\":NaN}}", "NaN is not a JSON number"},
                {"[".repeat(1200) + "]".repeat(1200), "nested deeper than"},
                {"{\"prompt\":\"a\"} {}", "more data after the JSON value"},
                {"{\"prompt\":\"a\"", "ends before"},
                {"{\"prompt\": tru}", "invalid JSON"},
            };
            for (String[] b : bad) {
                Response r = invoke(b[0]);
                assertEquals(400, r.status, b[0] + " -> " + r.text());
                assertTrue(r.text().contains(b[1]), r.text());
                for (String leak : new String[] {"com.fasterxml", "StreamReadConstraints", "JsonReadFeature",
                        "JsonNode", "DeserializationFeature", "`"}) {
                    assertFalse(r.text().contains(leak), r.text());
                }
            }
            // 6. four clients (within --workers 1 + --queue 4, so none is a 503) send a generation and reset the
            //    connection (SO_LINGER 0)
            String longGen = "{\"prompt\":\"a\",\"parameters\":{\"num_inference_steps\":200,\"guidance_scale\":1}}";
            List<Socket> resets = new ArrayList<>();
            for (int i = 0; i < 4; i++) {
                Socket s = rawSocket(0);
                s.getOutputStream().write(post(longGen, "application/json"));
                resets.add(s);
            }
            held499Clients = resets.size();
            Thread.sleep(300);
            for (Socket s : resets) {
                s.setSoLinger(true, 0);
                s.close();
            }
            Thread.sleep(2000);
            System.out.printf(Locale.ROOT, "soak: pipelined %d bytes of /ping unread, 8 x 30 /metrics unread,"
                    + " %d bad inputs, %d resets%n", pingBytes, bad.length + 2, resets.size());
        } finally {
            for (Socket s : held) {
                s.close();
            }
            storming.set(false);
            monitor.join(5000);
        }
        assertTrue(server.isAlive(), "the server died:\n" + tail());
        assertTrue(pingFailures.isEmpty(), "/ping not 200 within 1 s: " + pingFailures + "\n" + tail());
        assertTrue(pingMillis.size() >= 20, "the monitor pinged " + pingMillis.size() + " times");
        String metrics = get("/metrics").text();
        assertEquals(fiveXxBefore, fiveXx(metrics), "a 5xx during the storm: " + metrics);
        long n499 = metricValue(metrics, "sdjvm_http_requests_total{path=\"/invocations\",code=\"499\"}");
        assertTrue(n499 <= held499Clients, n499 + " 499s counted for " + held499Clients + " disconnected requests");
        long cancelled = metricValue(metrics, "sdjvm_invocations_cancelled_total{reason=\"client_disconnect\"}");
        assertTrue(cancelled <= n499, cancelled + " generations cancelled for " + n499 + " disconnects");
        // the generations the resets cancelled leave the worker: wait for it to be idle before measuring
        long idleBy = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
        while (System.nanoTime() < idleBy && !get("/metrics").text().contains("sdjvm_inflight_requests 0")) {
            Thread.sleep(200);
        }
        long rssAfter = rssAfterGc();
        System.out.printf(Locale.ROOT, "soak: RSS before %.1f MiB, after the storm + GC %.1f MiB (%+.1f%%);"
                + " /ping %d times, slowest %d ms; 499 counted %d%n", rssBefore / 1048576.0, rssAfter / 1048576.0,
                100.0 * (rssAfter - rssBefore) / rssBefore, pingMillis.size(), Collections.max(pingMillis), n499);
        assertTrue(rssAfter <= rssBefore * 1.10, "RSS " + rssBefore + " -> " + rssAfter + " after the storm");

        // large prompts: RSS after a GC stays within 10%
        int prompts = Integer.getInteger("sdjvm.soak.prompts", 30);
        long rssPromptsBefore = rssAfterGc();
        long t0 = System.nanoTime();
        for (int i = 0; i < prompts; i++) {
            Response r = invoke(big);
            assertEquals(200, r.status, r.text());
        }
        long rssPromptsAfter = rssAfterGc();
        System.out.printf(Locale.ROOT, "soak: %d invocations with a %d KB prompt in %.1f s: RSS after GC %.1f -> %.1f"
                + " MiB (%+.1f%%)%n", prompts, big.length() / 1000, (System.nanoTime() - t0) / 1e9,
                rssPromptsBefore / 1048576.0, rssPromptsAfter / 1048576.0,
                100.0 * (rssPromptsAfter - rssPromptsBefore) / rssPromptsBefore);
        assertTrue(rssPromptsAfter <= rssPromptsBefore * 1.10,
                "RSS " + rssPromptsBefore + " -> " + rssPromptsAfter + " over " + prompts + " large prompts");
        assertTrue(server.isAlive(), "the server died:\n" + tail());
    }

    // ------------------------------------------------------------------------------------------------ helpers

    private static String bigPromptBody() {
        return "{\"prompt\":\"" + "a ".repeat(450_000) + "\",\"parameters\":{\"num_inference_steps\":1}}";
    }

    private static long rssAfterGc() throws Exception {
        Path jcmd = Paths.get(System.getProperty("java.home"), "bin", "jcmd");
        if (Files.isExecutable(jcmd)) {
            Process p = new ProcessBuilder(jcmd.toString(), Long.toString(pid), "GC.run").redirectErrorStream(true)
                    .redirectOutput(ProcessBuilder.Redirect.DISCARD).start();
            p.waitFor(30, TimeUnit.SECONDS);
        }
        Thread.sleep(1000);
        for (String line : Files.readAllLines(Path.of("/proc/" + pid + "/status"))) {
            if (line.startsWith("VmRSS:")) {
                return Long.parseLong(line.substring(6).trim().split("\\s+")[0]) * 1024;
            }
        }
        throw new IllegalStateException("no VmRSS for " + pid);
    }

    /** All 5xx answers counted in a /metrics text. */
    private static long fiveXx(String text) {
        Matcher m = Pattern.compile("^sdjvm_http_requests_total\\{[^}]*code=\"5\\d\\d\"\\} (\\d+)$", Pattern.MULTILINE)
                .matcher(text);
        long n = 0;
        while (m.find()) {
            n += Long.parseLong(m.group(1));
        }
        return n;
    }

    private static long metricValue(String text, String name) {
        Matcher m = Pattern.compile("^" + Pattern.quote(name) + " (\\d+)$", Pattern.MULTILINE).matcher(text);
        return m.find() ? Long.parseLong(m.group(1)) : 0;
    }

    private static Socket rawSocket(int receiveBuffer) throws IOException {
        Socket s = new Socket();
        if (receiveBuffer > 0) {
            s.setReceiveBufferSize(receiveBuffer);
        }
        s.connect(new InetSocketAddress("127.0.0.1", port), 2000);
        s.setSoTimeout(2000);
        return s;
    }

    /** Writes {@code chunk} repeatedly for up to {@code millis} (or until the server stops reading); bytes sent. */
    private static long sendFor(Socket s, String chunk, long millis) throws Exception {
        byte[] b = chunk.getBytes(StandardCharsets.US_ASCII);
        java.util.concurrent.atomic.AtomicLong sent = new java.util.concurrent.atomic.AtomicLong();
        long end = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(millis);
        Thread writer = new Thread(() -> {
            try {
                OutputStream out = s.getOutputStream();
                while (System.nanoTime() < end) {
                    out.write(b);
                    sent.addAndGet(b.length);
                }
            } catch (IOException blockedOrClosed) {
                // the server stopped reading (a blocked write is unblocked by the close below) or closed it
            }
        });
        writer.setDaemon(true);
        writer.start();
        writer.join(millis + 500);  // still blocked after that: the server stopped reading, as it should
        return sent.get();
    }

    private static byte[] post(String body, String type) {
        byte[] b = body.getBytes(StandardCharsets.UTF_8);
        String head = "POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Type: " + type + "\r\nContent-Length: "
                + b.length + "\r\n\r\n";
        byte[] h = head.getBytes(StandardCharsets.US_ASCII);
        byte[] all = new byte[h.length + b.length];
        System.arraycopy(h, 0, all, 0, h.length);
        System.arraycopy(b, 0, all, h.length, b.length);
        return all;
    }

    private static Response invoke(String json) throws IOException {
        try (Socket s = rawSocket(0)) {
            byte[] req = post(json, "application/json");
            String withClose = new String(req, StandardCharsets.ISO_8859_1).replaceFirst("\r\n\r\n",
                    "\r\nConnection: close\r\n\r\n");
            s.getOutputStream().write(withClose.getBytes(StandardCharsets.ISO_8859_1));
            return Response.parse(readAll(s, 120_000));
        }
    }

    private static Response get(String path) throws IOException {
        try (Socket s = rawSocket(0)) {
            s.getOutputStream().write(("GET " + path + " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                    .getBytes(StandardCharsets.US_ASCII));
            return Response.parse(readAll(s, 10_000));
        }
    }

    /** GET /ping on a new connection within {@code millis}; status -1 when not answered in time. */
    private static Response ping(int millis) {
        try (Socket s = new Socket()) {
            s.connect(new InetSocketAddress("127.0.0.1", port), millis);
            s.getOutputStream().write("GET /ping HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
                    .getBytes(StandardCharsets.US_ASCII));
            return Response.parse(readAll(s, millis));
        } catch (IOException e) {
            return new Response(-1, "", e.toString());
        }
    }

    private static byte[] readAll(Socket s, int millis) throws IOException {
        s.setSoTimeout(millis);
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        InputStream in = s.getInputStream();
        byte[] buf = new byte[65536];
        long end = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(millis);
        try {
            int n;
            while (System.nanoTime() < end && (n = in.read(buf)) > 0) {
                out.write(buf, 0, n);
            }
        } catch (SocketTimeoutException e) {
            if (out.size() == 0) {
                throw e;
            }
        }
        return out.toByteArray();
    }

    private static String tail() {
        try {
            List<String> lines = Files.readAllLines(log);
            return String.join("\n", lines.subList(Math.max(0, lines.size() - 40), lines.size()));
        } catch (IOException e) {
            return "";
        }
    }

    /** The final response (interim 1xx skipped). */
    record Response(int status, String head, String body) {
        static Response parse(byte[] raw) {
            String all = new String(raw, StandardCharsets.ISO_8859_1);
            while (all.startsWith("HTTP/1.1 1")) {
                int e = all.indexOf("\r\n\r\n");
                all = e < 0 ? "" : all.substring(e + 4);
            }
            int e = all.indexOf("\r\n\r\n");
            if (!all.startsWith("HTTP/") || e < 0) {
                return new Response(-1, all, "");
            }
            String head = all.substring(0, e);
            return new Response(Integer.parseInt(head.substring(9, 12)), head, all.substring(e + 4));
        }

        String header(String name) {
            for (String line : head.split("\r\n")) {
                int c = line.indexOf(':');
                if (c > 0 && line.substring(0, c).trim().equalsIgnoreCase(name)) {
                    return line.substring(c + 1).trim();
                }
            }
            return null;
        }

        String text() {
            return status + " " + (body.length() > 500 ? body.substring(0, 500) + "..." : body);
        }
    }
}
