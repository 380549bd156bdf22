package dev.sdjvm;

/** libtorch or the Neuron runtime reported an error. The message carries the native message; {@link #status()} the native status name, when there is one. */
public class BackendException extends StableDiffusionException {
    private static final long serialVersionUID = 1L;
    private final String status;

    public BackendException(String message) {
        this(message, null, null);
    }

    public BackendException(String message, Throwable cause) {
        this(message, null, cause);
    }

    public BackendException(String message, String status, Throwable cause) {
        super(status == null ? message : message + " [" + status + "]", cause);
        this.status = status;
    }

    /** Native status name (e.g. {@code NRT_RESOURCE}), or null. */
    public String status() {
        return status;
    }
}
