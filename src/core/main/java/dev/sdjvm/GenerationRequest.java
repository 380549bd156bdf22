package dev.sdjvm;

import dev.sdjvm.errors.InvalidRequestException;
import dev.sdjvm.image.GrayImage;
import dev.sdjvm.image.ImageInputs;
import dev.sdjvm.image.RgbImage;
import dev.sdjvm.scheduler.Schedulers;
import java.awt.image.BufferedImage;
import java.lang.reflect.Field;
import java.lang.reflect.Modifier;
import java.time.Instant;
import java.util.Arrays;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.OptionalDouble;
import java.util.OptionalInt;

/**
 * Everything one call to {@link StableDiffusion#generate(GenerationRequest)} needs, with diffusers'
 * {@code StableDiffusionPipeline.__call__} defaults. Build one with {@link #builder(String)}; change one with
 * {@link #toBuilder()}:
 * <pre>{@code
 * var req = GenerationRequest.builder("a lighthouse").negativePrompt("blurry").steps(20).guidanceScale(7.5).seed(42L).build();
 * var more = req.toBuilder().steps(30).build();
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
 * <p>The builder is the only way in (there is no public constructor), so fields can be added without breaking
 * callers. A request is immutable: it keeps its own copies of the latents and the overrides. Two requests are equal
 * when all their values are (the latents compared by content, images and listeners as their own {@code equals}).
 */
public final class GenerationRequest {

    /**
     * diffusers' default number of steps of the Stable Diffusion and SDXL pipelines; a request without
     * {@link Builder#steps} runs its model's default ({@link ModelInfo#defaultSteps()}: 4 for LCM, as diffusers' LCM
     * pipeline; 1 for a trailing-Euler few-step model such as SD-Turbo, as its model card).
     */
    public static final int DEFAULT_STEPS = 50;
    /**
     * diffusers' default guidance scale of the Stable Diffusion pipeline; a request without {@link Builder#guidanceScale}
     * runs its model's default ({@link ModelInfo#defaultGuidanceScale()}: 5.0 for SDXL, 8.5 for LCM, as diffusers'
     * pipelines; 0 for a trailing-Euler few-step model, as its model card).
     */
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
    /** diffusers' default {@code guidance_rescale}: off. */
    public static final double DEFAULT_GUIDANCE_RESCALE = 0.0;

    /**
     * The checked values: a private copy of the builder that made this request, never handed out (toBuilder gives a
     * copy of it). A field of the request is a field of the {@link Builder}, its setter there and its accessor here.
     */
    private final Builder v;

