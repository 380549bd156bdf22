package dev.sdjvm.errors;

/**
 * A request or argument is invalid; thrown before any native work starts (diffusers' {@code check_inputs}).
 * {@link #field()} names the offending field, as the server reports it.
 */
public class InvalidRequestException extends StableDiffusionException {
    private static final long serialVersionUID = 1L;
    /** The invalid field or argument, or null. */
    private final String field;

    /**
     * An invalid request or argument.
     *
     * @param field   the name of the invalid field or argument (diffusers' parameter name for a request field), or
     *                null
     * @param problem what is wrong with it
     */
    public InvalidRequestException(String field, String problem) {
        super(field == null ? problem : field + ": " + problem);
        this.field = field;
    }

    /** {@return the name of the invalid field or argument, or null} */
    public String field() {
        return field;
    }
}
