package dev.sdjvm;

import dev.sdjvm.errors.InvalidRequestException;
import dev.sdjvm.image.GrayImage;
import dev.sdjvm.image.ImageInputs;
import dev.sdjvm.image.RgbImage;
import dev.sdjvm.scheduler.Schedulers;
import java.awt.image.BufferedImage;
import java.time.Instant;
import java.util.Map;

/**
 * Everything one call to {@link StableDiffusion#generate(GenerationRequest)} needs, with diffusers'
 * {@code StableDiffusionPipeline.__call__} defaults. Build one with {@link #builder(String)}:
 * <pre>{@code
 * var req = GenerationRequest.builder("a lighthouse").negativePrompt("blurry").steps(20).guidanceScale(7.5).seed(42L).build();
 * }</pre>
 * The task follows from the fields, as diffusers' sibling pipelines: text to image; with an {@link #initImage()},
 * image to image ({@code StableDiffusionImg2ImgPipeline}: the image noised by {@link #strength()}, default
 * {@value #DEFAULT_STRENGTH}, then denoised); with an image and a {@link #mask()}, inpainting
 * ({@code StableDiffusionInpaintPipeline}: the white part of the mask repainted, strength default
 * {@value #DEFAULT_INPAINT_STRENGTH}). Both need a model with a VAE encoder ({@code compiled_models/vae_encoder.pt}).
 * A request is checked once, when it is built (diffusers' {@code check_inputs} for everything that does not depend
 * on the model): an invalid one cannot exist, and building it throws an {@link InvalidRequestException} naming the
 * field. What depends on the model (the image size compiled artifacts take, the latents' length, the scheduler
 * config's keys) is checked by {@link StableDiffusion#generate(GenerationRequest)} before any native work.
 *
 * @param prompt             the prompt (not null)
 * @param negativePrompt     negative prompt, or null (then "" is used when guidance is on, as diffusers)
 * @param steps              {@code num_inference_steps} (1..1000)
 * @param guidanceScale      {@code guidance_scale} (0..100); classifier-free guidance is on when &gt; 1
 * @param seed               seed of torch's CPU generator for the initial latents, &gt;= 0; null = a random seed,
 *                           reported in the result
 * @param numImages          {@code num_images_per_prompt} (1..16)
 * @param scheduler          scheduler name ({@code dpm++2m}, {@code euler}, ... or a diffusers class name, see
 *                           {@link dev.sdjvm.scheduler.Schedulers#names()}), or {@code config} for the model's
 *                           {@code scheduler_config.json}; null = DPMSolverMultistepScheduler from the model's config,
 *                           as AWS's deployment does
 * @param schedulerOverrides config overrides, diffusers key names ({@code use_karras_sigmas: true}); may be empty;
 *                           a key the scheduler does not take is rejected, a null value means the key's default
 * @param height             image height in pixels (a positive multiple of 8), or null for the model's. Compiled
 *                           artifacts (Neuron, static batch) make only their own size; CPU-traced ones take any
 *                           multiple of 8
 * @param width              image width in pixels (a positive multiple of 8), or null for the model's
 * @param latents            initial latents to use instead of drawing them ([numImages,4,h/8,w/8] flat, finite), or
 *                           null; the request keeps its own copy
 * @param listener           per-step progress callback that can cancel, or null
 * @param deadline           the generation is cancelled when a step ends after this instant, or null
 * @param initImage          the start image of image-to-image and inpainting (diffusers' {@code image}), or null
 *                           for text-to-image. Image-to-image runs at its size floored to a multiple of 8 unless
 *                           height/width are given (then it is resized to them); inpainting at height/width or the
 *                           model's size, as diffusers
 * @param strength           diffusers' {@code strength} in (0, 1]: how much of the schedule runs, from the image
 *                           noised to its start; null = {@value #DEFAULT_STRENGTH} for image-to-image,
 *                           {@value #DEFAULT_INPAINT_STRENGTH} for inpainting ({@link #resolvedStrength()}). Only
 *                           with an image
 * @param mask               the inpainting mask (diffusers' {@code mask_image}; white = repaint, black = keep, grey
 *                           binarized at 128), the size of the image; or null. Only with an image
 */
