package dev.sdjvm.pipeline;

import java.util.function.BooleanSupplier;

/**
 * The facade's entry to the task pipelines: picks the sibling a request asks for and runs it on loaded components.
 * Text-to-image is the only task so far; image-to-image and inpainting are chosen here from their request fields.
 */
public final class Pipelines {
    private Pipelines() {
    }

    /**
     * Runs the task pipeline a request asks for.
     *
     * @param components the loaded model
     * @param req        the request
     * @param cancelled  checked at every step (e.g. the model is closing); may be null
     * @return what the pipeline produced
     */
    public static Result generate(PipelineComponents components, Request req, BooleanSupplier cancelled) {
        return new TextToImagePipeline(components).generate(req, cancelled);
    }
}
