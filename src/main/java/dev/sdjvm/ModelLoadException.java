package dev.sdjvm;

import java.nio.file.Path;

/** A model directory, artifact or configuration file cannot be used. The message names the file and the problem. */
public class ModelLoadException extends StableDiffusionException {
    private static final long serialVersionUID = 1L;
    private final transient Path file;

    public ModelLoadException(Path file, String problem) {
        super(file + ": " + problem);
        this.file = file;
    }

    public ModelLoadException(Path file, String problem, Throwable cause) {
        super(file + ": " + problem, cause);
        this.file = file;
    }

    /** The file or directory at fault (may be null when the problem is not tied to one file). */
    public Path file() {
        return file;
    }
}
