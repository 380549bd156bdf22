package dev.sdjvm.cli;

import dev.sdjvm.StableDiffusion;
import dev.sdjvm.server.InferenceServer;
import dev.sdjvm.server.ServerConfig;
import dev.sdjvm.server.StableDiffusionEngine;
import java.io.PrintWriter;
import java.time.Duration;
import java.util.concurrent.Callable;
import java.util.concurrent.ExecutionException;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

/** {@code sd serve}: the SageMaker-contract HTTP server. */
@Command(name = "serve", mixinStandardHelpOptions = true,
        description = {"Serves the model over HTTP with Amazon SageMaker's container contract: GET /ping, "
                + "POST /invocations (JSON {\"prompt\":..., \"parameters\":{...}} or a text/plain prompt; answers "
                + "image/png, image/jpeg or application/json by Accept), GET /metrics (Prometheus).",
                "Listens before loading (/ping says 503 until the model is warm). SIGTERM drains in-flight requests."})
public final class ServeCommand implements Callable<Integer> {
    @Spec
    CommandSpec spec;

    @Mixin
    ModelOptions modelOptions;

    @Option(names = "--port", paramLabel = "PORT", defaultValue = "8080", description = "TCP port. Default: ${DEFAULT-VALUE}.")
    int port;

    @Option(names = "--bind", paramLabel = "ADDR", defaultValue = "127.0.0.1",
            description = "Address to listen on (0.0.0.0 for all). Default: ${DEFAULT-VALUE}.")
    String bind;

    @Option(names = "--workers", paramLabel = "N", defaultValue = "${env:SDJVM_WORKERS:-0}",
            description = "Generations at once (on CPU one generation already uses every core; on Neuron 2 overlap one "
                    + "request's text encoder and VAE with another's UNet steps). 0 = one per pipeline. Environment: "
                    + "SDJVM_WORKERS. Default: ${DEFAULT-VALUE}.")
    int workers;

    @Option(names = "--queue", paramLabel = "Q", defaultValue = "4",
            description = "Requests that may wait for a worker; more get 503 + Retry-After. Default: ${DEFAULT-VALUE}.")
    int queue;

    @Option(names = "--timeout", paramLabel = "DURATION", defaultValue = "60s", converter = Durations.class,
            description = "Per-request deadline (cancels the generation, 504). Default: ${DEFAULT-VALUE} (SageMaker's).")
    Duration timeout;

    @Option(names = "--drain", paramLabel = "DURATION", defaultValue = "30s", converter = Durations.class,
            description = "On SIGTERM, how long in-flight requests may take. Default: ${DEFAULT-VALUE}.")
    Duration drain;

    @Option(names = "--max-body", paramLabel = "BYTES", defaultValue = "1048576",
            description = "Largest request body; larger get 413. Default: ${DEFAULT-VALUE}.")
    long maxBody;

    @Option(names = "--max-connections", paramLabel = "N", defaultValue = "1024",
            description = "Open connections; one more closes the connection idle the longest (so idle or slow "
                    + "clients cannot lock out /ping). Default: ${DEFAULT-VALUE}.")
    int maxConnections;

    @Option(names = "--header-timeout", paramLabel = "DURATION", defaultValue = "10s", converter = Durations.class,
            description = "From a request's first byte to its complete head: 408 after it. Default: ${DEFAULT-VALUE}.")
    Duration headerTimeout;

    @Option(names = "--body-timeout", paramLabel = "DURATION", defaultValue = "30s", converter = Durations.class,
            description = "From a request's head to its complete body: 408 after it. Default: ${DEFAULT-VALUE}.")
    Duration bodyTimeout;

    @Option(names = "--idle-timeout", paramLabel = "DURATION", defaultValue = "60s", converter = Durations.class,
            description = "A connection without a request in progress is closed after it. Default: ${DEFAULT-VALUE}.")
    Duration idleTimeout;

    @Option(names = "--verbose", description = "Log at INFO level (the default for serve).")
    boolean verbose;

    /** The log's format. */
    public enum LogFormat { text, json }

    @Option(names = "--log-format", paramLabel = "FORMAT", defaultValue = "${env:SDJVM_LOG_FORMAT:-text}",
            description = "Log lines on stderr: text, or json (one JSON object per line, with the request id as "
                    + "mdc.request_id). Environment: SDJVM_LOG_FORMAT. Default: ${DEFAULT-VALUE}.")
    LogFormat logFormat;

    @Override
    public Integer call() throws Exception {
        int workers = this.workers > 0 ? this.workers : Math.max(1, modelOptions.pipelines());
        ServerConfig cfg = new ServerConfig(bind, port, workers, queue, timeout, maxBody, drain, maxConnections,
                headerTimeout, bodyTimeout, idleTimeout);
        modelOptions.checkThreads();
        PrintWriter err = spec.commandLine().getErr();
        InferenceServer server;
        try {
            server = InferenceServer.start(cfg, () -> new StableDiffusionEngine(modelOptions.load(workers)));
        } catch (java.io.IOException e) {
            throw new Main.UserException(Main.ERROR, "cannot listen on " + bind + ":" + port + ": " + e.getMessage());
        }
        server.installShutdownHook();
        // for a person at a terminal; in JSON mode stderr holds JSON lines only (the log says the same)
        boolean plain = logFormat != LogFormat.json;
        if (plain) {
            err.println("sd serve: listening on http://" + bind + ":" + server.port() + " (loading the model...)");
            err.flush();
        }
        try {
            server.ready().get();
        } catch (ExecutionException e) {
            server.shutdown();
            Throwable c = e.getCause();
            throw c instanceof Exception ? (Exception) c : new RuntimeException(c);
        }
        if (plain) {
            err.println("sd serve: ready");
            err.flush();
        }
        server.awaitTermination();
        return Main.OK;
    }
}
