package dev.sdjvm.backend.neuron;

import com.sun.jna.Pointer;
import com.sun.jna.ptr.PointerByReference;
import dev.sdjvm.backend.Artifact;
import dev.sdjvm.backend.Invocation;
import dev.sdjvm.backend.TensorSpec;
import dev.sdjvm.errors.BackendException;
import dev.sdjvm.model.ArtifactRole;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;

/**
 * A NEFF loaded on one NeuronCore ({@code nrt_load}), with its tensors from {@code nrt_get_model_tensor_info}.
 * {@link #open} allocates an invocation's device tensors and tensor sets on that core; {@link #close} closes the
 * invocations still open and unloads the model ({@code nrt_unload}).
 */
final class NeffArtifact implements Artifact {
    private static final org.slf4j.Logger LOG = org.slf4j.LoggerFactory.getLogger(NeffArtifact.class);
    private final NeuronRuntime runtime;
    private final ArtifactRole role;
    private final List<String> contract;
    private final Path file;
    private final int vnc;
    private final java.util.concurrent.locks.ReentrantReadWriteLock uses = new java.util.concurrent.locks.ReentrantReadWriteLock();
    private final List<NrtTensorInfo> inputs;
    private final List<NrtTensorInfo> outputs;
    private final List<TensorSpec> inputSpecs;
    private final List<TensorSpec> outputSpecs;
    private final Set<NeffInvocation> open = ConcurrentHashMap.newKeySet();
    private volatile Pointer model;

    private NeffArtifact(NeuronRuntime runtime, ArtifactRole role, List<String> contract, Path file, int vnc, Pointer model,
                         List<NrtTensorInfo> tensors) {
        this.runtime = runtime;
        this.role = role;
        this.contract = List.copyOf(contract);
        this.file = file;
        this.vnc = vnc;
        this.model = model;
        this.inputs = NrtTensorInfo.ordered(tensors, true);
        this.outputs = NrtTensorInfo.ordered(tensors, false);
        this.inputSpecs = inputs.stream().map(NrtTensorInfo::spec).toList();
        this.outputSpecs = outputs.stream().map(NrtTensorInfo::spec).toList();
    }

    /**
     * {@code nrt_load}s a NEFF onto core {@code vnc} and reads its tensors; its contract is the role's
     * {@link ArtifactRole#inputs()} (an SD UNet's).
     *
     * @param neff the NEFF bytes in native memory ({@link NeffLocator.NeffSource#load()})
     */
    static NeffArtifact load(NeuronRuntime runtime, Pointer neff, long size, int vnc, ArtifactRole role, Path file) {
        return load(runtime, neff, size, vnc, role, role.inputs(), file, null);
    }

    /**
     * As {@link #load(NeuronRuntime, Pointer, long, int, ArtifactRole, Path)}, with the model's contract for the role,
     * taking the shapes and dtypes the runtime does not report from the manifest's entry for the artifact
     * ({@link NrtTensorInfo#complete}).
     *
     * @param contract the names of the inputs in argument order ({@link ArtifactRole#inputs(dev.sdjvm.model.UNetSignature)})
     * @param expected the manifest's entry for this artifact, or null
     */
    static NeffArtifact load(NeuronRuntime runtime, Pointer neff, long size, int vnc, ArtifactRole role,
                             List<String> contract, Path file, dev.sdjvm.model.Manifest.Artifact expected) {
        NeuronRuntime.Nrt nrt = runtime.api();
        NeuronRuntime.Version version = runtime.versionOrNull();
        boolean current = version == null || version.sdk228OrLater();
        PointerByReference ref = new PointerByReference();
        // vnc_count -1: "always use -1" in the SDK 2.28 header (the argument is deprecated there), "-1 lets the runtime
        // decide" in the older ones: every runtime accepts it, so a NEFF the runtime rejects is reported at once (a
        // retry with a count would reload a 1.7 GB UNet to fail the same way)
        int status = nrt.nrt_load(neff, size, vnc, -1, ref);
        NrtStatus.check(status, "nrt_load(" + role + " on nc" + vnc + ")");
        Pointer model = ref.getValue();
        try {
            PointerByReference info = new PointerByReference();
            NrtStatus.check(nrt.nrt_get_model_tensor_info(model, info), "nrt_get_model_tensor_info(" + role + ")");
            List<NrtTensorInfo> tensors;
            try {
                tensors = NrtTensorInfo.complete(NrtTensorInfo.read(info.getValue(), current), expected,
                        "the " + role + " NEFF", current);
            } catch (IllegalStateException e) {
                throw new BackendException(role + ": nrt_get_model_tensor_info returned an unusable description: " + e.getMessage(), e);
            } finally {
                nrt.nrt_free_model_tensor_info(info.getValue());
            }
            for (NrtTensorInfo t : tensors) {
                if (t.dtype() == null) {
                    throw new BackendException(role + ": NEFF tensor " + t + " has " + (t.size() / t.numel())
                            + "-byte elements; the pipeline passes float32/bfloat16/float16 and int64/int32 tensors");
                }
                if (t.size() > Integer.MAX_VALUE) {
                    throw new BackendException(role + ": NEFF tensor " + t + " is larger than 2 GiB");
                }
            }
            return new NeffArtifact(runtime, role, contract, file, vnc, model, tensors);
        } catch (RuntimeException e) {
            NrtStatus.check(nrt.nrt_unload(model), "nrt_unload(" + role + ")", e);
            throw e;
        }
    }

