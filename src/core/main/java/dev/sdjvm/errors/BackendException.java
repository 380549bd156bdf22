package dev.sdjvm.errors;

/** libtorch or the Neuron runtime reported an error. The message carries the native message; {@link #status()} the native status name, when there is one. */
public class BackendException extends StableDiffusionException {
    private static final long serialVersionUID = 1L;
    /** The native status name, or null. */
    private final String status;

    /**
     * A backend failure without a native status.
     *
     * @param message what failed, with the native message
     */
    public BackendException(String message) {
        this(message, null, null);
    }

    /**
     * A backend failure caused by another exception.
     *
     * @param message what failed, with the native message
     * @param cause   the underlying exception
     */
    public BackendException(String message, Throwable cause) {
        this(message, null, cause);
    }

    /**
     * A backend failure with the native status.
     *
     * @param message what failed, with the native message
     * @param status  the native status name (e.g. {@code NRT_RESOURCE}), or null
     * @param cause   the underlying exception, or null
     */
    public BackendException(String message, String status, Throwable cause) {
        super(status == null ? message : message + " [" + status + "]", cause);
        this.status = status;
    }

    /** {@return the native status name (e.g. {@code NRT_RESOURCE}), or null} */
    public String status() {
        return status;
    }
}
