package dev.sdjvm.errors;

/**
 * A request is valid but costs more than the {@link RequestLimits} allow (the server answers 413).
 * {@link #field()} names the request field to change, {@link #limit()} the limit it ran into.
 */
public final class RequestLimitException extends InvalidRequestException {
    private static final long serialVersionUID = 1L;
    private final String limit;

    public RequestLimitException(String field, String limit, String problem) {
        super(field, problem);
        this.limit = limit;
    }

    /** The limit's name: {@code max_image_pixels}, {@code max_batch_pixels}, {@code max_work}, ... */
    public String limit() {
        return limit;
    }
}
