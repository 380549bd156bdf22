package dev.sdjvm.server;

import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.sdjvm.GenerationRequest;
import dev.sdjvm.GenerationResult;
import dev.sdjvm.GenerationParameters;
import dev.sdjvm.cli.ImageFiles;
import dev.sdjvm.errors.BackendException;
import dev.sdjvm.errors.GenerationCancelledException;
import dev.sdjvm.errors.InvalidRequestException;
import dev.sdjvm.errors.RequestLimitException;
import dev.sdjvm.image.RgbImage;
import io.netty.bootstrap.ServerBootstrap;
import io.netty.channel.Channel;
import io.netty.channel.ChannelInitializer;
import io.netty.channel.ChannelOption;
import io.netty.channel.EventLoopGroup;
import io.netty.channel.MultiThreadIoEventLoopGroup;
import io.netty.channel.nio.NioIoHandler;
import io.netty.channel.socket.SocketChannel;
import io.netty.channel.socket.nio.NioServerSocketChannel;
import io.netty.handler.codec.http.HttpDecoderConfig;
import io.netty.handler.codec.http.HttpRequest;
import io.netty.handler.codec.http.HttpServerCodec;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.nio.charset.Charset;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Base64;
import java.util.HashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.ArrayBlockingQueue;
import java.util.concurrent.Callable;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.Semaphore;
import java.util.concurrent.ThreadFactory;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.ThreadPoolExecutor;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import org.slf4j.MDC;

/**
 * The SageMaker-contract inference server, on Netty.
 *
 * <ul>
 *   <li>{@code GET /ping}: 200 once the model is loaded and warm, 503 while loading or draining. Answered on the
 *       event loop, which never blocks, so it answers whatever the invocations and the connections do.</li>
 *   <li>{@code POST /invocations}: {@code application/json} {@code {"prompt": "...", "parameters": {...}}} (diffusers'
 *       names) or a {@code text/plain} prompt; answers {@code image/png} (default), {@code image/jpeg} or
 *       {@code application/json} by {@code Accept}. Image responses carry the first image and the headers
 *       {@code X-Seed} and {@code X-Image-Count}; ask for JSON to get all of them. Every answer carries
 *       {@code X-Request-Id}; error bodies carry it as {@code request_id}.</li>
 *   <li>{@code GET /metrics}: Prometheus text ({@link Metrics}: the server's series, JVM and process metrics).</li>
 * </ul>
 * Logging: every log line written while a request is handled carries its id in the SLF4J MDC under
 * {@value #MDC_REQUEST_ID} (on every thread that works on it: event loop, request pool, generation worker).
 * {@code /ping} and {@code /metrics} log at DEBUG.
 * Admission: at most {@code workers + queue} requests are admitted; more get 503 with {@code Retry-After}. Each
 * request has a deadline ({@code timeout} after arrival) that cancels its generation at the next step: 504. A client
 * that disconnects cancels its generation at the next step (counted as cancelled). Connections: read timeouts for
 * a request's head and body, an idle timeout, and a cap that evicts the connection idle the longest (see
 * {@link Connections}). {@link #shutdown()} (run by the JVM shutdown hook on SIGTERM) turns new requests away with
 * 503, lets admitted ones finish within {@code drainTimeout}, cancels the rest, then stops.
 */
public final class InferenceServer implements AutoCloseable {
    private static final Logger LOG = LoggerFactory.getLogger(InferenceServer.class);
    /** The MDC key of the request id, set while a request is handled. */
    public static final String MDC_REQUEST_ID = "request_id";
    /** How long past its deadline a request waits for its generation to notice the cancellation. */
    private static final Duration CANCEL_GRACE = Duration.ofSeconds(2);
    /** Threads that parse, check and encode invocations (never the event loop, never a generation worker). */
    private static final int REQUEST_THREADS = 2;
    /** Error messages sent to clients are cut to this length. */
    private static final int MAX_MESSAGE = 400;

