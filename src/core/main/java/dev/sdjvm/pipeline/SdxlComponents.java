package dev.sdjvm.pipeline;

import dev.sdjvm.model.ArtifactRole;
import dev.sdjvm.model.ArtifactSpec;
import dev.sdjvm.model.DType;
import dev.sdjvm.model.ModelDirectory;
import dev.sdjvm.model.SdxlConfig;
import java.util.Map;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The SDXL family's plug-in points besides its text conditioning ({@link DiffusionStages#encodeConditioning}):
 * {@link #detect} (is a model SDXL, with its parts) and the VAE's {@code force_upcast} check at load.
 */
public final class SdxlComponents {
    private static final Logger LOG = LoggerFactory.getLogger(SdxlComponents.class);

    private SdxlComponents() {
    }

    /**
     * Whether a model is SDXL ({@code model_index.json} names {@code StableDiffusionXLPipeline}), with its SDXL parts.
     *
     * @param model a model directory
     * @return its SDXL configuration, or null for the SD 2.x shape
     */
    public static SdxlConfig detect(ModelDirectory model) {
        return SdxlConfig.detect(model).orElse(null);
    }

    /**
     * diffusers decodes an SDXL latent in float32 when the VAE's config says {@code force_upcast} (SDXL's VAE overflows
     * in float16). The pipeline hands float32 latents to the VAE's artifacts; a compiled artifact computes in its own
     * dtype, so one compiled in lower precision is reported (the tools compile SDXL's VAE in float32).
     */
    static void checkVaeUpcast(SdxlConfig sdxl, Map<ArtifactRole, ArtifactSpec> specs) {
        if (!sdxl.forceUpcast()) {
            return;
        }
        for (ArtifactRole role : new ArtifactRole[] {ArtifactRole.VAE_POST_QUANT_CONV, ArtifactRole.VAE_DECODER}) {
            ArtifactSpec s = specs.get(role);
            if (s != null && s.inputDType() != null && s.inputDType() != DType.FLOAT32) {
                LOG.warn("vae/config.json says force_upcast (decode in float32), but {} computes in {}: SDXL's VAE can "
                        + "overflow below float32; compile it in float32 (tools/model/neuron_compile_sdxl.py does)",
                        role, s.inputDType());
            }
        }
    }
}
