package dev.sdjvm.pipeline;

import dev.sdjvm.image.RgbImage;
import java.time.Instant;
import java.util.Map;

/**
 * What a task pipeline is asked to do: diffusers' {@code __call__} arguments, already checked on their own (the
 * facade's {@code GenerationRequest} builds one). A task adds its own arguments here (image-to-image: the image and the
 * strength; inpainting: the mask) and {@link Pipelines#generate} picks the pipeline from them: a mask means
 * inpainting, an image without one image-to-image, neither text-to-image.
 *
 * @param prompt             the prompt
 * @param negativePrompt     the negative prompt, or null ({@code ""} under classifier-free guidance)
 * @param steps              {@code num_inference_steps}
 * @param guidanceScale      {@code guidance_scale}; classifier-free guidance when &gt; 1
 * @param seed               the seed of torch's CPU generator, or null for a random one
 * @param numImages          {@code num_images_per_prompt}
 * @param scheduler          the scheduler name, {@code config}, or null/blank for the default
 * @param schedulerOverrides scheduler config keys to override
 * @param height             image height, or null for the model's
 * @param width              image width, or null for the model's
 * @param latents            initial latents [n,4,h,w] flat (not yet scaled by {@code init_noise_sigma}), or null
 * @param listener           called after every step, or null
 * @param deadline           when to give up (checked after every step), or null
 * @param image              the start image (diffusers' {@code image}), or null for text-to-image
 * @param strength           diffusers' {@code strength} in (0, 1] (the task's default resolved); ignored without an
 *                           image
 * @param mask               the inpainting mask as RGB (white = repaint; the image's size), or null
 * @param guidanceRescale    diffusers' {@code guidance_rescale} in [0, 1] (0 = off), applied under classifier-free
 *                           guidance
 */
public record Request(String prompt, String negativePrompt, int steps, double guidanceScale, Long seed, int numImages,
                      String scheduler, Map<String, Object> schedulerOverrides, Integer height, Integer width,
                      float[] latents, StepCallback listener, Instant deadline, RgbImage image, double strength,
                      RgbImage mask, double guidanceRescale) {
    /**
     * A text-to-image request (no image, no mask).
     *
     * @param prompt             the prompt
     * @param negativePrompt     the negative prompt, or null
     * @param steps              {@code num_inference_steps}
     * @param guidanceScale      {@code guidance_scale}
     * @param seed               the seed, or null
     * @param numImages          {@code num_images_per_prompt}
     * @param scheduler          the scheduler name, or null
     * @param schedulerOverrides scheduler config keys to override
     * @param height             image height, or null
     * @param width              image width, or null
     * @param latents            initial latents, or null
     * @param listener           called after every step, or null
     * @param deadline           when to give up, or null
     */
    public Request(String prompt, String negativePrompt, int steps, double guidanceScale, Long seed, int numImages,
                   String scheduler, Map<String, Object> schedulerOverrides, Integer height, Integer width,
                   float[] latents, StepCallback listener, Instant deadline) {
        this(prompt, negativePrompt, steps, guidanceScale, seed, numImages, scheduler, schedulerOverrides, height,
                width, latents, listener, deadline, null, 1.0, null, 0.0);
    }

    /** {@return true when classifier-free guidance runs: {@code guidance_scale > 1}, as diffusers decides} */
    public boolean doClassifierFreeGuidance() {
        return guidanceScale > 1;
    }
}
