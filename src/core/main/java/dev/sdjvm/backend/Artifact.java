package dev.sdjvm.backend;

import dev.sdjvm.model.ArtifactRole;
import java.nio.file.Path;
import java.util.List;

/**
 * One loaded artifact on one device: "run this artifact". The pipeline's only view of a compiled graph; implemented
 * by libtorch for TorchScript ({@code backend.torch}) and by the Neuron runtime for NEFFs ({@code backend.neuron}).
 *
 * <p>An artifact is thread-safe: several {@link Invocation}s may run at once. It owns its native resources; {@link
 * #close} frees them (idempotent) after the open invocations are closed.
 */
public interface Artifact extends AutoCloseable {
    /** {@return the part of the model this artifact is} */
    ArtifactRole role();

    /** The file the artifact was loaded from (the {@code .pt}, or the {@code .neff} found for it). */
    Path file();

    /** Where it runs, e.g. {@code cpu} or {@code nc1} (NeuronCore 1). */
    String device();

    /**
     * The inputs, in argument order. Compiled artifacts (NEFF) know names ({@code input0, ...}), dtypes and static
     * shapes; a TorchScript artifact has its role's input names and knows what its manifest or parameters say (dtype
     * and batch; -1 for dynamic dimensions). Find one with {@link TensorBinding#input}.
     */
    List<TensorSpec> inputs();

    /**
     * The names of the inputs in argument order, as the model's pipeline calls the artifact: its role's contract for
     * this model ({@link ArtifactRole#inputs(dev.sdjvm.model.UNetSignature)}). {@link TensorBinding#input} finds an
     * input by these names, or by their positions.
     */
    List<String> contract();

    /** The outputs when known before running (NEFF); empty otherwise (they are known after {@link Invocation#run}). */
    List<TensorSpec> outputs();

    /**
     * Opens input/output buffers for one caller. Compiled artifacts accept only their static shapes.
     *
     * @param inputShapes one shape per input
     */
    Invocation open(long[]... inputShapes);

    /** Frees the artifact; idempotent. */
    @Override
    void close();
}
