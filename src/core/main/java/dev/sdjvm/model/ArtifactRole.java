package dev.sdjvm.model;

import java.util.Arrays;
import java.util.List;
import java.util.Optional;

/**
 * The parts of a Stable Diffusion deployment, one compiled artifact each, in the order they are loaded: the one table
 * every layer iterates over (model directory, manifest, backend selection, both backends, {@code sd info}). A role
 * names its file in {@code compiled_models/}, whether a model must have it, and its contract: the names of its inputs
 * and outputs in argument order (a TorchScript dict's keys; a NEFF's {@code input0, input1, ...} /
 * {@code output0, ...} are these positions). Adding a part of the model is one entry here.
 */
public enum ArtifactRole {
    /** CLIP text encoder: token ids [1,77] int64 to {@code last_hidden_state} [1,77,H] (and {@code pooler_output} [1,H]). */
    TEXT_ENCODER("text_encoder", true, Placement.FIRST_CORE,
            "CLIP text encoder: input_ids [1,77] int64 -> last_hidden_state [1,77,H]",
            List.of("input_ids"), List.of("last_hidden_state", "pooler_output"), "text_encoder"),
    /**
     * SDXL's second text encoder (OpenCLIP bigG with its projection, transformers' {@code CLIPTextModelWithProjection}):
     * token ids [1,77] int64 to {@code text_embeds} [1,P], {@code last_hidden_state} [1,77,H] and the hidden states of
     * every layer [1,77,H] each, as AWS's SDXL wrapper traces it ({@code output_hidden_states=True, return_dict=False}).
     * Optional in the table; an SDXL model ({@code model_index.json} {@code StableDiffusionXLPipeline}) requires it.
     */
    TEXT_ENCODER_2("text_encoder_2", false, Placement.FIRST_CORE,
            "CLIP text encoder with projection: input_ids [1,77] int64 -> text_embeds [1,P], last_hidden_state [1,77,H], "
            + "hidden_states [1,77,H] x (layers+1)",
            List.of("input_ids"), List.of("text_embeds", "last_hidden_state"), "text_encoder_2"),
    /**
     * The UNet: noise prediction for a latent sample at a timestep, conditioned on the text embeddings. Its arguments
     * depend on the model ({@link UNetSignature}, {@link #inputs(UNetSignature)}): {@link #inputs()} lists SD's three;
     * an SDXL UNet also takes the pooled text embedding and the six size-and-crop ids ({@code added_cond_kwargs}), an
     * LCM UNet the guidance embedding {@code timestep_cond}.
     */
    UNET("unet", true, Placement.REPLICAS,
            "UNet: sample [B,4,h,w], timestep [B], encoder_hidden_states [B,77,H] (SDXL: + text_embeds [B,P], time_ids "
            + "[B,6]; LCM: + timestep_cond [B,D]) -> noise prediction [B,4,h,w]",
            UNetSignature.SD.inputs(), List.of("noise_pred"), "unet"),
    /**
     * The VAE's post_quant_conv: latents [1,4,h,w] to latents [1,4,h,w], before the decoder. Required in AWS's
     * {@code compiled_models} layout ({@link ModelLayout#requires}); optimum-neuron's VAE decoder includes it.
     */
    VAE_POST_QUANT_CONV("vae_post_quant_conv", false, Placement.LAST_CORE,
            "VAE post_quant_conv: latents [1,4,h,w] -> latents [1,4,h,w]",
            List.of("latents"), List.of("latents"), null),
    /** The VAE decoder: latents [1,4,h,w] to an image [1,3,H,W] in [-1,1]. */
    VAE_DECODER("vae_decoder", true, Placement.LAST_CORE,
            "VAE decoder: latents [1,4,h,w] -> image [1,3,H,W] in [-1,1]",
            List.of("latents"), List.of("image"), "vae_decoder"),
    /**
     * The VAE encoder including quant_conv (optional; image-to-image and inpainting need it): an image [B,3,H,W]
     * float32 in [-1,1] to the latent distribution's parameters ("moments") [B,8,H/8,W/8], mean = the first 4
     * channels, logvar = the last 4. As optimum-neuron exports it, a one-key dict {@code {"latent_parameters": moments}};
     * a bare tensor or a 1-tuple is accepted too.
     */
    VAE_ENCODER("vae_encoder", false, Placement.LAST_CORE,
            "VAE encoder + quant_conv: image [1,3,H,W] in [-1,1] -> latent_parameters (mean, logvar) [1,8,h,w]",
            List.of("image"), List.of("latent_parameters"), "vae_encoder");

