package dev.sdjvm.pipeline;

import dev.sdjvm.errors.BackendException;

/**
 * The latents became NaN or infinite during denoising: the generation fails instead of returning a picture of noise
 * or a single colour. The facade reports it as the client's mistake when the request overrode the scheduler's
 * configuration (e.g. {@code beta_start} 1e-300), else as a backend failure.
 */
public final class NonFiniteLatentsException extends BackendException {
    private static final long serialVersionUID = 1L;

    NonFiniteLatentsException(String message) {
        super(message);
    }
}
