package dev.sdjvm.errors;

/**
 * Root of every exception this library throws on purpose. Unchecked, like the rest of the JVM ML stacks
 * (DJL, ONNX Runtime's {@code OrtException} is checked; we follow DJL).
 *
 * <ul>
 *   <li>{@link ModelLoadException}: a model directory, artifact or config cannot be used (names the file);</li>
 *   <li>{@link InvalidRequestException}: a request or argument is rejected before any native work;</li>
 *   <li>{@link BackendException}: libtorch or the Neuron runtime failed (carries the native message/status);</li>
 *   <li>{@link GenerationCancelledException}: a progress callback or deadline cancelled a generation.</li>
 * </ul>
 */
public class StableDiffusionException extends RuntimeException {
    private static final long serialVersionUID = 1L;

    /**
     * An exception with a message.
     *
     * @param message what went wrong
     */
    public StableDiffusionException(String message) {
        super(message);
    }

    /**
     * An exception with a message and a cause.
     *
     * @param message what went wrong
     * @param cause   the underlying exception
     */
    public StableDiffusionException(String message, Throwable cause) {
        super(message, cause);
    }
}
