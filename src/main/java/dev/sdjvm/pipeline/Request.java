package dev.sdjvm.pipeline;

import java.time.Instant;
import java.util.Map;

/**
 * What a task pipeline is asked to do: diffusers' {@code __call__} arguments, already checked on their own (the
 * facade's {@code GenerationRequest} builds one). A task adds its own arguments here (image-to-image: the image and the
 * strength; inpainting: the mask) and {@link Pipelines#generate} picks the pipeline from them.
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
 */
public record Request(String prompt, String negativePrompt, int steps, double guidanceScale, Long seed, int numImages,
                      String scheduler, Map<String, Object> schedulerOverrides, Integer height, Integer width,
                      float[] latents, StepCallback listener, Instant deadline) {
    /** {@return true when classifier-free guidance runs: {@code guidance_scale > 1}, as diffusers decides} */
    public boolean doClassifierFreeGuidance() {
        return guidanceScale > 1;
    }
}