public record GenerationRequest(String prompt, String negativePrompt, int steps, double guidanceScale, Long seed,
                                int numImages, String scheduler, Map<String, Object> schedulerOverrides,
                                Integer height, Integer width, float[] latents, StepListener listener,
                                Instant deadline, RgbImage initImage, Double strength, RgbImage mask) {

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
    /** diffusers' default {@code strength} of image-to-image ({@code StableDiffusionImg2ImgPipeline}). */
    public static final double DEFAULT_STRENGTH = 0.8;
    /** diffusers' default {@code strength} of inpainting ({@code StableDiffusionInpaintPipeline}): pure noise. */
    public static final double DEFAULT_INPAINT_STRENGTH = 1.0;

    /**
     * Checks and stores a request; {@link #builder(String)} is the readable way to make one.
     *
     * @param prompt             the prompt, not null
     * @param negativePrompt     the negative prompt, or null
     * @param steps              {@code num_inference_steps}, 1..{@value #MAX_STEPS}
     * @param guidanceScale      {@code guidance_scale}, finite and &gt;= 0
     * @param seed               the seed, &gt;= 0, or null for a random one
     * @param numImages          {@code num_images_per_prompt}, 1..{@value #MAX_IMAGES}
     * @param scheduler          a scheduler name, a diffusers class name, {@code config}, or null
     * @param schedulerOverrides scheduler config overrides (copied), or null for none
     * @param height             image height, a positive multiple of 8, or null
     * @param width              image width, a positive multiple of 8, or null
     * @param latents            initial latents (copied), all finite, or null
     * @param listener           per-step callback, or null
     * @param deadline           cancellation deadline, or null
     * @param initImage          the start image, or null
     * @param strength           in (0, 1], or null for the task's default; only with an image
     * @param mask               the inpainting mask of the image's size, or null; only with an image
     * @throws InvalidRequestException naming the first invalid field
     */
    public GenerationRequest {
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
        if (seed != null && seed < 0) {
            throw new InvalidRequestException("seed", "must be >= 0, got " + seed);
        }
        if (numImages < 1 || numImages > MAX_IMAGES) {
            throw new InvalidRequestException("num_images_per_prompt", "must be in 1.." + MAX_IMAGES + ", got " + numImages);
        }
        if (scheduler != null && !scheduler.isBlank() && !isSchedulerName(scheduler)) {
            throw new InvalidRequestException("scheduler", "unknown scheduler '" + scheduler + "'; valid names: config, "
                    + String.join(", ", Schedulers.names()));
        }
        if (schedulerOverrides == null) {
            schedulerOverrides = Map.of();
        } else {
            for (String k : schedulerOverrides.keySet()) {  // not containsKey(null): Map.of throws on it
                if (k == null) {
                    throw new InvalidRequestException("scheduler_overrides", "a key must not be null");
                }
            }
            // not Map.copyOf: a null value is allowed (the key's default, as JSON null in scheduler_overrides)
            schedulerOverrides = java.util.Collections.unmodifiableMap(new java.util.LinkedHashMap<>(schedulerOverrides));
        }
        if (height != null && (height < 8 || height % 8 != 0)) {
            throw new InvalidRequestException("height", "must be a positive multiple of 8, got " + height);
        }
        if (width != null && (width < 8 || width % 8 != 0)) {
            throw new InvalidRequestException("width", "must be a positive multiple of 8, got " + width);
        }
        if (latents != null) {
            latents = latents.clone();
            for (float v : latents) {
                if (!Float.isFinite(v)) {
                    throw new InvalidRequestException("latents", "must be finite");
                }
            }
        }
        if (strength != null && !(strength > 0 && strength <= 1)) {
            throw new InvalidRequestException("strength", "must be in (0, 1], got " + strength);
        }
        if (initImage == null) {
            if (mask != null) {
                throw new InvalidRequestException("mask_image", "inpainting needs the image to repaint: give an "
                        + "init image with the mask");
            }
            if (strength != null) {
                throw new InvalidRequestException("strength", "applies to image-to-image and inpainting: give an "
                        + "init image");
            }
        } else {
            if (mask != null && (mask.width() != initImage.width() || mask.height() != initImage.height())) {
                throw new InvalidRequestException("mask_image", "the mask is " + mask.width() + "x" + mask.height()
                        + " but the image is " + initImage.width() + "x" + initImage.height()
                        + " (width x height): they must have the same size");
            }
            if (mask == null && latents != null) {
                throw new InvalidRequestException("latents", "image-to-image starts from the image's latents; "
                        + "initial latents cannot be given (diffusers' image-to-image pipeline takes none)");
            }
        }
    }

    /**
     * A text-to-image request (no image, mask or strength): the canonical constructor of earlier versions.
     *
     * @param prompt             the prompt, not null
     * @param negativePrompt     the negative prompt, or null
     * @param steps              {@code num_inference_steps}, 1..{@value #MAX_STEPS}
     * @param guidanceScale      {@code guidance_scale}, finite and &gt;= 0
     * @param seed               the seed, &gt;= 0, or null for a random one
     * @param numImages          {@code num_images_per_prompt}, 1..{@value #MAX_IMAGES}
     * @param scheduler          a scheduler name, a diffusers class name, {@code config}, or null
     * @param schedulerOverrides scheduler config overrides (copied), or null for none
     * @param height             image height, a positive multiple of 8, or null
     * @param width              image width, a positive multiple of 8, or null
     * @param latents            initial latents (copied), all finite, or null
     * @param listener           per-step callback, or null
     * @param deadline           cancellation deadline, or null
     * @throws InvalidRequestException naming the first invalid field
     */
    public GenerationRequest(String prompt, String negativePrompt, int steps, double guidanceScale, Long seed,
                             int numImages, String scheduler, Map<String, Object> schedulerOverrides,
                             Integer height, Integer width, float[] latents, StepListener listener,
                             Instant deadline) {
        this(prompt, negativePrompt, steps, guidanceScale, seed, numImages, scheduler, schedulerOverrides, height,
                width, latents, listener, deadline, null, null, null);
    }

    /**
     * {@return the strength that runs: the request's, else diffusers' default of its task
     * ({@value #DEFAULT_INPAINT_STRENGTH} with a mask, {@value #DEFAULT_STRENGTH} without); unused without an image}
     */
    public double resolvedStrength() {
        if (strength != null) {
            return strength;
        }
        return mask != null ? DEFAULT_INPAINT_STRENGTH : DEFAULT_STRENGTH;
    }

    private static boolean isSchedulerName(String name) {
        if ("config".equalsIgnoreCase(name)) {
            return true;
        }
        for (String n : Schedulers.names()) {
            if (n.equalsIgnoreCase(name)) {
                return true;
            }
        }
        return false;
    }

    /** {@return the initial latents (a copy: the request cannot be changed after it was checked), or null} */
    @Override
    public float[] latents() {
        return latents == null ? null : latents.clone();
    }

    /**
     * {@return a request with diffusers' defaults for everything but the prompt}
     *
     * @param prompt the prompt
     * @throws InvalidRequestException if the prompt is null
     */
    public static GenerationRequest of(String prompt) {
        return builder(prompt).build();
    }

    /**
     * {@return a builder starting from diffusers' defaults}
     *
     * @param prompt the prompt (checked when the request is built)
     */
    public static Builder builder(String prompt) {
        return new Builder(prompt);
    }

    /** {@return a builder holding this request's values} */
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
        b.initImage = initImage;
        b.strength = strength;
        b.mask = mask;
        return b;
    }

    /** {@return true when classifier-free guidance is on ({@code guidance_scale > 1}, as diffusers)} */
    public boolean doClassifierFreeGuidance() {
        return guidanceScale > 1.0;
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
        private RgbImage initImage;
        private Double strength;
        private RgbImage mask;

        private Builder(String prompt) {
            this.prompt = prompt;
        }

        /**
         * The prompt (required).
         *
         * @param v the value
         * @return this builder
         */
        public Builder prompt(String v) {
            this.prompt = v;
            return this;
        }

        /**
         * What the images should not show; null (the default) = {@code ""} under guidance, as diffusers.
         *
         * @param v the value
         * @return this builder
         */
        public Builder negativePrompt(String v) {
            this.negativePrompt = v;
            return this;
        }

        /**
         * {@code num_inference_steps}, 1..{@value GenerationRequest#MAX_STEPS} (default {@value GenerationRequest#DEFAULT_STEPS}).
         *
         * @param v the value
         * @return this builder
         */
        public Builder steps(int v) {
            this.steps = v;
            return this;
        }

        /**
         * {@code guidance_scale}, finite and &gt;= 0 (default {@value GenerationRequest#DEFAULT_GUIDANCE}).
         *
         * @param v the value
         * @return this builder
         */
        public Builder guidanceScale(double v) {
            this.guidanceScale = v;
            return this;
        }

        /**
         * The seed, &gt;= 0, or null for a random one (the default).
         *
         * @param v the value
         * @return this builder
         */
        public Builder seed(Long v) {
            this.seed = v;
            return this;
        }

        /**
         * The seed, &gt;= 0.
         *
         * @param v the value
         * @return this builder
         */
        public Builder seed(long v) {
            this.seed = v;
            return this;
        }

        /**
         * {@code num_images_per_prompt}, 1..{@value GenerationRequest#MAX_IMAGES} (default 1).
         *
         * @param v the value
         * @return this builder
         */
        public Builder numImages(int v) {
            this.numImages = v;
            return this;
        }

        /**
         * A scheduler name, a diffusers class name or {@code config}; null = DPMSolverMultistepScheduler.
         *
         * @param v the value
         * @return this builder
         */
        public Builder scheduler(String v) {
            this.scheduler = v;
            return this;
        }

        /**
         * Scheduler config overrides with diffusers' key names (default none).
         *
         * @param v the value
         * @return this builder
         */
        public Builder schedulerOverrides(Map<String, Object> v) {
            this.schedulerOverrides = v;
            return this;
        }

        /**
         * Image height, a positive multiple of 8, or null for the model's (the default).
         *
         * @param v the value
         * @return this builder
         */
        public Builder height(Integer v) {
            this.height = v;
            return this;
        }

        /**
         * Image width, a positive multiple of 8, or null for the model's (the default).
         *
         * @param v the value
         * @return this builder
         */
        public Builder width(Integer v) {
            this.width = v;
            return this;
        }

        /**
         * Initial latents [numImages,4,h/8,w/8] flat, or null to draw them from the seed (the default).
         *
         * @param v the value (the request copies it)
         * @return this builder
         */
        public Builder latents(float[] v) {
            this.latents = v;
            return this;
        }

        /**
         * Called after every step; returning false cancels.
         *
         * @param v the value
         * @return this builder
         */
        public Builder listener(StepListener v) {
            this.listener = v;
            return this;
        }

        /**
         * Cancel the generation when a step ends after this instant.
         *
         * @param v the value
         * @return this builder
         */
        public Builder deadline(Instant v) {
            this.deadline = v;
            return this;
        }

        /**
         * The start image: image-to-image, or inpainting with a {@link #mask(RgbImage) mask}; null (the default)
         * for text-to-image.
         *
         * @param v the image, or null
         * @return this builder
         */
        public Builder initImage(RgbImage v) {
            this.initImage = v;
            return this;
        }

        /**
         * The start image from a {@link BufferedImage}, its raw samples converted to 8-bit RGB as Pillow's
         * {@code convert("RGB")} ({@link ImageInputs#fromBufferedImage}).
         *
         * @param v the image, or null
         * @return this builder
         * @throws InvalidRequestException (field {@code image}) for an image of another kind (e.g. CMYK)
         */
        public Builder initImage(BufferedImage v) {
            this.initImage = v == null ? null : ImageInputs.fromBufferedImage(v);
            return this;
        }

        /**
         * diffusers' {@code strength}, in (0, 1] (checked when built): the share of the schedule that runs from the
         * noised image. Default: {@value GenerationRequest#DEFAULT_STRENGTH} for image-to-image,
         * {@value GenerationRequest#DEFAULT_INPAINT_STRENGTH} for inpainting.
         *
         * @param v the value
         * @return this builder
         */
        public Builder strength(double v) {
            this.strength = v;
            return this;
        }

        /**
         * diffusers' {@code strength}, or null for the task's default.
         *
         * @param v the value, or null
         * @return this builder
         */
        public Builder strength(Double v) {
            this.strength = v;
            return this;
        }

        /**
         * The inpainting mask, the size of the start image: white repaints, black keeps; as diffusers it is
         * converted to grey (Pillow's {@code convert("L")}) and binarized (128..255 repaint).
         *
         * @param v the mask, or null (the default: no inpainting)
         * @return this builder
         */
        public Builder mask(RgbImage v) {
            this.mask = v;
            return this;
        }

        /**
         * The inpainting mask as 8-bit grey: 128..255 repaint, 0..127 keep.
         *
         * @param v the mask, or null
         * @return this builder
         */
        public Builder mask(GrayImage v) {
            this.mask = v == null ? null : v.toRgb();
            return this;
        }

        /**
         * The inpainting mask from a {@link BufferedImage}, read as its raw samples (a grey image's values as they
         * are; an RGB one converted to grey as Pillow does).
         *
         * @param v the mask, or null
         * @return this builder
         * @throws InvalidRequestException (field {@code mask_image}) for an image of another kind (e.g. CMYK)
         */
        public Builder mask(BufferedImage v) {
            this.mask = v == null ? null : ImageInputs.fromBufferedImage(v, "mask_image");
            return this;
        }

        /**
         * {@return the request}
         *
         * @throws InvalidRequestException naming the first invalid field
         */
        public GenerationRequest build() {
            return new GenerationRequest(prompt, negativePrompt, steps, guidanceScale, seed, numImages, scheduler,
                    schedulerOverrides, height, width, latents, listener, deadline, initImage, strength, mask);
        }
    }
}