    private final ServerConfig config;
    private final EventLoopGroup bossGroup;
    private final EventLoopGroup ioGroup;
    private final Channel serverChannel;
    private final ExecutorService requestPool;
    private final ExecutorService workerPool;
    private final Semaphore slots;
    private final Connections connections;
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
        this.connections = new Connections(config.maxConnections());
        registerMeters();
        // bounded: beyond the queue the request gets 503 at once (the queue holds requests being parsed, checked
        // or encoded, not generations)
        this.requestPool = new ThreadPoolExecutor(REQUEST_THREADS, REQUEST_THREADS, 30, TimeUnit.SECONDS,
                new ArrayBlockingQueue<>(64 + 2 * (config.workers() + config.queue())), threads("sdjvm-request"),
                new ThreadPoolExecutor.AbortPolicy());
        this.workerPool = Executors.newFixedThreadPool(config.workers(), threads("sdjvm-worker"));
        this.bossGroup = new MultiThreadIoEventLoopGroup(1, threads("sdjvm-http-accept"), NioIoHandler.newFactory());
        this.ioGroup = new MultiThreadIoEventLoopGroup(2, threads("sdjvm-http-io"), NioIoHandler.newFactory());
        ServerBootstrap b = new ServerBootstrap()
                .group(bossGroup, ioGroup)
                .channel(NioServerSocketChannel.class)
                .option(ChannelOption.SO_BACKLOG, 1024)
                .childOption(ChannelOption.TCP_NODELAY, true)
                // a client's shutdown(SHUT_WR) after its request is a half-close: answer it (HttpConnection)
                .childOption(ChannelOption.ALLOW_HALF_CLOSURE, true)
                .childHandler(new ChannelInitializer<SocketChannel>() {
                    @Override
                    protected void initChannel(SocketChannel ch) {
                        HttpConnection conn = new HttpConnection(InferenceServer.this, config, connections);
                        ch.pipeline().addLast("bytes", conn.new ByteWatcher());
                        ch.pipeline().addLast("codec", new HttpServerCodec(new HttpDecoderConfig()
                                .setMaxInitialLineLength(8192).setMaxHeaderSize(16384).setMaxChunkSize(65536)));
                        ch.pipeline().addLast("http", conn);
                    }
                });
        io.netty.channel.ChannelFuture bound = b.bind(new InetSocketAddress(config.bind(), config.port()))
                .awaitUninterruptibly();
        if (!bound.isSuccess()) {
            shutdownThreads();
            metrics.close();
            Throwable c = bound.cause();
            if (c instanceof IOException io) {
                throw io;
            }
            throw new IOException("cannot listen on " + config.bind() + ":" + config.port() + ": " + c, c);
        }
        this.serverChannel = bound.channel();
    }

    /**
     * Starts listening at once (so {@code /ping} answers 503 during the load), then loads the engine on a background
     * thread. {@link #ready()} completes when the model is loaded, or exceptionally when loading failed.
     */
    public static InferenceServer start(ServerConfig config, Callable<Engine> loader) throws IOException {
        InferenceServer s = new InferenceServer(config);
        LOG.info("listening on http://{}:{} (workers {}, queue {}, timeout {} s, max {} connections)", config.bind(),
                s.port(), config.workers(), config.queue(), config.timeout().toMillis() / 1000.0,
                config.maxConnections());
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
                s.metrics.model(e.info());
                Engine.Info i = e.info();
                LOG.info("model ready: {} ({}, {}x{}, {} MB of weights, loaded in {} s)", i.model(), i.precision(),
                        i.height(), i.width(), String.format(Locale.ROOT, "%.1f", i.weightBytes() / 1e6),
                        String.format(Locale.ROOT, "%.1f", i.loadSeconds()));
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
        return ((InetSocketAddress) serverChannel.localAddress()).getPort();
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

    /** Open client connections. */
    public int openConnections() {
        return connections.count();
    }

    /** Generations cancelled for {@code reason} (client_disconnect, deadline, shutdown). */
    public long cancelled(String reason) {
        return metrics.counted(CANCELLED, "reason", reason);
    }

    /**
     * For a server that owns its process ({@code sd serve}): adds a JVM shutdown hook (SIGTERM, SIGINT) that drains
     * and stops this server, and makes a fatal error in a server thread end the process ({@link #fatal}), also
     * through the default uncaught-exception handler.
     */
    public InferenceServer installShutdownHook() {
        exitOnFatal = true;
        returnFreedHeap();
        Thread.UncaughtExceptionHandler previous = Thread.getDefaultUncaughtExceptionHandler();
        Thread.setDefaultUncaughtExceptionHandler((t, e) -> {
            if (e instanceof VirtualMachineError vme) {
                fatal(vme, "thread " + t.getName());
            } else if (previous != null) {
                previous.uncaughtException(t, e);
            } else {
                LOG.error("uncaught exception in thread {}", t.getName(), e);
            }
        });
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            synchronized (this) {
                if (shutdownStarted) {
                    return;  // stopped already (e.g. the model failed to load): nothing to drain
                }
            }
            LOG.info("stop requested (SIGTERM, SIGINT or exit): draining (up to {} s)",
                    config.drainTimeout().toSeconds());
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
            serverChannel.close().awaitUninterruptibly(5, TimeUnit.SECONDS);
            connections.closeAll();
            shutdownThreads();
            Engine e = engine;
            if (e != null) {
                e.close();
            }
            metrics.close();
            LOG.info("stopped");
        } finally {
            terminated.countDown();
        }
    }

    private void shutdownThreads() {
        workerPool.shutdownNow();
        requestPool.shutdownNow();
        bossGroup.shutdownGracefully(0, 2, TimeUnit.SECONDS).awaitUninterruptibly(5, TimeUnit.SECONDS);
        ioGroup.shutdownGracefully(0, 2, TimeUnit.SECONDS).awaitUninterruptibly(5, TimeUnit.SECONDS);
    }

    @Override
    public void close() {
        shutdown();
    }

    private boolean waitIdle(long endNanos) {
        while ((activeInvocations.get() > 0 || running.get() > 0) && System.nanoTime() < endNanos) {
            try {
                Thread.sleep(20);
            } catch (InterruptedException ie) {
                Thread.currentThread().interrupt();
                return false;
            }
        }
        return activeInvocations.get() == 0 && running.get() == 0;
    }

    /** A short unique id for a request (log and error bodies). */
    static String newRequestId() {
        return Long.toString(System.currentTimeMillis(), 36) + "-"
                + Long.toString(ThreadLocalRandom.current().nextLong(36L * 36 * 36 * 36 * 36 * 36), 36);
    }

    /** A connection timed out in a phase (idle: closed; head, body: 408; write: an answer the client did not read). */
    void timedOut(String phase) {
        metrics.count("sdjvm.http.timeouts",
                "Connections timed out, by phase (idle: closed; head, body: 408; write: answer not read, closed).",
                "phase", phase);
    }

    /** Sets the request id in the MDC of this thread until closed (then restores what was there). */
    static RequestScope requestScope(String id) {
        String previous = MDC.get(MDC_REQUEST_ID);
        MDC.put(MDC_REQUEST_ID, id);
        return () -> {
            if (previous == null) {
                MDC.remove(MDC_REQUEST_ID);
            } else {
                MDC.put(MDC_REQUEST_ID, previous);
            }
        };
    }

    /** The request id in the MDC, closed without exceptions. */
    interface RequestScope extends AutoCloseable {
        @Override
        void close();
    }

    /**
     * A {@link VirtualMachineError} (out of memory, an internal error) reached a server thread: the process cannot be
     * trusted to go on. With {@link #installShutdownHook()} (as {@code sd serve}) the process ends at once with status
     * {@value #FATAL_EXIT_STATUS} after one clear log line, so that its supervisor (SageMaker, systemd, Docker)
     * restarts it instead of keeping a half-dead server; embedded, the server only logs it.
     */
    void fatal(VirtualMachineError e, String where) {
        String line = "fatal " + e + " in " + where + " (thread " + Thread.currentThread().getName() + ")"
                + (exitOnFatal ? ": exiting with status " + FATAL_EXIT_STATUS + " so that the process is restarted" : "");
        try {
            LOG.error(line);
        } catch (Throwable ignored) {
            // logging itself may fail out of memory: the line goes to stderr below
        }
        if (exitOnFatal) {
            System.err.println("sd serve: " + line);
            System.err.flush();
            Runtime.getRuntime().halt(FATAL_EXIT_STATUS);
        }
    }

    /**
     * Lets the JVM give freed heap back to the system, for a long-running server: G1 by default keeps up to 70% of
     * its heap free after a collection and never collects an idle process, so the heap a burst of 1 MiB bodies grew
     * stays resident (measured: RSS +30% after 60 such requests and a full GC). These are manageable VM flags; a
     * value given on the java command line is left alone: MaxHeapFreeRatio 30, MinHeapFreeRatio 10, and a periodic
     * collection after 60 s without one (G1PeriodicGCInterval), which returns the heap of an idle server.
     */
    static void returnFreedHeap() {
        try {
            com.sun.management.HotSpotDiagnosticMXBean vm = java.lang.management.ManagementFactory
                    .getPlatformMXBean(com.sun.management.HotSpotDiagnosticMXBean.class);
            setIfDefault(vm, "MinHeapFreeRatio", "10");
            setIfDefault(vm, "MaxHeapFreeRatio", "30");
            setIfDefault(vm, "G1PeriodicGCInterval", "60000");
        } catch (RuntimeException | LinkageError e) {
            LOG.debug("heap flags not set: {}", e.toString());  // another JVM or collector: its own defaults
        }
    }

    private static void setIfDefault(com.sun.management.HotSpotDiagnosticMXBean vm, String name, String value) {
        try {
            if (vm.getVMOption(name).getOrigin() == com.sun.management.VMOption.Origin.DEFAULT) {
                vm.setVMOption(name, value);
            }
        } catch (IllegalArgumentException e) {
            LOG.debug("VM flag {} not set: {}", name, e.getMessage());  // not this JVM's, or not manageable
        }
    }

    /** The exit status after a fatal error (EX_SOFTWARE). */
    public static final int FATAL_EXIT_STATUS = 70;
    private volatile boolean exitOnFatal;

    // ------------------------------------------------------------------------------------------------ routing

    /** A complete request from a connection's event loop. Never blocks. */
    void handle(HttpConnection.Exchange ex, HttpRequest req, byte[] body) {
        try (RequestScope scope = requestScope(ex.id)) {
            route(ex, req, body);
        }
    }

    private void route(HttpConnection.Exchange ex, HttpRequest req, byte[] body) {
        String path = pathOf(req.uri());
        try {
            if (ex.conn.reserved && !"/ping".equals(path)) {
                // a connection beyond the cap, accepted only so that the health check gets through
                throw new HttpError(503, null, "the server is at its connection limit (" + config.maxConnections()
                        + ", server --max-connections); only /ping is served on this connection")
                        .header("Retry-After", "1");
            }
            switch (path) {
                case "/ping":
                    ex.path = "/ping";
                    ping(ex);
                    break;
                case "/invocations":
                    ex.path = "/invocations";
                    invocation(ex, req, body);
                    break;
                case "/metrics":
                    ex.path = "/metrics";
                    if (!isGetOrHead(ex)) {
                        throw new HttpError(405, null, "method " + ex.method() + " not allowed")
                                .header("Allow", "GET, HEAD");
                    }
                    // rendered off the event loop: a client pipelining scrapes must not delay /ping on that loop
                    // (one request at a time per connection bounds what one client puts in the pool)
                    try {
                        requestPool.execute(() -> {
                            try {
                                metrics(ex);
                            } catch (Throwable t) {
                                if (t instanceof VirtualMachineError vme) {
                                    fatal(vme, "rendering /metrics");
                                }
                                LOG.error("request {}: unexpected error rendering /metrics", ex.id, t);
                                sendError(ex, new HttpError(500, null, "internal error"));
                            }
                        });
                    } catch (RejectedExecutionException e) {
                        throw new HttpError(503, null, "overloaded: too many requests being read")
                                .header("Retry-After", "1");
                    }
                    break;
                default:
                    sendError(ex, new HttpError(404, null, "no such path: " + clip(path, 100)
                            + " (this server has /ping, /invocations, /metrics)"));
            }
        } catch (HttpError e) {
            sendError(ex, e);
        } catch (Throwable t) {
            if (t instanceof VirtualMachineError vme) {
                fatal(vme, "handling " + path);
            }
            LOG.error("request {}: unexpected error on {}", ex.id, path, t);
            sendError(ex, new HttpError(500, null, "internal error"));
        }
    }

    private static String pathOf(String uri) {
        int q = uri.indexOf('?');
        String p = q >= 0 ? uri.substring(0, q) : uri;
        if (p.startsWith("http://") || p.startsWith("https://")) {
            int slash = p.indexOf('/', p.indexOf("//") + 2);
            p = slash >= 0 ? p.substring(slash) : "/";
        }
        return p;
    }

    private static boolean isGetOrHead(HttpConnection.Exchange ex) {
        String m = ex.method();
        return "GET".equals(m) || "HEAD".equals(m);
    }

    private void ping(HttpConnection.Exchange ex) {
        if (!isGetOrHead(ex)) {
            throw new HttpError(405, null, "method " + ex.method() + " not allowed").header("Allow", "GET, HEAD");
        }
        if (draining) {
            send(ex, 503, "application/json", json("status", "draining"), null);
        } else if (engine == null) {
            send(ex, 503, "application/json", json("status", ready.isCompletedExceptionally() ? "failed" : "loading"),
                    null);
        } else {
            send(ex, 200, "application/json", json("status", "healthy"), null);
        }
    }

    private void metrics(HttpConnection.Exchange ex) {
        if (!isGetOrHead(ex)) {
            throw new HttpError(405, null, "method " + ex.method() + " not allowed").header("Allow", "GET, HEAD");
        }
        // count this scrape before rendering so that the text includes it
        metrics.request("/metrics", 200);
        byte[] body = metrics.scrape().getBytes(StandardCharsets.UTF_8);
        ex.respond(200, "text/plain; version=0.0.4; charset=utf-8", body, null);
    }

    private static final String CANCELLED = "sdjvm.invocations.cancelled";

    /** The server's gauges and the counters kept elsewhere (connections), read at every scrape. */
    private void registerMeters() {
        metrics.gauge("sdjvm.queue.depth", "Admitted requests waiting for a worker.", null, this::queueDepth);
        metrics.gauge("sdjvm.inflight.requests", "Generations running now.", null, running::get);
        metrics.gauge("sdjvm.workers", "Generation workers.", null, config::workers);
        metrics.gauge("sdjvm.queue.capacity", "Requests that may wait beyond the workers.", null, config::queue);
        metrics.gauge("sdjvm.open.connections", "Open client connections.", null, connections::count);
        metrics.gauge("sdjvm.max.connections", "Connection cap (--max-connections).", null, config::maxConnections);
        metrics.gauge("sdjvm.model.ready", "1 once the model is loaded and warm.", null, () -> engine != null ? 1 : 0);
        metrics.gauge("sdjvm.process.peak.rss", "Peak resident set size (VmHWM).", "bytes",
                () -> procStatusBytes("VmHWM:"));
        metrics.gauge("sdjvm.process.rss", "Resident set size (VmRSS).", "bytes", () -> procStatusBytes("VmRSS:"));
        metrics.gauge("sdjvm.process.threads", "Threads of the process.", null,
                () -> procStatusBytes("Threads:") / 1024);
        String cap = "Connections closed at the connection cap (evicted: the one idle the longest; refused: the new one).";
        metrics.functionCounter("sdjvm.connections.closed.for.cap", cap, "reason", "evicted", connections.evicted,
                java.util.concurrent.atomic.LongAdder::sum);
        metrics.functionCounter("sdjvm.connections.closed.for.cap", cap, "reason", "refused", connections.refused,
                java.util.concurrent.atomic.LongAdder::sum);
    }

    /** A value in kB from /proc/self/status, in bytes (a count times 1024 for counts); -1 where there is no /proc. */
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

    /** On the event loop: the cheap checks, then the rest on the request pool. */
    private void invocation(HttpConnection.Exchange ex, HttpRequest req, byte[] body) {
        if (!"POST".equals(ex.method())) {
            throw new HttpError(405, null, "method " + ex.method() + " not allowed; use POST").header("Allow", "POST");
        }
        if (draining) {
            throw new HttpError(503, null, "the server is shutting down").header("Retry-After", "5");
        }
        Engine eng = engine;
        if (eng == null) {
            throw new HttpError(503, null, ready.isCompletedExceptionally() ? "the model failed to load"
                    : "the model is still loading").header("Retry-After", "5");
        }
        Instant arrival = Instant.now();
        String contentType = req.headers().get("Content-Type");
        ImageFiles.Format[] fmt = new ImageFiles.Format[1];
        boolean wantJson = negotiate(req.headers().getAll("Accept"), fmt);
        Invocation inv = new Invocation(ex, eng, arrival.plus(config.timeout()), wantJson, fmt[0]);
        activeInvocations.incrementAndGet();
        try {
            requestPool.execute(() -> {
                try (RequestScope scope = requestScope(ex.id)) {
                    inv.prepare(contentType, body);
                }
            });
        } catch (RejectedExecutionException e) {
            inv.fail(new HttpError(503, null, "overloaded: too many requests being read").header("Retry-After",
                    Long.toString(retryAfterSeconds())));
        }
    }

    /** One /invocations request from admission to its answer. */
    private final class Invocation {
        final HttpConnection.Exchange ex;
        final Engine eng;
        final Instant deadline;
        final boolean wantJson;
        final ImageFiles.Format format;
        final java.util.concurrent.atomic.AtomicBoolean ended = new java.util.concurrent.atomic.AtomicBoolean();
        volatile Job job;
        volatile String cancelReason;
        volatile java.util.concurrent.ScheduledFuture<?> deadlineTimer;
        final java.util.concurrent.atomic.AtomicBoolean goneCounted = new java.util.concurrent.atomic.AtomicBoolean();

        Invocation(HttpConnection.Exchange ex, Engine eng, Instant deadline, boolean wantJson, ImageFiles.Format f) {
            this.ex = ex;
            this.eng = eng;
            this.deadline = deadline;
            this.wantJson = wantJson;
            this.format = f;
            ex.onClientGone = () -> inScope(this::clientGone);
        }

        /** Runs with the request id in the MDC (for what runs on the event loop). */
        private void inScope(Runnable r) {
            try (RequestScope scope = requestScope(ex.id)) {
                r.run();
            }
        }

        /** On the request pool: parse, check (model-independent and budget), admit, start. */
        void prepare(String contentType, byte[] body) {
            try {
                GenerationRequest.Builder b = parseBody(contentType, body, eng.maxImagePixels());
                Job j = new Job(this);
                GenerationRequest req;
                String schedulerClass;
                try {
                    // building the request checks it; then the cheap checks before queueing (budget, scheduler).
                    // The model-dependent ones (height/width vs the artifacts) run in the worker
                    // the model's default steps and guidance where the client gave none: what runs, is checked
                    // and is reported
                    req = eng.withModelDefaults(b.deadline(deadline).listener((s, n, t, el) -> {
                        metrics.step(el - j.stepElapsedNanos);
                        j.stepElapsedNanos = el;
                        return !j.cancelled && !forceCancel;
                    }).build());
                    eng.check(req);
                    schedulerClass = eng.schedulerClass(req);
                } catch (InvalidRequestException e) {
                    throw toHttp(e);
                }
                if (ex.gone) {
                    end();
                    return;
                }
                if (!slots.tryAcquire()) {
                    throw new HttpError(503, null, "overloaded: " + config.workers() + " worker(s) busy and the "
                            + "queue of " + config.queue() + " is full").header("Retry-After",
                            Long.toString(retryAfterSeconds()));
                }
                j.request = req;
                j.schedulerClass = schedulerClass;
                j.admittedNanos = System.nanoTime();
                job = j;
                try {
                    workerPool.execute(j);
                } catch (RejectedExecutionException e) {
                    slots.release();
                    throw new HttpError(503, null, "the server is shutting down").header("Retry-After", "5");
                }
                if (ex.gone) {
                    clientGone();  // the client left while we were admitting it
                }
                long waitNanos = Duration.between(Instant.now(), deadline).plus(CANCEL_GRACE).toNanos();
                deadlineTimer = ex.conn.channel.eventLoop().schedule(() -> inScope(this::deadlinePassed),
                        Math.max(0, waitNanos), TimeUnit.NANOSECONDS);
                if (ended.get()) {
                    deadlineTimer.cancel(false);
                }
                j.result.whenCompleteAsync((r, e) -> {
                    try (RequestScope scope = requestScope(ex.id)) {
                        finished(r, e);
                    }
                }, requestPool);
            } catch (HttpError e) {
                fail(e);
            } catch (Throwable t) {
                if (t instanceof VirtualMachineError vme) {
                    fatal(vme, "preparing a request");
                }
                LOG.error("request {}: unexpected error", ex.id, t);
                fail(new HttpError(500, null, "internal error"));
            }
        }

        /** The deadline (plus grace) passed and the generation has not answered: cancel it, 504. */
        private void deadlinePassed() {
            Job j = job;
            if (ended.get() || ex.isDone() || j == null || j.result.isDone()) {
                return;
            }
            j.abandon("deadline");
            fail(timeout());
        }

        private void clientGone() {
            // both the connection and the admission may see the disconnect (concurrently): count it once
            boolean first = goneCounted.compareAndSet(false, true);
            Job j = job;
            if (first) {
                metrics.request("/invocations", 499);
                LOG.info("POST /invocations -> client disconnected (request {}, {} ms){}", ex.id,
                        (System.nanoTime() - ex.startNanos) / 1_000_000, j != null ? ": cancelling its generation" : "");
            }
            if (j != null) {
                j.abandon("client_disconnect");
            }
            end();
        }

        /** The generation ended (any thread); on the request pool: encode and answer. */
        private void finished(GenerationResult result, Throwable error) {
            try {
                if (error != null) {
                    Throwable c = error instanceof java.util.concurrent.CompletionException && error.getCause() != null
                            ? error.getCause() : error;
                    fail(errorFor(c));
                    return;
                }
                if (ex.gone || ex.isDone()) {
                    end();
                    return;
                }
                ewmaSeconds = ewmaSeconds == 0 ? result.timings().totalNanos() / 1e9
                        : 0.8 * ewmaSeconds + 0.2 * result.timings().totalNanos() / 1e9;
                respondWith(result);
            } catch (Throwable t) {
                if (t instanceof VirtualMachineError vme) {
                    fatal(vme, "encoding an answer");
                }
                LOG.error("request {}: unexpected error encoding the answer", ex.id, t);
                fail(new HttpError(500, null, "internal error"));
            }
        }

        private HttpError errorFor(Throwable c) {
            if (c instanceof InvalidRequestException ire) {
                return toHttp(ire);
            }
            if (c instanceof HttpError he) {
                return he;
            }
            if (c instanceof GenerationCancelledException) {
                if ("client_disconnect".equals(cancelReason)) {
                    return new HttpError(499, null, "client disconnected");
                }
                if (forceCancel) {
                    countCancel("shutdown");
                    return new HttpError(503, null, "cancelled: the server is shutting down");
                }
                if (cancelReason == null) {
                    countCancel("deadline");
                }
                return timeout();
            }
            if (c instanceof BackendException) {
                LOG.error("request {}: generation failed in the backend", ex.id, c);
                return new HttpError(500, null, "generation failed in the backend");
            }
            if (c instanceof OutOfMemoryError) {
                LOG.error("request {}: out of memory during the generation", ex.id, c);
                return new HttpError(503, null, "the server ran out of memory for this request; try a smaller "
                        + "one").header("Retry-After", "10");
            }
            LOG.error("request {}: generation failed", ex.id, c);
            return new HttpError(500, null, "generation failed");
        }

        private void respondWith(GenerationResult result) throws IOException {
            metrics.images(result.images().size());
            Engine.Info info = eng.info();
            GenerationRequest req = job.request;
            RgbImage first = result.images().get(0);
            String text = GenerationParameters.a1111(req, result.seed(), job.schedulerClass, first.width(),
                    first.height(), info.model());
            Map<String, String> pngText = Map.of(GenerationParameters.PNG_KEYWORD, text);
            Map<String, String> headers = new HashMap<>();
            headers.put("X-Seed", Long.toString(result.seed()));
            headers.put("X-Image-Count", Integer.toString(result.images().size()));
            if (wantJson) {
                ObjectNode root = InvocationParser.JSON.createObjectNode();
                ArrayNode imgs = root.putArray("images");
                for (RgbImage img : result.images()) {
                    imgs.add(Base64.getEncoder().encodeToString(
                            ImageFiles.encode(img.toBufferedImage(), format, pngText)));
                }
                root.put("format", format.extension());
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
                p.put("num_inference_steps", req.steps().orElseThrow());  // withModelDefaults in prepare
                p.put("guidance_scale", req.guidanceScale().orElseThrow());
                p.put("guidance_rescale", req.guidanceRescale());
                p.put("seed", result.seed());
                p.put("scheduler", job.schedulerClass);
                p.set("scheduler_overrides", InvocationParser.JSON.valueToTree(req.schedulerOverrides()));
                p.put("num_images_per_prompt", req.numImages());
                p.put("height", first.height());
                p.put("width", first.width());
                if (req.initImage() != null) {
                    p.put("strength", req.resolvedStrength());
                    p.put("task", req.mask() != null ? "inpainting" : "image-to-image");
                }
                root.put("prompt_truncated", result.promptTruncated());
                succeed("application/json", InvocationParser.JSON.writeValueAsBytes(root), headers);
            } else {
                succeed(format.mediaType(), ImageFiles.encode(first.toBufferedImage(), format, pngText), headers);
            }
        }

        private void succeed(String contentType, byte[] body, Map<String, String> headers) {
            if (ended.compareAndSet(false, true)) {
                send(ex, 200, contentType, body, headers);
                finishAccounting();
            }
        }

        void fail(HttpError e) {
            if (ended.compareAndSet(false, true)) {
                if (e.status != 499) {
                    sendError(ex, e);
                }
                finishAccounting();
            }
        }

        private void end() {
            if (ended.compareAndSet(false, true)) {
                finishAccounting();
            }
        }

        private void finishAccounting() {
            // the timer holds this invocation (its prompt, up to --max-body) until the deadline: drop it now, or a
            // burst of large requests stays on the heap for the whole timeout
            java.util.concurrent.ScheduledFuture<?> t = deadlineTimer;
            if (t != null) {
                t.cancel(false);
            }
            metrics.latency(System.nanoTime() - ex.startNanos);
            activeInvocations.decrementAndGet();
        }
    }

    private void countCancel(String reason) {
        metrics.count(CANCELLED, "Generations cancelled, by reason (client_disconnect, deadline, shutdown).",
                "reason", reason);
    }

    private HttpError toHttp(InvalidRequestException e) {
        if (e instanceof RequestLimitException rle) {
            return new HttpError(413, e.field(), e.getMessage() + " (server --" + rle.limit().replace('_', '-') + ")");
        }
        return new HttpError(400, e.field(), e.getMessage());
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
        final Invocation invocation;
        volatile boolean cancelled;
        GenerationRequest request;
        String schedulerClass;
        /** When it was queued for a worker. */
        volatile long admittedNanos;
        /** The listener's elapsed time at the previous step (the worker's thread only). */
        long stepElapsedNanos;

        Job(Invocation invocation) {
            this.invocation = invocation;
        }

        @Override
        public void run() {
            if (!state.compareAndSet(QUEUED, RUNNING)) {
                return;  // abandoned while queued: its slot was released then
            }
            metrics.queueWait(System.nanoTime() - admittedNanos);
            running.incrementAndGet();
            try (RequestScope scope = requestScope(invocation.ex.id)) {
                if (Instant.now().isAfter(invocation.deadline)) {
                    invocation.cancelReason = "deadline";
                    countCancel("deadline");
                    result.completeExceptionally(timeout());
                } else if (cancelled) {
                    result.completeExceptionally(new GenerationCancelledException("cancelled before it started"));
                } else {
                    result.complete(invocation.eng.generate(request));
                }
            } catch (Throwable t) {
                // the worker survives anything a generation throws, Errors included
                result.completeExceptionally(t);
            } finally {
                running.decrementAndGet();
                slots.release();
            }
        }

        /** Cancels: a queued job never starts (its slot is freed now), a running one stops at its next step. */
        void abandon(String reason) {
            if (result.isDone()) {
                return;  // it finished already: nothing to cancel
            }
            synchronized (invocation) {
                if (invocation.cancelReason == null) {
                    invocation.cancelReason = reason;
                    countCancel(reason);
                }
            }
            cancelled = true;
            if (state.compareAndSet(QUEUED, ABANDONED)) {
                slots.release();
                result.completeExceptionally(new GenerationCancelledException("cancelled while queued: " + reason));
            }
        }
    }

    // ------------------------------------------------------------------------------------------------ helpers

    private GenerationRequest.Builder parseBody(String contentType, byte[] body, long maxImagePixels) {
        String media = contentType == null ? "" : contentType.split(";", 2)[0].trim().toLowerCase(Locale.ROOT);
        if (media.isEmpty() || media.equals("application/json")) {
            return InvocationParser.json(body, maxImagePixels);
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
        throw new HttpError(406, null, "cannot produce " + clip(String.join(", ", accept), 100)
                + " (use image/png, image/jpeg or application/json)");
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

    /** One line, at most {@code max} characters (client-facing text). */
    static String clip(String s, int max) {
        if (s == null) {
            return "";
        }
        String one = s.replaceAll("[\\r\\n\\t]+", " ").replaceAll("\\p{Cntrl}", "");
        return one.length() <= max ? one : one.substring(0, max) + "...";
    }

    /**
     * The JSON error body {@code {"error", "field", "request_id"}}: a short one-line message (5xx ones say only what
     * failed; the details go to the log under the same request id).
     */
    void sendError(HttpConnection.Exchange ex, HttpError e) {
        ObjectNode n = InvocationParser.JSON.createObjectNode();
        n.put("error", clip(e.getMessage(), MAX_MESSAGE));
        if (e.field != null) {
            n.put("field", clip(e.field, 100));
        } else {
            n.putNull("field");
        }
        n.put("request_id", ex.id);
        try {
            send(ex, e.status, "application/json", InvocationParser.JSON.writeValueAsBytes(n), e.headers);
        } catch (IOException io) {
            throw new IllegalStateException(io);
        }
    }

    private void send(HttpConnection.Exchange ex, int status, String contentType, byte[] body,
                      Map<String, String> headers) {
        Map<String, String> h = headers == null ? new HashMap<>() : new HashMap<>(headers);
        h.put("X-Request-Id", ex.id);
        if (ex.respond(status, contentType, body, h)) {
            metrics.request(ex.path, status);
            // health checks and scrapes come every few seconds: DEBUG, unless the client got the request wrong
            boolean probe = "/ping".equals(ex.path) || "/metrics".equals(ex.path);
            boolean info = probe ? status >= 400 && status < 500 : status >= 400 || "/invocations".equals(ex.path);
            if (info || LOG.isDebugEnabled()) {
                try (RequestScope scope = requestScope(ex.id)) {
                    String fmt = "{} {} -> {} (request {}, {} ms)";
                    Object[] args = {ex.method(), ex.path, status, ex.id, (System.nanoTime() - ex.startNanos) / 1_000_000};
                    if (info) {
                        LOG.info(fmt, args);
                    } else {
                        LOG.debug(fmt, args);
                    }
                }
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
