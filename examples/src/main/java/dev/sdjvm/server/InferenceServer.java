package dev.sdjvm.server;

import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpServer;
import dev.sdjvm.GenerationCancelledException;
import dev.sdjvm.GenerationRequest;
import dev.sdjvm.GenerationResult;
import dev.sdjvm.InvalidRequestException;
import dev.sdjvm.cli.GenerationParameters;
import dev.sdjvm.cli.ImageFiles;
import dev.sdjvm.image.RgbImage;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.nio.charset.Charset;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Base64;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.Callable;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.Semaphore;
import java.util.concurrent.ThreadFactory;
import java.util.concurrent.ThreadPoolExecutor;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.Supplier;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The SageMaker-contract inference server.
 *
 * <ul>
 *   <li>{@code GET /ping}: 200 once the model is loaded and warm, 503 while loading or draining.</li>
 *   <li>{@code POST /invocations}: {@code application/json} {@code {"prompt": "...", "parameters": {...}}} (diffusers'
 *       names) or a {@code text/plain} prompt; answers {@code image/png} (default), {@code image/jpeg} or
 *       {@code application/json} by {@code Accept}. Image responses carry the first image and the headers
 *       {@code X-Seed} and {@code X-Image-Count}; ask for JSON to get all of them.</li>
 *   <li>{@code GET /metrics}: Prometheus text.</li>
 * </ul>
 * Admission: at most {@code workers + queue} requests are admitted; more get 503 with {@code Retry-After}. Each
 * request has a deadline ({@code timeout} after arrival) that cancels its generation at the next step: 504.
 * {@link #shutdown()} (run by the JVM shutdown hook on SIGTERM) turns new requests away with 503, lets admitted
 * ones finish within {@code drainTimeout}, cancels the rest, then stops.
 */
public final class InferenceServer implements AutoCloseable {
    private static final Logger LOG = LoggerFactory.getLogger(InferenceServer.class);
    /** Extra HTTP threads beyond the admitted requests, for /ping, /metrics and fast rejections. */
    private static final int SPARE_HTTP_THREADS = 8;
    /** How long past its deadline a request waits for its generation to notice the cancellation. */
    private static final Duration CANCEL_GRACE = Duration.ofSeconds(2);

    private final ServerConfig config;
    private final HttpServer http;
    private final ThreadPoolExecutor httpPool;
    private final ExecutorService workerPool;
    private final Semaphore slots;
    private final Metrics metrics = new Metrics();
    private final CompletableFuture<Engine> ready = new CompletableFuture<>();
    private final AtomicInteger activeInvocations = new AtomicInteger();
    private final AtomicInteger running = new AtomicInteger();
    private final CountDownLatch terminated = new CountDownLatch(1);
    private volatile Engine engine;
    private volatile boolean draining;
    private volatile boolean forceCancel;
    private volatile double ewmaSeconds = 0;
    private boolean shutdownStarted;

    private InferenceServer(ServerConfig config) throws IOException {
        this.config = config;
        this.slots = new Semaphore(config.workers() + config.queue());
        this.http = HttpServer.create(new InetSocketAddress(config.bind(), config.port()), 64);
        int httpThreads = config.workers() + config.queue() + SPARE_HTTP_THREADS;
        // bounded: the connection backlog is bounded by the OS; beyond this queue the dispatcher thread serves the
        // exchange itself (by then admission is full, so it is a quick 503)
        this.httpPool = new ThreadPoolExecutor(httpThreads, httpThreads, 30, TimeUnit.SECONDS,
                new LinkedBlockingQueue<>(1024), threads("sdjvm-http"), new ThreadPoolExecutor.CallerRunsPolicy());
        this.workerPool = Executors.newFixedThreadPool(config.workers(), threads("sdjvm-worker"));
        http.setExecutor(httpPool);
        http.createContext("/", this::handle);
    }

    /**
     * Starts listening at once (so {@code /ping} answers 503 during the load), then loads the engine on a background
     * thread. {@link #ready()} completes when the model is loaded, or exceptionally when loading failed.
     */
    public static InferenceServer start(ServerConfig config, Callable<Engine> loader) throws IOException {
        InferenceServer s = new InferenceServer(config);
        s.http.start();
        LOG.info("listening on http://{}:{} (workers {}, queue {}, timeout {} s)", config.bind(), s.port(),
                config.workers(), config.queue(), config.timeout().toMillis() / 1000.0);
        Thread t = new Thread(() -> {
            try {
                Engine e = loader.call();
                synchronized (s) {
                    if (s.shutdownStarted) {
                        e.close();
                        s.ready.completeExceptionally(new IllegalStateException("server stopped during load"));
                        return;
                    }
                    s.engine = e;
                }
                LOG.info("model ready: {}", e.info());
                s.ready.complete(e);
            } catch (Throwable ex) {
                LOG.error("model load failed: {}", ex.toString());
                s.ready.completeExceptionally(ex);
            }
        }, "sdjvm-loader");
        t.setDaemon(true);
        t.start();
        return s;
    }

    /** Completes with the engine once loaded and warm; exceptionally if the load failed. */
    public CompletableFuture<Engine> ready() {
        return ready;
    }

    /** The bound port (useful with port 0). */
    public int port() {
        return http.getAddress().getPort();
    }

    /** Generations running now. */
    public int inFlight() {
        return running.get();
    }

    /** Admitted requests waiting for a worker. */
    public int queueDepth() {
        int admitted = config.workers() + config.queue() - slots.availablePermits();
        return Math.max(0, admitted - running.get());
    }

    /** Adds a JVM shutdown hook (SIGTERM) that drains and stops this server. */
    public InferenceServer installShutdownHook() {
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            LOG.info("SIGTERM: draining (up to {} s)", config.drainTimeout().toSeconds());
            shutdown();
        }, "sdjvm-shutdown"));
        return this;
    }

    /** Blocks until {@link #shutdown()} has finished. */
    public void awaitTermination() throws InterruptedException {
        terminated.await();
    }

    /**
     * Graceful stop: new requests get 503, admitted ones may finish within the drain timeout (then they are
     * cancelled), then the listener stops and the model is closed. Idempotent; blocks until done.
     */
    public void shutdown() {
        synchronized (this) {
            if (shutdownStarted) {
                try {
                    terminated.await();
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                }
                return;
            }
            shutdownStarted = true;
        }
        draining = true;
        try {
            long end = System.nanoTime() + config.drainTimeout().toNanos();
            if (!waitIdle(end)) {
                LOG.warn("{} request(s) still in flight after {} s: cancelling them", activeInvocations.get(),
                        config.drainTimeout().toSeconds());
                forceCancel = true;
                waitIdle(System.nanoTime() + TimeUnit.SECONDS.toNanos(5));
            }
            http.stop(0);
            workerPool.shutdownNow();
            httpPool.shutdownNow();
            Engine e = engine;
            if (e != null) {
                e.close();
            }
            LOG.info("stopped");
        } finally {
            terminated.countDown();
        }
    }

    @Override
    public void close() {
        shutdown();
    }

    private boolean waitIdle(long endNanos) {
        while (activeInvocations.get() > 0 && System.nanoTime() < endNanos) {
            try {
                Thread.sleep(20);
            } catch (InterruptedException ie) {
                Thread.currentThread().interrupt();
                return false;
            }
        }
        return activeInvocations.get() == 0;
    }

    // ------------------------------------------------------------------------------------------------ routing

    private void handle(HttpExchange ex) {
        String path = ex.getRequestURI().getPath();
        try {
            switch (path) {
                case "/ping":
                    ping(ex);
                    break;
                case "/invocations":
                    invocations(ex);
                    break;
                case "/metrics":
                    metrics(ex);
                    break;
                default:
                    sendError(ex, "other", new HttpError(404, null, "no such path: " + path
                            + " (this server has /ping, /invocations, /metrics)"));
            }
        } catch (IOException e) {
            LOG.debug("client connection failed: {}", e.toString());
        } catch (RuntimeException e) {
            LOG.error("unexpected error on {}", path, e);
            try {
                sendError(ex, "other", new HttpError(500, null, "internal error: " + e));
            } catch (IOException ignored) {
                // connection gone
            }
        } finally {
            ex.close();
        }
    }

    private void ping(HttpExchange ex) throws IOException {
        if (!isGetOrHead(ex)) {
            ex.getResponseHeaders().set("Allow", "GET, HEAD");
            sendError(ex, "/ping", new HttpError(405, null, "method " + ex.getRequestMethod() + " not allowed"));
            return;
        }
        if (draining) {
            send(ex, "/ping", 503, "application/json", json("status", "draining"));
        } else if (engine == null) {
            send(ex, "/ping", 503, "application/json",
                    json("status", ready.isCompletedExceptionally() ? "failed" : "loading"));
        } else {
            send(ex, "/ping", 200, "application/json", json("status", "healthy"));
        }
    }

    private void metrics(HttpExchange ex) throws IOException {
        if (!isGetOrHead(ex)) {
            ex.getResponseHeaders().set("Allow", "GET, HEAD");
            sendError(ex, "/metrics", new HttpError(405, null, "method " + ex.getRequestMethod() + " not allowed"));
            return;
        }
        Map<String, Supplier<Number>> g = new LinkedHashMap<>();
        Map<String, String> help = new LinkedHashMap<>();
        gauge(g, help, "sdjvm_queue_depth", "Admitted requests waiting for a worker.", this::queueDepth);
        gauge(g, help, "sdjvm_inflight_requests", "Generations running now.", running::get);
        gauge(g, help, "sdjvm_workers", "Generation workers.", config::workers);
        gauge(g, help, "sdjvm_queue_capacity", "Requests that may wait beyond the workers.", config::queue);
        gauge(g, help, "sdjvm_model_ready", "1 once the model is loaded and warm.", () -> engine != null ? 1 : 0);
        gauge(g, help, "sdjvm_process_peak_rss_bytes", "Peak resident set size (VmHWM).", () -> procStatusBytes("VmHWM:"));
        gauge(g, help, "sdjvm_process_rss_bytes", "Resident set size (VmRSS).", () -> procStatusBytes("VmRSS:"));
        Engine e = engine;
        String info = null;
        if (e != null) {
            Engine.Info i = e.info();
            gauge(g, help, "sdjvm_model_weight_bytes", "Sum of the artifact file sizes.", i::weightBytes);
            gauge(g, help, "sdjvm_model_load_seconds", "Model load time including warm-up.", i::loadSeconds);
            info = "model=\"" + Metrics.label(i.model()) + "\",precision=\"" + Metrics.label(i.precision())
                    + "\",height=\"" + i.height() + "\",width=\"" + i.width() + "\"";
        }
        // count this scrape before rendering so that the text includes it
        metrics.request("/metrics", 200);
        byte[] body = metrics.render(g, help, info).getBytes(StandardCharsets.UTF_8);
        write(ex, 200, "text/plain; version=0.0.4; charset=utf-8", body);
    }

    private static void gauge(Map<String, Supplier<Number>> g, Map<String, String> help, String name, String text,
                              Supplier<Number> s) {
        g.put(name, s);
        help.put(name, text);
    }

    /** A value in kB from /proc/self/status, in bytes; -1 where there is no /proc. */
    public static long procStatusBytes(String key) {
        try {
            for (String line : java.nio.file.Files.readAllLines(java.nio.file.Path.of("/proc/self/status"))) {
                if (line.startsWith(key)) {
                    String[] parts = line.substring(key.length()).trim().split("\\s+");
                    return Long.parseLong(parts[0]) * 1024;
                }
            }
        } catch (IOException | RuntimeException e) {
            // not Linux
        }
        return -1;
    }

    // ------------------------------------------------------------------------------------------------ invocations

    private void invocations(HttpExchange ex) throws IOException {
        long t0 = System.nanoTime();
        Instant arrival = Instant.now();
        activeInvocations.incrementAndGet();
        try {
            try {
                respondToInvocation(ex, arrival);
            } catch (HttpError err) {
                sendError(ex, "/invocations", err);
            }
        } finally {
            metrics.latency(System.nanoTime() - t0);
            activeInvocations.decrementAndGet();
        }
    }

    private void respondToInvocation(HttpExchange ex, Instant arrival) throws IOException {
        if (!"POST".equals(ex.getRequestMethod())) {
            ex.getResponseHeaders().set("Allow", "POST");
            throw new HttpError(405, null, "method " + ex.getRequestMethod() + " not allowed; use POST");
        }
        if (draining) {
            ex.getResponseHeaders().set("Retry-After", "5");
            throw new HttpError(503, null, "the server is shutting down");
        }
        Engine eng = engine;
        if (eng == null) {
            ex.getResponseHeaders().set("Retry-After", "5");
            throw new HttpError(503, null, ready.isCompletedExceptionally() ? "the model failed to load"
                    : "the model is still loading");
        }
        String contentType = ex.getRequestHeaders().getFirst("Content-Type");
        ImageFiles.Format[] fmt = new ImageFiles.Format[1];
        boolean wantJson = negotiate(ex.getRequestHeaders().get("Accept"), fmt);
        byte[] body = readBody(ex);
        GenerationRequest.Builder b = parseBody(contentType, body);

        Instant deadline = arrival.plus(config.timeout());
        Job job = new Job();
        GenerationRequest req;
        String schedulerClass;
        try {
            // cheap checks before queueing (building the request checks it); the model-dependent ones (height/width
            // vs the artifacts) run in the worker
            req = b.deadline(deadline).listener((s, n, t, el) -> !job.cancelled && !forceCancel).build();
            schedulerClass = eng.schedulerClass(req);
        } catch (InvalidRequestException e) {
            throw new HttpError(400, e.field(), e.getMessage());
        }
        if (!slots.tryAcquire()) {
            ex.getResponseHeaders().set("Retry-After", Long.toString(retryAfterSeconds()));
            throw new HttpError(503, null, "overloaded: " + config.workers() + " worker(s) busy and the queue of "
                    + config.queue() + " is full");
        }
        job.request = req;
        job.engine = eng;
        job.deadline = deadline;
        try {
            workerPool.execute(job);
        } catch (java.util.concurrent.RejectedExecutionException e) {
            slots.release();
            ex.getResponseHeaders().set("Retry-After", "5");
            throw new HttpError(503, null, "the server is shutting down");
        }
        GenerationResult result = await(job, deadline);
        ewmaSeconds = ewmaSeconds == 0 ? result.timings().totalNanos() / 1e9
                : 0.8 * ewmaSeconds + 0.2 * result.timings().totalNanos() / 1e9;
        metrics.images(result.images().size());
        Engine.Info info = eng.info();
        RgbImage first = result.images().get(0);
        String text = GenerationParameters.a1111(req, result.seed(), schedulerClass, first.width(), first.height(),
                info.model());
        Map<String, String> pngText = Map.of(GenerationParameters.PNG_KEYWORD, text);
        ex.getResponseHeaders().set("X-Seed", Long.toString(result.seed()));
        ex.getResponseHeaders().set("X-Image-Count", Integer.toString(result.images().size()));
        if (wantJson) {
            ObjectNode root = InvocationParser.JSON.createObjectNode();
            ArrayNode imgs = root.putArray("images");
            for (RgbImage img : result.images()) {
                imgs.add(Base64.getEncoder().encodeToString(
                        ImageFiles.encode(img.toBufferedImage(), fmt[0], pngText)));
            }
            root.put("format", fmt[0].extension());
            root.put("seed", result.seed());
            ObjectNode t = root.putObject("timings");
            GenerationResult.Timings tm = result.timings();
            t.put("total_ms", tm.totalNanos() / 1e6);
            t.put("tokenize_ms", tm.tokenizeNanos() / 1e6);
            t.put("encode_ms", tm.encodeNanos() / 1e6);
            t.put("denoise_ms", tm.denoiseNanos() / 1e6);
            t.put("unet_ms", tm.unetNanos() / 1e6);
            t.put("decode_ms", tm.decodeNanos() / 1e6);
            t.put("steps", tm.steps());
            t.put("seconds_per_step", tm.secondsPerStep());
            t.put("overhead_ms_per_step", tm.overheadMillisPerStep());
            ObjectNode p = root.putObject("parameters");
            p.put("prompt", req.prompt());
            p.put("negative_prompt", req.negativePrompt());
            p.put("num_inference_steps", req.steps());
            p.put("guidance_scale", req.guidanceScale());
            p.put("seed", result.seed());
            p.put("scheduler", schedulerClass);
            p.set("scheduler_overrides", InvocationParser.JSON.valueToTree(req.schedulerOverrides()));
            p.put("num_images_per_prompt", req.numImages());
            p.put("height", first.height());
            p.put("width", first.width());
            root.put("prompt_truncated", result.promptTruncated());
            send(ex, "/invocations", 200, "application/json", InvocationParser.JSON.writeValueAsBytes(root));
        } else {
            byte[] img = ImageFiles.encode(first.toBufferedImage(), fmt[0], pngText);
            send(ex, "/invocations", 200, fmt[0].mediaType(), img);
        }
    }

    private GenerationResult await(Job job, Instant deadline) {
        long waitNanos = Duration.between(Instant.now(), deadline).plus(CANCEL_GRACE).toNanos();
        try {
            return job.result.get(Math.max(0, waitNanos), TimeUnit.NANOSECONDS);
        } catch (TimeoutException e) {
            job.abandon();
            throw timeout();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            job.abandon();
            throw new HttpError(503, null, "the server is shutting down");
        } catch (ExecutionException e) {
            Throwable c = e.getCause();
            if (c instanceof InvalidRequestException) {
                throw new HttpError(400, ((InvalidRequestException) c).field(), c.getMessage());
            }
            if (c instanceof HttpError) {
                throw (HttpError) c;
            }
            if (c instanceof GenerationCancelledException) {
                if (forceCancel) {
                    throw new HttpError(503, null, "cancelled: the server is shutting down");
                }
                throw timeout();
            }
            LOG.error("generation failed", c);
            throw new HttpError(500, null, "generation failed: " + c.getMessage());
        }
    }

    private HttpError timeout() {
        return new HttpError(504, null, "the request did not finish within its deadline of "
                + config.timeout().toMillis() / 1000.0 + " s (server --timeout); it was cancelled");
    }

    private long retryAfterSeconds() {
        double per = ewmaSeconds > 0 ? ewmaSeconds : 1;
        double wait = per * (queueDepth() + 1) / config.workers();
        return Math.max(1, Math.min(300, (long) Math.ceil(wait)));
    }

    /** One admitted generation. */
    private final class Job implements Runnable {
        private static final int QUEUED = 0;
        private static final int RUNNING = 1;
        private static final int ABANDONED = 2;
        final AtomicInteger state = new AtomicInteger(QUEUED);
        final CompletableFuture<GenerationResult> result = new CompletableFuture<>();
        volatile boolean cancelled;
        GenerationRequest request;
        Engine engine;
        Instant deadline;

        @Override
        public void run() {
            if (!state.compareAndSet(QUEUED, RUNNING)) {
                return;  // abandoned while queued: its slot was released then
            }
            running.incrementAndGet();
            try {
                if (Instant.now().isAfter(deadline)) {
                    result.completeExceptionally(timeout());
                } else {
                    result.complete(engine.generate(request));
                }
            } catch (Throwable t) {
                result.completeExceptionally(t);
            } finally {
                running.decrementAndGet();
                slots.release();
            }
        }

        void abandon() {
            if (state.compareAndSet(QUEUED, ABANDONED)) {
                slots.release();
            } else {
                cancelled = true;
            }
        }
    }

    // ------------------------------------------------------------------------------------------------ helpers

    private GenerationRequest.Builder parseBody(String contentType, byte[] body) {
        String media = contentType == null ? "" : contentType.split(";", 2)[0].trim().toLowerCase(Locale.ROOT);
        if (media.isEmpty() || media.equals("application/json")) {
            return InvocationParser.json(body);
        }
        if (media.equals("text/plain")) {
            Charset cs = StandardCharsets.UTF_8;
            for (String part : contentType.split(";")) {
                String p = part.trim();
                if (p.toLowerCase(Locale.ROOT).startsWith("charset=")) {
                    try {
                        cs = Charset.forName(p.substring(8).replace("\"", "").trim());
                    } catch (RuntimeException e) {
                        throw new HttpError(415, null, "unsupported charset in Content-Type: " + contentType);
                    }
                }
            }
            return GenerationRequest.builder(new String(body, cs));
        }
        throw new HttpError(415, null, "unsupported Content-Type '" + contentType
                + "' (use application/json or text/plain)");
    }

    /** Chooses the response type from Accept; returns true for JSON and puts the image format in fmt[0]. */
    static boolean negotiate(List<String> accept, ImageFiles.Format[] fmt) {
        fmt[0] = ImageFiles.Format.PNG;
        if (accept == null || accept.isEmpty()) {
            return false;
        }
        List<String[]> ranges = new ArrayList<>();
        for (String header : accept) {
            for (String r : header.split(",")) {
                String[] parts = r.split(";");
                double q = 1;
                for (int i = 1; i < parts.length; i++) {
                    String p = parts[i].trim();
                    if (p.startsWith("q=")) {
                        try {
                            q = Double.parseDouble(p.substring(2));
                        } catch (NumberFormatException e) {
                            q = 0;
                        }
                    }
                }
                String m = parts[0].trim().toLowerCase(Locale.ROOT);
                if (!m.isEmpty() && q > 0) {
                    ranges.add(new String[] {m, Double.toString(q)});
                }
            }
        }
        if (ranges.isEmpty()) {
            return false;
        }
        ranges.sort((a, b) -> Double.compare(Double.parseDouble(b[1]), Double.parseDouble(a[1])));
        for (String[] r : ranges) {
            switch (r[0]) {
                case "application/json":
                    return true;
                case "image/png": case "image/*": case "*/*":
                    fmt[0] = ImageFiles.Format.PNG;
                    return false;
                case "image/jpeg": case "image/jpg":
                    fmt[0] = ImageFiles.Format.JPEG;
                    return false;
                default:
                    break;
            }
        }
        throw new HttpError(406, null, "cannot produce " + String.join(", ", accept)
                + " (use image/png, image/jpeg or application/json)");
    }

    private byte[] readBody(HttpExchange ex) throws IOException {
        long max = config.maxBodyBytes();
        String cl = ex.getRequestHeaders().getFirst("Content-Length");
        if (cl != null) {
            try {
                if (Long.parseLong(cl.trim()) > max) {
                    throw new HttpError(413, null, "body of " + cl.trim() + " bytes is over the limit of " + max);
                }
            } catch (NumberFormatException e) {
                throw new HttpError(400, null, "invalid Content-Length");
            }
        }
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        byte[] buf = new byte[8192];
        try (InputStream in = ex.getRequestBody()) {
            int n;
            while ((n = in.read(buf)) > 0) {
                out.write(buf, 0, n);
                if (out.size() > max) {
                    throw new HttpError(413, null, "body is over the limit of " + max + " bytes");
                }
            }
        }
        return out.toByteArray();
    }

    private static boolean isGetOrHead(HttpExchange ex) {
        return "GET".equals(ex.getRequestMethod()) || "HEAD".equals(ex.getRequestMethod());
    }

    private static byte[] json(String key, String value) {
        ObjectNode n = InvocationParser.JSON.createObjectNode();
        n.put(key, value);
        try {
            return InvocationParser.JSON.writeValueAsBytes(n);
        } catch (IOException e) {
            throw new IllegalStateException(e);
        }
    }

    private void sendError(HttpExchange ex, String path, HttpError e) throws IOException {
        ObjectNode n = InvocationParser.JSON.createObjectNode();
        n.put("error", e.getMessage());
        if (e.field != null) {
            n.put("field", e.field);
        } else {
            n.putNull("field");
        }
        send(ex, path, e.status, "application/json", InvocationParser.JSON.writeValueAsBytes(n));
    }

    private void send(HttpExchange ex, String path, int status, String contentType, byte[] body) throws IOException {
        metrics.request(path, status);
        if (status >= 400 || "/invocations".equals(path) || LOG.isDebugEnabled()) {
            LOG.info("{} {} -> {}", ex.getRequestMethod(), ex.getRequestURI().getPath(), status);
        }
        write(ex, status, contentType, body);
    }

    private static void write(HttpExchange ex, int status, String contentType, byte[] body) throws IOException {
        ex.getResponseHeaders().set("Content-Type", contentType);
        boolean head = "HEAD".equals(ex.getRequestMethod());
        ex.sendResponseHeaders(status, head ? -1 : (body.length == 0 ? -1 : body.length));
        if (!head && body.length > 0) {
            try (OutputStream os = ex.getResponseBody()) {
                os.write(body);
            }
        }
    }

    private static ThreadFactory threads(String prefix) {
        AtomicInteger n = new AtomicInteger();
        return r -> {
            Thread t = new Thread(r, prefix + "-" + n.incrementAndGet());
            t.setDaemon(true);
            return t;
        };
    }
}
