package dev.sdjvm.model;

import dev.sdjvm.errors.ModelLoadException;
import java.util.List;

/**
 * The arguments a model's UNet artifact takes, in order: one list per kind of UNet, as each family's wrapper traces
 * diffusers' {@code UNet2DConditionModel} (positional arguments; a NEFF's {@code input0, input1, ...} are these
 * positions). The UNet's contract ({@link ArtifactRole#inputs(UNetSignature)}) and the conditioning a pipeline writes
 * once per generation ({@link #conditioning()}) both follow from it.
 */
public enum UNetSignature {
    /** SD 1.x and 2.x (AWS's SD wrapper): sample, timestep, encoder_hidden_states. */
    SD(List.of(UNetSignature.SAMPLE, UNetSignature.TIMESTEP, "encoder_hidden_states")),
    /**
     * SDXL (AWS's SDXL wrapper: {@code added_cond_kwargs} as positional arguments): sample, timestep,
     * encoder_hidden_states [B,77,H1+H2], text_embeds [B,P], time_ids [B,6].
     */
    SDXL(List.of(UNetSignature.SAMPLE, UNetSignature.TIMESTEP, "encoder_hidden_states", "text_embeds", "time_ids")),
    /**
     * LCM ({@code unet/config.json} {@code time_cond_proj_dim}): sample, timestep, encoder_hidden_states and the
     * guidance-scale embedding timestep_cond [B, time_cond_proj_dim].
     */
    LCM(List.of(UNetSignature.SAMPLE, UNetSignature.TIMESTEP, "encoder_hidden_states", "timestep_cond"));

    /** The latent sample, every UNet's first argument. */
    public static final String SAMPLE = "sample";
    /** The timestep, every UNet's second argument. */
    public static final String TIMESTEP = "timestep";

    private final List<String> inputs;

    UNetSignature(List<String> inputs) {
        this.inputs = inputs;
    }

    /** {@return the argument names in order} */
    public List<String> inputs() {
        return inputs;
    }

    /**
     * {@return the arguments a pipeline writes once per generation: all but the sample and the timestep, which change
     * at every step}
     */
    public List<String> conditioning() {
        return inputs.subList(2, inputs.size());
    }

    /**
     * The signature of a model's UNet: SDXL's for an SDXL model, LCM's for a UNet with a guidance embedding
     * ({@code time_cond_proj_dim}), else SD's.
     *
     * @param family the model's family ({@link ModelDirectory#family()})
     * @param sdxl   true for an SDXL model ({@link SdxlConfig#isSdxl})
     * @param config the UNet's {@code config.json}, named in errors
     * @return the signature
     * @throws ModelLoadException for an SDXL UNet with a guidance embedding (LCM-SDXL): diffusers' SDXL pipeline feeds
     *                            it {@code timestep_cond}, which no SDXL wrapper traces; running it without would make
     *                            another image than diffusers
     */
    public static UNetSignature of(FamilyDetection family, boolean sdxl, java.nio.file.Path config) {
        if (sdxl) {
            if (family.timeCondProjDim() != null) {
                throw new ModelLoadException(config, "an SDXL UNet with time_cond_proj_dim " + family.timeCondProjDim()
                        + " (LCM-SDXL) takes a guidance embedding as well as SDXL's added conditioning: not supported "
                        + "(SD 1.5 LCM models are)");
            }
            return SDXL;
        }
        return family.timeCondProjDim() != null ? LCM : SD;
    }
}
