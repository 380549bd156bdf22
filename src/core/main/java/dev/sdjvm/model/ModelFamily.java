package dev.sdjvm.model;

/**
 * The Stable Diffusion model families, told apart by the model's own files ({@link FamilyDetection}): which pipeline
 * runs the model, its conditioning, and its defaults. {@code sd info} shows the family and why it was chosen.
 */
public enum ModelFamily {
    /** Stable Diffusion 1.x: CLIP ViT-L text encoder (768 features), 512x512, epsilon prediction. */
    SD1("Stable Diffusion 1.x (CLIP ViT-L/14 text encoder, 768 features)"),
    /** Stable Diffusion 2.x base: OpenCLIP ViT-H text encoder (1024 features), 512x512, epsilon prediction. */
    SD2("Stable Diffusion 2.x (OpenCLIP ViT-H/14 text encoder, 1024 features)"),
    /** Stable Diffusion 2.x 768: as {@link #SD2} with {@code prediction_type: v_prediction}, 768x768. */
    SD2_V("Stable Diffusion 2.x v-prediction (768 models)"),
    /** Stable Diffusion XL: two text encoders, added time ids, a 5-input UNet (the SDXL pipeline). */
    SDXL("Stable Diffusion XL (two text encoders, added time ids)"),
    /**
     * Latent Consistency Model: a UNet distilled with a guidance embedding ({@code unet/config.json}
     * {@code time_cond_proj_dim}), LCMScheduler, a few steps, guidance through the embedding (no CFG batch).
     */
    LCM("Latent Consistency Model (guidance embedding, LCMScheduler, 1-8 steps)"),
    /**
     * Few-step adversarially distilled models (SD-Turbo style): an SD UNet whose scheduler config spaces the
     * timesteps {@code trailing} (Euler / Euler ancestral); run with its own scheduler, 1-4 steps, guidance 0.
     */
    TURBO("few-step distilled model (SD-Turbo style: trailing timesteps, 1-4 steps, guidance 0)"),
    /** A model this library cannot tell or does not implement; loading it fails, naming what is missing. */
    UNKNOWN("unknown or unsupported model family");

    private final String description;

    ModelFamily(String description) {
        this.description = description;
    }

    /** {@return what the family is, in one line} */
    public String description() {
        return description;
    }
}
