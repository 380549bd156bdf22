package dev.sdjvm.server;

import dev.sdjvm.errors.InvalidRequestException;
import java.time.Duration;

/**
 * How the server listens, queues and guards its connections.
 *
 * @param bind           address to bind (127.0.0.1 by default; the container binds 0.0.0.0)
 * @param port           TCP port (8080, SageMaker's; 0 = an ephemeral port)
 * @param workers        generations that run at once (the model is loaded with {@code maxConcurrent} = workers)
 * @param queue          admitted requests that may wait for a worker; beyond workers + queue: 503 + Retry-After
 * @param timeout        per-request deadline from arrival (60 s = SageMaker's invocation timeout): 504 after it
 * @param maxBodyBytes   larger request bodies get 413
 * @param drainTimeout   on shutdown, how long in-flight requests may take to finish
 * @param maxConnections open connections; a new one beyond it closes the connection idle the longest (so idle or
 *                       slow clients cannot lock out {@code /ping}), or is closed itself if none is idle
 * @param headerTimeout  from a request's first byte to its complete head (request line and headers): 408 after it
 * @param bodyTimeout    from a request's head to its complete body: 408 after it
 * @param idleTimeout    a connection with no request in progress is closed after this long
 * @param writeTimeout   a response not taken by the client within this long (its client does not read) closes the
 *                       connection
 */
public record ServerConfig(String bind, int port, int workers, int queue, Duration timeout, long maxBodyBytes,
                           Duration drainTimeout, int maxConnections, Duration headerTimeout, Duration bodyTimeout,
                           Duration idleTimeout, Duration writeTimeout) {
    /** SageMaker's port. */
    public static final int DEFAULT_PORT = 8080;
    /** 1 MiB. */
    public static final long DEFAULT_MAX_BODY = 1 << 20;
    /** Largest body limit: the body is held in memory. */
    public static final long MAX_BODY_LIMIT = 64L << 20;

    public ServerConfig {
        if (bind == null || bind.isBlank()) {
            throw new InvalidRequestException("bind", "must not be empty");
        }
        if (port < 0 || port > 65535) {
            throw new InvalidRequestException("port", "must be in 0..65535, got " + port);
        }
        if (workers < 1 || workers > 256) {
            throw new InvalidRequestException("workers", "must be in 1..256, got " + workers);
        }
        if (queue < 0 || queue > 10_000) {
            throw new InvalidRequestException("queue", "must be in 0..10000, got " + queue);
        }
        positive("timeout", timeout);
        if (maxBodyBytes < 1 || maxBodyBytes > MAX_BODY_LIMIT) {
            throw new InvalidRequestException("maxBodyBytes", "must be in 1.." + MAX_BODY_LIMIT + ", got " + maxBodyBytes);
        }
        if (drainTimeout == null || drainTimeout.isNegative()) {
            throw new InvalidRequestException("drainTimeout", "must be >= 0");
        }
        if (maxConnections < 8 || maxConnections > 100_000) {
            throw new InvalidRequestException("maxConnections", "must be in 8..100000, got " + maxConnections);
        }
        positive("headerTimeout", headerTimeout);
        positive("bodyTimeout", bodyTimeout);
        positive("idleTimeout", idleTimeout);
        positive("writeTimeout", writeTimeout);
    }

    /** Default for {@link #writeTimeout}: 30 s. */
    public static final Duration DEFAULT_WRITE_TIMEOUT = Duration.ofSeconds(30);

    /** The configuration with the default {@link #writeTimeout} (30 s). */
    public ServerConfig(String bind, int port, int workers, int queue, Duration timeout, long maxBodyBytes,
                        Duration drainTimeout, int maxConnections, Duration headerTimeout, Duration bodyTimeout,
                        Duration idleTimeout) {
        this(bind, port, workers, queue, timeout, maxBodyBytes, drainTimeout, maxConnections, headerTimeout,
                bodyTimeout, idleTimeout, DEFAULT_WRITE_TIMEOUT);
    }

    private static void positive(String name, Duration d) {
        if (d == null || d.isNegative() || d.isZero()) {
            throw new InvalidRequestException(name, "must be positive");
        }
    }

    /**
     * 127.0.0.1:8080, 1 worker, queue 4, 60 s timeout, 1 MiB bodies, 30 s drain, 1024 connections, 10 s for a
     * request head, 30 s for a body, 60 s idle, 30 s to write a response.
     */
    public static ServerConfig defaults() {
        return new ServerConfig("127.0.0.1", DEFAULT_PORT, 1, 4, Duration.ofSeconds(60), DEFAULT_MAX_BODY,
                Duration.ofSeconds(30), 1024, Duration.ofSeconds(10), Duration.ofSeconds(30), Duration.ofSeconds(60));
    }

    public ServerConfig withBind(String v) { return new ServerConfig(v, port, workers, queue, timeout, maxBodyBytes, drainTimeout, maxConnections, headerTimeout, bodyTimeout, idleTimeout, writeTimeout); }
    public ServerConfig withPort(int v) { return new ServerConfig(bind, v, workers, queue, timeout, maxBodyBytes, drainTimeout, maxConnections, headerTimeout, bodyTimeout, idleTimeout, writeTimeout); }
    public ServerConfig withWorkers(int v) { return new ServerConfig(bind, port, v, queue, timeout, maxBodyBytes, drainTimeout, maxConnections, headerTimeout, bodyTimeout, idleTimeout, writeTimeout); }
    public ServerConfig withQueue(int v) { return new ServerConfig(bind, port, workers, v, timeout, maxBodyBytes, drainTimeout, maxConnections, headerTimeout, bodyTimeout, idleTimeout, writeTimeout); }
    public ServerConfig withTimeout(Duration v) { return new ServerConfig(bind, port, workers, queue, v, maxBodyBytes, drainTimeout, maxConnections, headerTimeout, bodyTimeout, idleTimeout, writeTimeout); }
    public ServerConfig withMaxBodyBytes(long v) { return new ServerConfig(bind, port, workers, queue, timeout, v, drainTimeout, maxConnections, headerTimeout, bodyTimeout, idleTimeout, writeTimeout); }
    public ServerConfig withDrainTimeout(Duration v) { return new ServerConfig(bind, port, workers, queue, timeout, maxBodyBytes, v, maxConnections, headerTimeout, bodyTimeout, idleTimeout, writeTimeout); }
    public ServerConfig withMaxConnections(int v) { return new ServerConfig(bind, port, workers, queue, timeout, maxBodyBytes, drainTimeout, v, headerTimeout, bodyTimeout, idleTimeout, writeTimeout); }
    public ServerConfig withHeaderTimeout(Duration v) { return new ServerConfig(bind, port, workers, queue, timeout, maxBodyBytes, drainTimeout, maxConnections, v, bodyTimeout, idleTimeout, writeTimeout); }
    public ServerConfig withBodyTimeout(Duration v) { return new ServerConfig(bind, port, workers, queue, timeout, maxBodyBytes, drainTimeout, maxConnections, headerTimeout, v, idleTimeout, writeTimeout); }
    public ServerConfig withIdleTimeout(Duration v) { return new ServerConfig(bind, port, workers, queue, timeout, maxBodyBytes, drainTimeout, maxConnections, headerTimeout, bodyTimeout, v, writeTimeout); }
    public ServerConfig withWriteTimeout(Duration v) { return new ServerConfig(bind, port, workers, queue, timeout, maxBodyBytes, drainTimeout, maxConnections, headerTimeout, bodyTimeout, idleTimeout, v); }
}
