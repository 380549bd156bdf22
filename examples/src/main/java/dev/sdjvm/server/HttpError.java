package dev.sdjvm.server;

import java.util.LinkedHashMap;
import java.util.Map;

/**
 * A request that ends with an error status and a JSON body {@code {"error": ..., "field": ..., "request_id": ...}},
 * plus optional response headers ({@code Allow}, {@code Retry-After}).
 */
final class HttpError extends RuntimeException {
    private static final long serialVersionUID = 1L;
    final int status;
    final String field;
    final transient Map<String, String> headers = new LinkedHashMap<>();

    HttpError(int status, String field, String message) {
        super(message, null, false, false);
        this.status = status;
        this.field = field;
    }

    /** Adds a response header; returns this. */
    HttpError header(String name, String value) {
        headers.put(name, value);
        return this;
    }
}