    /**
     * Checks and freezes the builder's values.
     *
     * @param b the builder (copied: changing it later does not change this request)
     * @throws InvalidRequestException naming the first invalid field
     */
    private GenerationRequest(Builder b) {
        Builder c = b.copy();
        if (c.prompt == null) {
            throw new InvalidRequestException("prompt", "must not be null");
        }
        if (c.steps != null && (c.steps < 1 || c.steps > MAX_STEPS)) {
            throw new InvalidRequestException("num_inference_steps", "must be in 1.." + MAX_STEPS + ", got " + c.steps);
        }
        if (c.guidanceScale != null && !(c.guidanceScale >= 0 && c.guidanceScale <= MAX_GUIDANCE)) {
            throw new InvalidRequestException("guidance_scale", "must be in 0.." + (int) MAX_GUIDANCE + ", got "
                    + c.guidanceScale);
        }
        if (!(c.guidanceRescale >= 0 && c.guidanceRescale <= 1)) {
            throw new InvalidRequestException("guidance_rescale", "must be in 0..1, got " + c.guidanceRescale);
        }
        if (c.seed != null && c.seed < 0) {
            throw new InvalidRequestException("seed", "must be >= 0, got " + c.seed);
        }
        if (c.numImages < 1 || c.numImages > MAX_IMAGES) {
            throw new InvalidRequestException("num_images_per_prompt", "must be in 1.." + MAX_IMAGES + ", got "
                    + c.numImages);
        }
        if (c.scheduler != null && !c.scheduler.isBlank() && !isSchedulerName(c.scheduler)) {
            throw new InvalidRequestException("scheduler", "unknown scheduler '" + c.scheduler + "'; valid names: "
                    + "config, " + String.join(", ", Schedulers.names()));
        }
        if (c.schedulerOverrides == null) {
            c.schedulerOverrides = Map.of();
        } else {
            for (String k : c.schedulerOverrides.keySet()) {  // not containsKey(null): Map.of throws on it
                if (k == null) {
                    throw new InvalidRequestException("scheduler_overrides", "a key must not be null");
                }
            }
            // not Map.copyOf: a null value is allowed (the key's default, as JSON null in scheduler_overrides)
            c.schedulerOverrides = Collections.unmodifiableMap(new LinkedHashMap<>(c.schedulerOverrides));
        }
        if (c.height != null && (c.height < 8 || c.height % 8 != 0)) {
            throw new InvalidRequestException("height", "must be a positive multiple of 8, got " + c.height);
        }
        if (c.width != null && (c.width < 8 || c.width % 8 != 0)) {
            throw new InvalidRequestException("width", "must be a positive multiple of 8, got " + c.width);
        }
        if (c.latents != null) {
            c.latents = c.latents.clone();
            for (float x : c.latents) {
                if (!Float.isFinite(x)) {
                    throw new InvalidRequestException("latents", "must be finite");
                }
            }
        }
        if (c.strength != null && !(c.strength > 0 && c.strength <= 1)) {
            throw new InvalidRequestException("strength", "must be in (0, 1], got " + c.strength);
        }
        if (c.initImage == null) {
            if (c.mask != null) {
                throw new InvalidRequestException("mask_image", "inpainting needs the image to repaint: give an "
                        + "init image with the mask");
            }
            if (c.strength != null) {
                throw new InvalidRequestException("strength", "applies to image-to-image and inpainting: give an "
                        + "init image");
            }
        } else {
            RgbImage img = c.initImage;
            if (c.mask != null && (c.mask.width() != img.width() || c.mask.height() != img.height())) {
                throw new InvalidRequestException("mask_image", "the mask is " + c.mask.width() + "x"
                        + c.mask.height() + " but the image is " + img.width() + "x" + img.height()
                        + " (width x height): they must have the same size");
            }
            if (c.mask == null && c.latents != null) {
                throw new InvalidRequestException("latents", "image-to-image starts from the image's latents; "
                        + "initial latents cannot be given (diffusers' image-to-image pipeline takes none)");
            }
        }
        this.v = c;
    }

    /** {@return the prompt (not null)} */
    public String prompt() {
        return v.prompt;
    }

    /** {@return the negative prompt, or null (then "" is used when guidance is on, as diffusers)} */
    public String negativePrompt() {
        return v.negativePrompt;
    }

    /**
     * {@return {@code num_inference_steps} (1..{@value #MAX_STEPS}), or empty for the model's default
     * ({@link ModelInfo#defaultSteps()}; {@link GenerationResult#request()} has the steps that ran)}
     */
    public OptionalInt steps() {
        return v.steps == null ? OptionalInt.empty() : OptionalInt.of(v.steps);
    }

    /**
     * {@return {@code guidance_scale} (0..{@value #MAX_GUIDANCE}; classifier-free guidance is on when &gt; 1), or empty
     * for the model's default ({@link ModelInfo#defaultGuidanceScale()}; {@link GenerationResult#request()} has the
     * scale that ran)}
     */
    public OptionalDouble guidanceScale() {
        return v.guidanceScale == null ? OptionalDouble.empty() : OptionalDouble.of(v.guidanceScale);
    }

    /**
     * This request with the given steps and guidance scale where it has none: the request as a model with these
     * defaults runs it ({@link StableDiffusion#withModelDefaults}).
     *
     * @param steps         the model's default {@code num_inference_steps}
     * @param guidanceScale the model's default {@code guidance_scale}
     * @return this request when it has both, else a copy with the defaults filled in
     * @throws InvalidRequestException when a default is out of range
     */
    public GenerationRequest withDefaults(int steps, double guidanceScale) {
        return withDefaults(steps, guidanceScale, resolvedStrength());
    }

