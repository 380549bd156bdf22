package dev.sdjvm.server;

/** A request that ends with an error status and a JSON body {@code {"error": ..., "field": ...}}. */
final class HttpError extends RuntimeException {
    private static final long serialVersionUID = 1L;
    final int status;
    final String field;

    HttpError(int status, String field, String message) {
        super(message);
        this.status = status;
        this.field = field;
    }
}
