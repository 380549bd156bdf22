package dev.sdjvm.model;

/** The model directory layouts this library reads ({@link ModelDirectory#layout()}). */
public enum ModelLayout {
    /**
     * {@code compiled_models/<role>.pt}: AWS's Inferentia2 deployment (Neuron-compiled, NEFF inside each
     * {@code .pt}) and our tools' output (Neuron or CPU TorchScript, with {@code sdjvm-manifest.json}).
     */
    COMPILED_MODELS("compiled_models"),
    /** optimum-neuron's export: {@code <component>/model.neuron} (TorchScript holding the NEFF) + config.json. */
    OPTIMUM_NEURON("optimum-neuron");

    private final String id;

    ModelLayout(String id) {
        this.id = id;
    }

    /** {@return the layout's name: {@code compiled_models} or {@code optimum-neuron}} */
    public String id() {
        return id;
    }

    /**
     * {@return whether a directory of this layout must have the role's artifact: the required roles, and in
     * {@link #COMPILED_MODELS} post_quant_conv too (optimum-neuron's decoder includes it)}
     */
    public boolean requires(ArtifactRole role) {
        return role.required() || this == COMPILED_MODELS && role == ArtifactRole.VAE_POST_QUANT_CONV;
    }
}
