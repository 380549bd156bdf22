/**
 * An HTTP inference server with the Amazon SageMaker container contract ({@code GET /ping},
 * {@code POST /invocations} on port 8080), as AWS's DJL Serving endpoint for Stable Diffusion on Inferentia2 offers
 * it, on the JDK's {@code com.sun.net.httpserver}: a bounded queue in front of N generation workers, per-request
 * deadlines, Prometheus {@code /metrics}, graceful drain on SIGTERM. See docs/programs.md.
 */
package dev.sdjvm.server;