    /** Where a role's artifact goes among the NeuronCores of a pipeline. */
    public enum Placement {
        /** The pipeline's first core. */
        FIRST_CORE,
        /** One copy per UNet replica, replica {@code r} on the pipeline's core {@code r}. */
        REPLICAS,
        /** The pipeline's last core (the VAE's parts). */
        LAST_CORE
    }

    private final String id;
    private final boolean required;
    private final Placement placement;
    private final String description;
    private final List<String> inputs;
    private final List<String> outputs;
    private final String optimumComponent;

    ArtifactRole(String id, boolean required, Placement placement, String description, List<String> inputs,
                 List<String> outputs, String optimumComponent) {
        this.id = id;
        this.required = required;
        this.placement = placement;
        this.description = description;
        this.inputs = inputs;
        this.outputs = outputs;
        this.optimumComponent = optimumComponent;
    }

    /**
     * The role's component directory in optimum-neuron's export ({@code <component>/model.neuron}), or empty for
     * post_quant_conv, which optimum-neuron's VAE decoder includes.
     *
     * @return e.g. {@code vae_decoder}
     */
    public Optional<String> optimumComponent() {
        return Optional.ofNullable(optimumComponent);
    }

    /** {@return the role's name, as in file names, the manifest and {@code sd info}: {@code text_encoder}, ...} */
    public String id() {
        return id;
    }

    /** {@return the artifact's default file name in {@code compiled_models/} ({@code <id>.pt}; a manifest may name another)} */
    public String fileName() {
        return id + ".pt";
    }

    /**
     * {@return where AWS's SDXL sample saves this artifact, relative to the model directory: {@code <id>/model.pt}
     * (its compiler work directory per part), used when {@code compiled_models/} has no file for the role}
     */
    public String sampleFileName() {
        return id + "/model.pt";
    }

    /** {@return true when every model directory must have this artifact; false for optional parts} */
    public boolean required() {
        return required;
    }

    /** {@return where the artifact goes among a pipeline's NeuronCores} */
    public Placement placement() {
        return placement;
    }

    /** {@return what the artifact computes, in one line} */
    public String description() {
        return description;
    }

    /** {@return the names of the inputs in argument order (the UNet's: SD's; see {@link #inputs(UNetSignature)})} */
    public List<String> inputs() {
        return inputs;
    }

    /** {@return the names of the outputs in order (a dict's keys, a tuple's elements)} */
    public List<String> outputs() {
        return outputs;
    }

    /**
     * {@return the names of the inputs in argument order for a model whose UNet has signature {@code unet}: the UNet's
     * are the signature's, every other role's are {@link #inputs()}}
     *
     * @param unet the model's {@link ModelDirectory#unetSignature()}
     */
    public List<String> inputs(UNetSignature unet) {
        return this == UNET ? unet.inputs() : inputs;
    }

    /** {@return the roles every model has, in load order} */
    public static List<ArtifactRole> requiredRoles() {
        return Arrays.stream(values()).filter(ArtifactRole::required).toList();
    }

    /**
     * The role named {@code id}.
     *
     * @param id a role name such as {@code unet}
     * @return the role, or empty for a name that is not a role
     */
    public static Optional<ArtifactRole> byId(String id) {
        return Arrays.stream(values()).filter(r -> r.id.equals(id)).findFirst();
    }

    /** {@return the role's name} */
    @Override
    public String toString() {
        return id;
    }
}
