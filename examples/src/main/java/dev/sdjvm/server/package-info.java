/**
 * An HTTP inference server with the Amazon SageMaker container contract ({@code GET /ping},
 * {@code POST /invocations} on port 8080), as AWS's DJL Serving endpoint for Stable Diffusion on Inferentia2 offers
 * it, on Netty (as DJL Serving): a bounded queue in front of N generation workers, per-request deadlines, a work
 * budget per request, read timeouts and a connection cap that keep {@code /ping} answering under floods of idle or
 * slow clients, cancellation when a client disconnects, Prometheus {@code /metrics}, graceful drain on SIGTERM.
 * See docs/programs.md.
 */
package dev.sdjvm.server;
