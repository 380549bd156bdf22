package dev.sdjvm.errors;

/** A generation was cancelled by its progress callback, a deadline or by closing the pipeline. */
public class GenerationCancelledException extends StableDiffusionException {
    private static final long serialVersionUID = 1L;

    /**
     * A cancelled generation.
     *
     * @param message who cancelled it, after which step
     */
    public GenerationCancelledException(String message) {
        super(message);
    }
}