    NeuronRuntime runtime() {
        return runtime;
    }

    int vnc() {
        return vnc;
    }

    Pointer model() {
        Pointer m = model;
        if (m == null) {
            throw new IllegalStateException(role + " (" + file + ") is unloaded");
        }
        return m;
    }

    List<NrtTensorInfo> inputInfos() {
        return inputs;
    }

    List<NrtTensorInfo> outputInfos() {
        return outputs;
    }

    @Override
    public ArtifactRole role() {
        return role;
    }

    @Override
    public List<String> contract() {
        return contract;
    }

    @Override
    public Path file() {
        return file;
    }

    @Override
    public String device() {
        return "nc" + vnc;
    }

    @Override
    public List<TensorSpec> inputs() {
        return inputSpecs;
    }

    @Override
    public List<TensorSpec> outputs() {
        return outputSpecs;
    }

    @Override
    public Invocation open(long[]... inputShapes) {
        if (inputShapes.length != inputs.size()) {
            throw new IllegalArgumentException(role + " takes " + inputs.size() + " inputs " + inputs + ", got "
                    + inputShapes.length + " shapes");
        }
        for (int i = 0; i < inputShapes.length; i++) {
            if (!Arrays.equals(inputShapes[i], inputs.get(i).shape())) {
                throw new IllegalArgumentException(role + " is compiled for input " + inputs.get(i) + ", not "
                        + Arrays.toString(inputShapes[i]));
            }
        }
        model();
        NeffInvocation inv = new NeffInvocation(this);
        open.add(inv);
        return inv;
    }

    void closed(NeffInvocation inv) {
        open.remove(inv);
    }

    /**
     * The lock every use of the loaded model holds (writes to its host tensors, {@code nrt_execute}, reads): shared
     * among users, taken exclusively by {@link #close}, so that nothing is freed under a running call.
     */
    java.util.concurrent.locks.Lock useLock() {
        return uses.readLock();
    }

    /** The exclusive side of {@link #useLock}: held while an invocation's tensors are freed. */
    java.util.concurrent.locks.Lock closeLock() {
        return uses.writeLock();
    }

    /**
     * Waits for running calls ({@link #useLock}), then frees the invocations' tensors and unloads the model. Any later
     * use throws {@link IllegalStateException}. Idempotent.
     */
    @Override
    public void close() {
        uses.writeLock().lock();
        try {
            Pointer m = model;
            if (m == null) {
                return;
            }
            for (NeffInvocation inv : new ArrayList<>(open)) {
                inv.close();
            }
            model = null;
            NrtStatus.check(runtime.api().nrt_unload(m), "nrt_unload(" + role + ")");
        } finally {
            uses.writeLock().unlock();
        }
    }

    @Override
    public String toString() {
        return role + "@nc" + vnc + " in " + inputs + " out " + outputs;
    }
}
