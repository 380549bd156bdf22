package dev.sdjvm.server;

import dev.sdjvm.InvalidRequestException;
import java.time.Duration;

/**
 * How the server listens and queues.
 *
 * @param bind          address to bind (127.0.0.1 by default; the container binds 0.0.0.0)
 * @param port          TCP port (8080, SageMaker's; 0 = an ephemeral port)
 * @param workers       generations that run at once (the model is loaded with {@code maxConcurrent} = workers)
 * @param queue         admitted requests that may wait for a worker; beyond workers + queue: 503 + Retry-After
 * @param timeout       per-request deadline from arrival (60 s = SageMaker's invocation timeout): 504 after it
 * @param maxBodyBytes  larger request bodies get 413
 * @param drainTimeout  on shutdown, how long in-flight requests may take to finish
 */
public record ServerConfig(String bind, int port, int workers, int queue, Duration timeout, long maxBodyBytes,
                           Duration drainTimeout) {
    /** SageMaker's port. */
    public static final int DEFAULT_PORT = 8080;
    /** 1 MiB. */
    public static final long DEFAULT_MAX_BODY = 1 << 20;

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
        if (timeout == null || timeout.isNegative() || timeout.isZero()) {
            throw new InvalidRequestException("timeout", "must be positive");
        }
        if (maxBodyBytes < 1) {
            throw new InvalidRequestException("maxBodyBytes", "must be positive");
        }
        if (drainTimeout == null || drainTimeout.isNegative()) {
            throw new InvalidRequestException("drainTimeout", "must be >= 0");
        }
    }

    /** 127.0.0.1:8080, 1 worker, queue 4, 60 s timeout, 1 MiB bodies, 30 s drain. */
    public static ServerConfig defaults() {
        return new ServerConfig("127.0.0.1", DEFAULT_PORT, 1, 4, Duration.ofSeconds(60), DEFAULT_MAX_BODY,
                Duration.ofSeconds(30));
    }

    public ServerConfig withBind(String v) { return new ServerConfig(v, port, workers, queue, timeout, maxBodyBytes, drainTimeout); }
    public ServerConfig withPort(int v) { return new ServerConfig(bind, v, workers, queue, timeout, maxBodyBytes, drainTimeout); }
    public ServerConfig withWorkers(int v) { return new ServerConfig(bind, port, v, queue, timeout, maxBodyBytes, drainTimeout); }
    public ServerConfig withQueue(int v) { return new ServerConfig(bind, port, workers, v, timeout, maxBodyBytes, drainTimeout); }
    public ServerConfig withTimeout(Duration v) { return new ServerConfig(bind, port, workers, queue, v, maxBodyBytes, drainTimeout); }
    public ServerConfig withMaxBodyBytes(long v) { return new ServerConfig(bind, port, workers, queue, timeout, v, drainTimeout); }
    public ServerConfig withDrainTimeout(Duration v) { return new ServerConfig(bind, port, workers, queue, timeout, maxBodyBytes, v); }
}