    /**
     * As {@link #withDefaults(int, double)}, and for an image request without a strength the model's default
     * strength (SDXL image-to-image: 0.3, as diffusers' StableDiffusionXLImg2ImgPipeline).
     *
     * @param steps         the model's default {@code num_inference_steps}
     * @param guidanceScale the model's default {@code guidance_scale}
     * @param strength      the model's default {@code strength} for this request's task (unused without an image)
     * @return this request when it has all that applies, else a copy with the defaults filled in
     * @throws InvalidRequestException when a default is out of range
     */
    public GenerationRequest withDefaults(int steps, double guidanceScale, double strength) {
        boolean needsStrength = v.initImage != null && v.strength == null;
        if (v.steps != null && v.guidanceScale != null && !needsStrength) {
            return this;
        }
        Builder b = toBuilder();
        if (b.steps == null) {
            b.steps = steps;
        }
        if (b.guidanceScale == null) {
            b.guidanceScale = guidanceScale;
        }
        if (needsStrength) {
            b.strength = strength;
        }
        return b.build();
    }

    /**
     * {@return the seed of torch's CPU generator for the initial latents, &gt;= 0; null = a random seed, reported in
     * the result}
     */
    public Long seed() {
        return v.seed;
    }

    /** {@return {@code num_images_per_prompt} (1..{@value #MAX_IMAGES})} */
    public int numImages() {
        return v.numImages;
    }

    /**
     * {@return the scheduler name ({@code dpm++2m}, {@code euler}, ... or a diffusers class name, see
     * {@link Schedulers#names()}), or {@code config} for the model's {@code scheduler_config.json}; null =
     * DPMSolverMultistepScheduler from the model's config, as AWS's deployment does}
     */
    public String scheduler() {
        return v.scheduler;
    }

    /**
     * {@return the scheduler config overrides, diffusers key names ({@code use_karras_sigmas: true}), unmodifiable and
     * possibly empty; a key the scheduler does not take is rejected, a null value means the key's default}
     */
    public Map<String, Object> schedulerOverrides() {
        return v.schedulerOverrides;
    }

    /**
     * {@return the image height in pixels (a positive multiple of 8), or null for the model's. Compiled artifacts
     * (Neuron, static batch) make only their own size; CPU-traced ones take any multiple of the model's size step}
     */
    public Integer height() {
        return v.height;
    }

    /** {@return the image width in pixels (a positive multiple of 8), or null for the model's} */
    public Integer width() {
        return v.width;
    }

    /**
     * {@return the initial latents to use instead of drawing them ([numImages,4,h/8,w/8] flat, finite), or null. A
     * copy: the request cannot be changed after it was checked}
     */
    public float[] latents() {
        return v.latents == null ? null : v.latents.clone();
    }

    /** {@return the per-step progress callback that can cancel, or null} */
    public StepListener listener() {
        return v.listener;
    }

    /** {@return the instant after which the generation is cancelled when a step ends, or null} */
    public Instant deadline() {
        return v.deadline;
    }

    /**
     * {@return the start image of image-to-image and inpainting (diffusers' {@code image}), or null for
     * text-to-image. Image-to-image runs at its size floored to a multiple of 8 unless height/width are given (then
     * it is resized to them); inpainting at height/width or the model's size, as diffusers}
     */
    public RgbImage initImage() {
        return v.initImage;
    }

    /**
     * {@return diffusers' {@code strength} in (0, 1]: how much of the schedule runs, from the image noised to its
     * start; null = the model's default for the task ({@link StableDiffusion#withModelDefaults}: 0.8 image-to-image,
     * 1.0 inpainting, 0.3 SDXL image-to-image; {@link GenerationResult#request()} has the strength that ran). Only
     * with an image}
     */
    public Double strength() {
        return v.strength;
    }

    /**
     * {@return the inpainting mask (diffusers' {@code mask_image}; white = repaint, black = keep, grey binarized at
     * 128), the size of the image; or null}
     */
    public RgbImage mask() {
        return v.mask;
    }

    /**
     * {@return diffusers' {@code guidance_rescale} (Lin et al. 2023, "Common Diffusion Noise Schedules and Sample Steps
     * are Flawed", section 3.4), in 0..1, default 0 (off): under classifier-free guidance the guided noise is rescaled
     * to the text prediction's standard deviation and mixed with the unrescaled one by this factor (0.7 in the paper,
     * for v-prediction models)}
     */
    public double guidanceRescale() {
        return v.guidanceRescale;
    }

