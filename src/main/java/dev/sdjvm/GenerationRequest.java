package dev.sdjvm;

import java.time.Instant;
import java.util.Map;

/**
 * Everything one call to {@link StableDiffusion#generate(GenerationRequest)} needs, with diffusers'
 * {@code StableDiffusionPipeline.__call__} defaults. Build one with {@link #builder(String)}:
 * <pre>{@code
 * var req = GenerationRequest.builder("a lighthouse").negativePrompt("blurry").steps(20).guidanceScale(7.5).seed(42L).build();
 * }</pre>
 * Validation happens in {@link #validate()} (called by the pipeline before any native work).
 *
 * @param prompt             the prompt (not null)
 * @param negativePrompt     negative prompt, or null (then "" is used when guidance is on, as diffusers)
 * @param steps              {@code num_inference_steps} (1..1000)
 * @param guidanceScale      {@code guidance_scale} (0..100); classifier-free guidance is on when &gt; 1
 * @param seed               seed of torch's CPU generator for the initial latents; null = a random seed, reported in the result
 * @param numImages          {@code num_images_per_prompt} (1..16)
 * @param scheduler          scheduler name ({@code dpm++2m}, {@code euler}, ... or a diffusers class name); null =
 *                           DPMSolverMultistepScheduler from the model's config, as AWS's deployment does
 * @param schedulerOverrides config overrides, diffusers key names ({@code use_karras_sigmas: true}); may be empty;
 *                           a key the scheduler does not take is rejected, a null value means the key's default
 * @param height             image height in pixels, or null for the model's. Compiled artifacts (Neuron, static
 *                           batch) make only their own size; CPU-traced ones take any multiple of 8
 * @param width              image width in pixels, or null for the model's
 * @param latents            initial latents to use instead of drawing them ([numImages,4,h/8,w/8] flat), or null
 * @param listener           per-step progress callback that can cancel, or null
 * @param deadline           the generation is cancelled when a step ends after this instant, or null
 */
public record GenerationRequest(String prompt, String negativePrompt, int steps, double guidanceScale, Long seed,
                                int numImages, String scheduler, Map<String, Object> schedulerOverrides,
                                Integer height, Integer width, float[] latents, StepListener listener,
                                Instant deadline) {

    /** diffusers' default number of steps. */
    public static final int DEFAULT_STEPS = 50;
    /** diffusers' default guidance scale. */
    public static final double DEFAULT_GUIDANCE = 7.5;
    /** Upper bound on steps: the training schedule has 1000 timesteps. */
    public static final int MAX_STEPS = 1000;
    /**
     * Upper bound on guidance_scale (ComfyUI's maximum): far above any useful value (SD uses 1-15), and well below
     * where the float32 CFG arithmetic overflows (a scale of 1e308 becomes infinity: an all-NaN, black image).
     */
    public static final double MAX_GUIDANCE = 100;
    /** Upper bound on images per request. */
    public static final int MAX_IMAGES = 16;

    public GenerationRequest {
        // not Map.copyOf: a null value is allowed (the key's default, as JSON null in scheduler_overrides)
        schedulerOverrides = schedulerOverrides == null ? Map.of()
                : java.util.Collections.unmodifiableMap(new java.util.LinkedHashMap<>(schedulerOverrides));
    }

    /** A request with diffusers' defaults for everything but the prompt. */
    public static GenerationRequest of(String prompt) {
        return builder(prompt).build();
    }

    /** A builder starting from diffusers' defaults. */
    public static Builder builder(String prompt) {
        return new Builder(prompt);
    }

    /** A builder holding this request's values. */
    public Builder toBuilder() {
        Builder b = new Builder(prompt);
        b.negativePrompt = negativePrompt;
        b.steps = steps;
        b.guidanceScale = guidanceScale;
        b.seed = seed;
        b.numImages = numImages;
        b.scheduler = scheduler;
        b.schedulerOverrides = schedulerOverrides;
        b.height = height;
        b.width = width;
        b.latents = latents;
        b.listener = listener;
        b.deadline = deadline;
        return b;
    }

    /** True when classifier-free guidance is on ({@code guidance_scale > 1}, as diffusers). */
    public boolean doClassifierFreeGuidance() {
        return guidanceScale > 1.0;
    }

    /**
     * Checks the request on its own (diffusers' {@code check_inputs}); the pipeline then checks it against the model.
     *
     * @throws InvalidRequestException naming the field
     */
    public GenerationRequest validate() {
        if (prompt == null) {
            throw new InvalidRequestException("prompt", "must not be null");
        }
        if (steps < 1 || steps > MAX_STEPS) {
            throw new InvalidRequestException("num_inference_steps", "must be in 1.." + MAX_STEPS + ", got " + steps);
        }
        if (!(guidanceScale >= 0 && guidanceScale <= MAX_GUIDANCE)) {
            throw new InvalidRequestException("guidance_scale", "must be in 0.." + (int) MAX_GUIDANCE + ", got "
                    + guidanceScale);
        }
        if (numImages < 1 || numImages > MAX_IMAGES) {
            throw new InvalidRequestException("num_images_per_prompt", "must be in 1.." + MAX_IMAGES + ", got " + numImages);
        }
        if (height != null && (height < 8 || height % 8 != 0)) {
            throw new InvalidRequestException("height", "must be a positive multiple of 8, got " + height);
        }
        if (width != null && (width < 8 || width % 8 != 0)) {
            throw new InvalidRequestException("width", "must be a positive multiple of 8, got " + width);
        }
        if (schedulerOverrides.containsKey(null)) {
            throw new InvalidRequestException("scheduler_overrides", "a key must not be null");
        }
        if (latents != null) {
            for (float v : latents) {
                if (!Float.isFinite(v)) {
                    throw new InvalidRequestException("latents", "must be finite");
                }
            }
        }
        return this;
    }

    /** Builder with diffusers' defaults. */
    public static final class Builder {
        private String prompt;
        private String negativePrompt;
        private int steps = DEFAULT_STEPS;
        private double guidanceScale = DEFAULT_GUIDANCE;
        private Long seed;
        private int numImages = 1;
        private String scheduler;
        private Map<String, Object> schedulerOverrides = Map.of();
        private Integer height;
        private Integer width;
        private float[] latents;
        private StepListener listener;
        private Instant deadline;

        private Builder(String prompt) {
            this.prompt = prompt;
        }

        public Builder prompt(String v) { this.prompt = v; return this; }
        public Builder negativePrompt(String v) { this.negativePrompt = v; return this; }
        public Builder steps(int v) { this.steps = v; return this; }
        public Builder guidanceScale(double v) { this.guidanceScale = v; return this; }
        public Builder seed(Long v) { this.seed = v; return this; }
        public Builder seed(long v) { this.seed = v; return this; }
        public Builder numImages(int v) { this.numImages = v; return this; }
        public Builder scheduler(String v) { this.scheduler = v; return this; }
        public Builder schedulerOverrides(Map<String, Object> v) { this.schedulerOverrides = v; return this; }
        public Builder height(Integer v) { this.height = v; return this; }
        public Builder width(Integer v) { this.width = v; return this; }
        public Builder latents(float[] v) { this.latents = v; return this; }
        public Builder listener(StepListener v) { this.listener = v; return this; }
        public Builder deadline(Instant v) { this.deadline = v; return this; }

        public GenerationRequest build() {
            return new GenerationRequest(prompt, negativePrompt, steps, guidanceScale, seed, numImages, scheduler,
                    schedulerOverrides, height, width, latents, listener, deadline);
        }
    }
}
