package dev.sdjvm.pipeline;

import dev.sdjvm.errors.InvalidRequestException;
import dev.sdjvm.image.FloatImage;
import dev.sdjvm.image.RgbImage;
import dev.sdjvm.image.VaeImageProcessor;
import dev.sdjvm.tensor.TorchGenerator;
import java.util.List;
import java.util.function.BooleanSupplier;

/**
 * diffusers' {@code StableDiffusionImg2ImgPipeline.__call__} (commit 58eb52c0), and on an SDXL model
 * {@code StableDiffusionXLImg2ImgPipeline}'s for a base model ({@code requires_aesthetics_score} false, no
 * {@code denoising_start}; the family's text conditioning from {@link #encodeConditioning}, its default strength 0.3
 * from {@link #defaultStrength}): the start image encoded by the VAE,
 * noised to the level where the last {@code strength} of the schedule begins, then denoised from there with the
 * shared {@link DiffusionStages}.
 *
 * <ul>
 *   <li>The image: {@code VaeImageProcessor.preprocess} at its own size floored to a multiple of 8 (Pillow's LANCZOS
 *       only when that changes it), or at the request's height/width when it gives them (an extension: diffusers'
 *       image-to-image pipeline takes no size); the output has that size.</li>
 *   <li>Timesteps: the full schedule, then {@link #startTimesteps}: {@code int(steps * strength)} of them, the
 *       scheduler's begin index set to the first.</li>
 *   <li>Random draws from the one seeded generator, in diffusers' order: (1) the posterior sample of the start image
 *       ({@code [1,4,h,w]}, once for all images of the request), (2) the noise {@code [n,4,h,w]}; the start latents
 *       are {@code scheduler.add_noise(scaling_factor * sample, noise)} at the begin index's sigma, at every
 *       strength (1.0 included: never pure noise).</li>
 * </ul>
 * Initial latents cannot be given (diffusers' pipeline takes none); the request refuses them.
 */
public final class ImageToImagePipeline extends DiffusionStages {
    /**
     * The image-to-image pipeline over loaded components.
     *
     * @param components the loaded model
     */
    public ImageToImagePipeline(PipelineComponents components) {
        super(components);
    }

    /**
     * Generates images from a start image and a prompt.
     *
     * @param req       the request, with an image
     * @param cancelled checked at every step (e.g. the model is closing); may be null
     * @return the images, the seed, the final latents and the timings
     * @throws InvalidRequestException for a request that does not fit the model (size, no VAE encoder, an inpainting
     *                                 UNet) or a strength that leaves no step, before any native work but the
     *                                 text encoder's
     */
    public Result generate(Request req, BooleanSupplier cancelled) {
        long t0 = System.nanoTime();
        if (req.image() == null) {
            throw new InvalidRequestException("image", "image-to-image needs a start image");
        }
        checkUnetTakes(false);
        // 4. Preprocess image: the size floored to a multiple of 8, resized (LANCZOS) only when that changes it
        FloatImage image = startImage(req);
        // 1. Check inputs against the model, at the image's size
        Plan plan = checkInputs(req, image);
        // 5. Set timesteps: the full schedule, then its last `strength` (get_timesteps, set_begin_index)
        double[] timesteps = startTimesteps(req, plan, prepareTimesteps(req, plan));
        // 2.-3. Encode the prompt (SDXL: both encoders, and the time ids of the image's size)
        long tTok = System.nanoTime();
        TextConditioning text = encodeConditioning(req, plan);
        // 6. Prepare latents: scaling_factor * sample of the image's posterior (draw 1), duplicated to the batch;
        //    noise (draw 2); add_noise at the begin index's sigma
        TorchGenerator generator = new TorchGenerator(plan.seed());
        float[] latents = noisedImageLatents(image, plan, generator, timesteps[0]);
        // 7. Stochastic schedulers continue the same generator, as diffusers passes it to step()
        plan.scheduler().setNoiseSource(generator::randn);
        // 8. Denoising loop
        long loopStart = System.nanoTime();
        long unetNanos = denoise(latents, text.inputs(), timesteps, plan, req.listener(), req.deadline(), cancelled,
                new DenoiseHooks() { });
        long loopEnd = System.nanoTime();
        // 9. Decode
        List<RgbImage> images = decodeLatents(latents, plan);
        long end = System.nanoTime();
        // the encoder's time counts as encoding, beside the text encoder's
        return new Result(List.copyOf(images), plan.seed(), latents, text.tokenizeNanos(),
                loopStart - tTok - text.tokenizeNanos(), loopEnd - loopStart, unetNanos, end - loopEnd, end - t0,
                timesteps.length, text.truncated(), plan.scheduler().name());
    }
}
