package dev.sdjvm.server;

import dev.sdjvm.GenerationRequest;
import dev.sdjvm.GenerationResult;

/**
 * What the server runs requests on: {@link StableDiffusionEngine} in production, a stand-in in tests. Must be
 * thread-safe for as many concurrent {@link #generate} calls as the server has workers.
 */
public interface Engine extends AutoCloseable {
    /**
     * Generates; honours {@link GenerationRequest#deadline()} and {@link GenerationRequest#listener()} as
     * {@link dev.sdjvm.StableDiffusion#generate(GenerationRequest)} does.
     */
    GenerationResult generate(GenerationRequest request);

    /**
     * The request as the served model runs it: the model's default steps and guidance scale where the request has
     * none ({@link dev.sdjvm.StableDiffusion#withModelDefaults}).
     */
    GenerationRequest withModelDefaults(GenerationRequest request);

    /** What is served. */
    Info info();

    /**
     * The checks that need no generation, before the request is queued (the request checked itself when it was built): the work budget and the
     * scheduler with its overrides at the request's step count.
     *
     * @throws dev.sdjvm.errors.InvalidRequestException naming the field ({@link dev.sdjvm.errors.RequestLimitException} for the
     *                                           budget)
     */
    default void check(GenerationRequest request) {
        schedulerClass(request);
    }

    /**
     * The largest input image (width x height) a request may carry: the server refuses a bigger one from its header,
     * before decoding its pixels. Default: {@link dev.sdjvm.image.ImageInputs#MAX_PIXELS}.
     */
    default long maxImagePixels() {
        return dev.sdjvm.image.ImageInputs.MAX_PIXELS;
    }

    /** The diffusers class name of the scheduler a request would run with (throws InvalidRequestException if unknown). */
    String schedulerClass(GenerationRequest request);

    @Override
    void close();

    /**
     * Facts about the served model, also exported on {@code /metrics}.
     *
     * @param model       model name (directory name)
     * @param precision   the UNet's input dtype
     * @param height      image height
     * @param width       image width
     * @param weightBytes sum of the artifact file sizes
     * @param loadSeconds load time including warm-up
     */
    record Info(String model, String precision, int height, int width, long weightBytes, double loadSeconds) {
    }
}
