package dev.sdjvm.backend.torch;

import dev.sdjvm.backend.Artifact;
import dev.sdjvm.backend.Invocation;
import dev.sdjvm.backend.TensorSpec;
import dev.sdjvm.model.ArtifactRole;
import java.nio.file.Path;
import java.util.List;

/**
 * A TorchScript artifact run by libtorch on the CPU. Its inputs' dtypes and static batch come from our tools' manifest,
 * the module's parameters, or probing at load time ({@link TorchArtifactProbe}).
 */
final class TorchArtifact implements Artifact {
    private final ArtifactRole role;
    private final TorchModule module;
    private final List<TensorSpec> inputs;
    private final boolean releaseMemoryFirst;

    /**
     * @param releaseMemoryFirst give the C heap's freed blocks back to the system before every run
     *                           ({@link TorchOptimizer#releaseFreedMemory}): for the VAE decoder (and encoder), whose
     *                           activations at full size set the process's peak RSS right after the UNet's have been
     *                           freed
     */
    TorchArtifact(ArtifactRole role, TorchModule module, List<TensorSpec> inputs, boolean releaseMemoryFirst) {
        this.role = role;
        this.module = module;
        this.inputs = List.copyOf(inputs);
        this.releaseMemoryFirst = releaseMemoryFirst;
    }

    boolean releaseMemoryFirst() {
        return releaseMemoryFirst;
    }

    TorchModule module() {
        return module;
    }

    @Override
    public ArtifactRole role() {
        return role;
    }

    @Override
    public Path file() {
        return module.file();
    }

    @Override
    public String device() {
        return "cpu";
    }

    @Override
    public List<TensorSpec> inputs() {
        return inputs;
    }

    /** {@return the names of {@link #inputs()}: the probe names a TorchScript module's arguments by its contract} */
    @Override
    public List<String> contract() {
        return inputs.stream().map(TensorSpec::name).toList();
    }

    @Override
    public List<TensorSpec> outputs() {
        return List.of();
    }

    @Override
    public Invocation open(long[]... inputShapes) {
        if (!module.isOpen()) {
            throw new IllegalStateException(role() + " (" + file() + ") is closed");
        }
        return new TorchInvocation(this, inputShapes);
    }

    @Override
    public void close() {
        module.close();
    }

    @Override
    public String toString() {
        return role() + "@cpu" + inputs;
    }
}
