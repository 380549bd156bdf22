package dev.sdjvm.errors;

import java.nio.file.Path;

/** A model directory, artifact or configuration file cannot be used. The message names the file and the problem. */
public class ModelLoadException extends StableDiffusionException {
    private static final long serialVersionUID = 1L;
    private final transient Path file;

    /**
     * A model that cannot be used.
     *
     * @param file    the file or directory at fault, or null
     * @param problem what is wrong with it
     */
    public ModelLoadException(Path file, String problem) {
        super(file + ": " + problem);
        this.file = file;
    }

    /**
     * A model that cannot be used, found out through another exception.
     *
     * @param file    the file or directory at fault, or null
     * @param problem what is wrong with it
     * @param cause   the underlying exception
     */
    public ModelLoadException(Path file, String problem, Throwable cause) {
        super(file + ": " + problem, cause);
        this.file = file;
    }

    /** {@return the file or directory at fault (null when the problem is not tied to one file)} */
    public Path file() {
        return file;
    }
}