    /**
     * {@return the request's strength, else the default of diffusers' Stable Diffusion pipeline for its task
     * ({@value #DEFAULT_INPAINT_STRENGTH} with a mask, {@value #DEFAULT_STRENGTH} without; an SDXL model's
     * image-to-image defaults to 0.3: {@link StableDiffusion#withModelDefaults}); unused without an image}
     */
    public double resolvedStrength() {
        if (v.strength != null) {
            return v.strength;
        }
        return v.mask != null ? DEFAULT_INPAINT_STRENGTH : DEFAULT_STRENGTH;
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

    /** {@return a builder holding this request's values (changing it does not change this request)} */
    public Builder toBuilder() {
        return v.copy();
    }

    @Override
    public boolean equals(Object o) {
        if (this == o) {
            return true;
        }
        if (!(o instanceof GenerationRequest other)) {
            return false;
        }
        return Arrays.deepEquals(v.values(), other.v.values());
    }

    @Override
    public int hashCode() {
        return Arrays.deepHashCode(v.values());
    }

    @Override
    public String toString() {
        StringBuilder sb = new StringBuilder("GenerationRequest[");
        Object[] values = v.values();
        for (int i = 0; i < Builder.FIELDS.length; i++) {
            Object x = values[i];
            sb.append(i == 0 ? "" : ", ").append(Builder.FIELDS[i].getName()).append('=')
                    .append(x instanceof float[] f ? "float[" + f.length + "]" : x);
        }
        return sb.append(']').toString();
    }

    /** Builder with diffusers' defaults. */
    public static final class Builder implements Cloneable {
        /** The builder's fields: the request's values (for equals, hashCode and toString). */
        private static final Field[] FIELDS = Arrays.stream(Builder.class.getDeclaredFields())
                .filter(f -> !Modifier.isStatic(f.getModifiers()) && !f.isSynthetic()).toArray(Field[]::new);

        private String prompt;
        private String negativePrompt;
        private Integer steps;
        private Double guidanceScale;
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
        private double guidanceRescale = DEFAULT_GUIDANCE_RESCALE;

        private Builder(String prompt) {
            this.prompt = prompt;
        }

        /** A shallow copy: every field at once, so a new field needs no line here. */
        private Builder copy() {
            try {
                return (Builder) clone();
            } catch (CloneNotSupportedException e) {
                throw new AssertionError(e);
            }
        }

        /** The values of all fields, in declaration order. */
        private Object[] values() {
            Object[] out = new Object[FIELDS.length];
            for (int i = 0; i < FIELDS.length; i++) {
                try {
                    out[i] = FIELDS[i].get(this);
                } catch (IllegalAccessException e) {
                    throw new AssertionError(e);
                }
            }
            return out;
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
         * {@code num_inference_steps}, 1..{@value GenerationRequest#MAX_STEPS} (default: the model's,
         * {@link ModelInfo#defaultSteps()}: {@value GenerationRequest#DEFAULT_STEPS} for SD and SDXL models).
         *
         * @param v the value
         * @return this builder
         */
        public Builder steps(int v) {
            this.steps = v;
            return this;
        }

        /**
         * {@code guidance_scale}, finite and &gt;= 0 (default: the model's, {@link ModelInfo#defaultGuidanceScale()}:
         * {@value GenerationRequest#DEFAULT_GUIDANCE} for SD models, 5.0 for SDXL).
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
         * diffusers' {@code guidance_rescale}, 0..1 (checked when built; default 0: off); acts only under
         * classifier-free guidance. diffusers does not check the range; outside it the mix extrapolates, which the
         * paper does not define.
         *
         * @param v the factor
         * @return this builder
         */
        public Builder guidanceRescale(double v) {
            this.guidanceRescale = v;
            return this;
        }

        /**
         * {@return the request}
         *
         * @throws InvalidRequestException naming the first invalid field
         */
        public GenerationRequest build() {
            return new GenerationRequest(this);
        }
    }
}
