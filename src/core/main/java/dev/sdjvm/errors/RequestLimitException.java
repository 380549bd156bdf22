package dev.sdjvm.errors;

/**
 * A request is valid but costs more than the {@code RequestLimits} allow (the server answers 413).
 * {@link #field()} names the request field to change, {@link #limit()} the limit it ran into.
 */
public final class RequestLimitException extends InvalidRequestException {
    private static final long serialVersionUID = 1L;
    /** The limit the request ran into. */
    private final String limit;

    /**
     * A request over a limit.
     *
     * @param field   the request field to change ({@code height}, {@code num_inference_steps}, ...)
     * @param limit   the limit it ran into ({@code max_work}, ...)
     * @param problem what is wrong, with the numbers
     */
    public RequestLimitException(String field, String limit, String problem) {
        super(field, problem);
        this.limit = limit;
    }

    /** {@return the limit's name: {@code max_image_pixels}, {@code max_batch_pixels}, {@code max_work}, ...} */
    public String limit() {
        return limit;
    }
}
