package dev.sdjvm.pipeline;

import java.util.function.BooleanSupplier;

/**
 * The facade's entry to the task pipelines: picks the sibling a request asks for and runs it on loaded components.
 * A mask means inpainting ({@link InpaintPipeline}), an image without one image-to-image
 * ({@link ImageToImagePipeline}), neither text-to-image ({@link TextToImagePipeline}).
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
        if (req.mask() != null) {
            return new InpaintPipeline(components).generate(req, cancelled);
        }
        if (req.image() != null) {
            return new ImageToImagePipeline(components).generate(req, cancelled);
        }
        return new TextToImagePipeline(components).generate(req, cancelled);
    }
}
