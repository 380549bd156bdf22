package dev.sdjvm.backend.neuron;

import com.sun.jna.Memory;
import com.sun.jna.Pointer;
import com.sun.jna.ptr.PointerByReference;
import dev.sdjvm.backend.Invocation;
import dev.sdjvm.backend.TensorSpec;
import dev.sdjvm.model.DType;
import dev.sdjvm.tensor.Bf16;
import dev.sdjvm.tensor.Fp16;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.FloatBuffer;
import java.nio.IntBuffer;
import java.nio.ShortBuffer;
import java.util.ArrayList;
import java.util.List;

/**
 * The device tensors of one caller of a {@link NeffArtifact}: one {@code NRT_TENSOR_PLACEMENT_DEVICE} tensor per NEFF
 * input and output on the artifact's core, an input and an output tensor set naming them as the NEFF does, and a host
 * staging buffer per tensor (little-endian, the tensor's dtype). All allocated once, when opened.
 *
 * <p>{@link #write} converts into the staging buffer and marks the written range; {@link #run} copies the marked
 * ranges to the device ({@code nrt_tensor_write}), executes ({@code nrt_execute}) and marks the outputs stale;
 * {@link #read} fetches an output ({@code nrt_tensor_read}) once per run and converts it to float32. So text
 * embeddings written once per generation are copied once, and a step moves only the sample and the timestep in and the
 * noise prediction out.
 */
final class NeffInvocation implements Invocation {
    private final NeffArtifact artifact;
    private final NeuronRuntime.Nrt nrt;
    private final Tensor[] inputs;
    private final Tensor[] outputs;
    private final List<TensorSpec> outputSpecs;
    private final short[] halves;
    private Pointer inputSet;
    private Pointer outputSet;
    private boolean closed;

    /** One device tensor and its host staging buffer. */
    private static final class Tensor {
        final NrtTensorInfo info;
        Pointer device;
        final Memory host;
        final ByteBuffer bytes;
        final FloatBuffer floats;
        final ShortBuffer shorts;
        final IntBuffer ints;
        long dirtyFrom = Long.MAX_VALUE;
        long dirtyTo;
        boolean fresh;

        Tensor(NrtTensorInfo info) {
            this.info = info;
            this.host = new Memory(info.size());
            this.bytes = host.getByteBuffer(0, info.size()).order(ByteOrder.LITTLE_ENDIAN);
            this.floats = bytes.asFloatBuffer();
            this.shorts = bytes.asShortBuffer();
            this.ints = bytes.asIntBuffer();
        }

        void mark(long fromElem, long count) {
            int w = (int) (info.size() / info.numel());
            dirtyFrom = Math.min(dirtyFrom, fromElem * w);
            dirtyTo = Math.max(dirtyTo, (fromElem + count) * w);
        }
    }

    NeffInvocation(NeffArtifact artifact) {
        this.artifact = artifact;
        this.nrt = artifact.runtime().api();
        List<NrtTensorInfo> in = artifact.inputInfos();
        List<NrtTensorInfo> out = artifact.outputInfos();
        inputs = new Tensor[in.size()];
        outputs = new Tensor[out.size()];
        long maxHalf = 0;
        try {
            inputSet = allocateSet("input");
            outputSet = allocateSet("output");
            for (int i = 0; i < inputs.length; i++) {
                allocate(in.get(i), inputSet, inputs, i);
                maxHalf = Math.max(maxHalf, halfCount(in.get(i)));
            }
            for (int i = 0; i < outputs.length; i++) {
                allocate(out.get(i), outputSet, outputs, i);
                maxHalf = Math.max(maxHalf, halfCount(out.get(i)));
            }
        } catch (RuntimeException e) {
            release(e);
            throw e;
        }
        halves = new short[(int) maxHalf];
        outputSpecs = artifact.outputs();
    }

    private static long halfCount(NrtTensorInfo t) {
        return t.dtype() == DType.BFLOAT16 || t.dtype() == DType.FLOAT16 ? t.numel() : 0;
    }

    private Pointer allocateSet(String what) {
        PointerByReference ref = new PointerByReference();
        NrtStatus.check(nrt.nrt_allocate_tensor_set(ref), "nrt_allocate_tensor_set(" + artifact.role() + " " + what + "s)");
        return ref.getValue();
    }

    /** Allocates the device tensor of {@code info} into {@code group[index]} (so that a failure frees it) and names it in {@code set}. */
    private void allocate(NrtTensorInfo info, Pointer set, Tensor[] group, int index) {
        Tensor t = new Tensor(info);
        group[index] = t;
        PointerByReference ref = new PointerByReference();
        NrtStatus.check(nrt.nrt_tensor_allocate(NeuronRuntime.NRT_TENSOR_PLACEMENT_DEVICE, artifact.vnc(), info.size(),
                info.name(), ref), "nrt_tensor_allocate(" + artifact.role() + " " + info + " on nc" + artifact.vnc() + ")");
        t.device = ref.getValue();
        NrtStatus.check(nrt.nrt_add_tensor_to_tensor_set(set, info.name(), t.device),
                "nrt_add_tensor_to_tensor_set(" + artifact.role() + " " + info.name() + ")");
    }

    @Override
    public void write(int input, long at, float[] src, int off, int len) {
        var use = artifact.useLock();
        use.lock();
        try {
            writeFloats(input, at, src, off, len);
        } finally {
            use.unlock();
        }
    }

    private void writeFloats(int input, long at, float[] src, int off, int len) {
        Tensor t = checked(input, at, len);
        int i = (int) at;
        switch (t.info.dtype()) {
            case FLOAT32 -> t.floats.put(i, src, off, len);
            case BFLOAT16 -> {
                Bf16.fromFloat(src, off, halves, 0, len);
                t.shorts.put(i, halves, 0, len);
            }
            case FLOAT16 -> {
                for (int k = 0; k < len; k++) {
                    halves[k] = Fp16.fromFloat(src[off + k]);
                }
                t.shorts.put(i, halves, 0, len);
            }
            default -> throw new IllegalArgumentException(artifact.role() + " input " + t.info + " is not a floating-point tensor");
        }
        t.mark(at, len);
    }

    @Override
    public void write(int input, long at, int[] src, int off, int len) {
        var use = artifact.useLock();
        use.lock();
        try {
            writeInts(input, at, src, off, len);
        } finally {
            use.unlock();
        }
    }

    private void writeInts(int input, long at, int[] src, int off, int len) {
        Tensor t = checked(input, at, len);
        int i = (int) at;
        switch (t.info.dtype()) {
            case INT64 -> {
                for (int k = 0; k < len; k++) {
                    t.bytes.putLong((i + k) * 8, src[off + k]);
                }
            }
            case INT32 -> t.ints.put(i, src, off, len);
            default -> throw new IllegalArgumentException(artifact.role() + " input " + t.info + " is not an integer tensor");
        }
        t.mark(at, len);
    }

    private Tensor checked(int input, long at, int len) {
        if (closed) {
            throw new IllegalStateException("invocation of " + artifact.role() + " is closed");
        }
        Tensor t = inputs[input];
        if (at < 0 || len < 0 || at + len > t.info.numel()) {
            throw new IndexOutOfBoundsException(artifact.role() + " input " + t.info + ": elements [" + at + ", "
                    + (at + len) + ") outside [0, " + t.info.numel() + ")");
        }
        return t;
    }

    @Override
    public void run() {
        var use = artifact.useLock();
        use.lock();
        try {
            runLocked();
        } finally {
            use.unlock();
        }
    }

    private void runLocked() {
        if (closed) {
            throw new IllegalStateException("invocation of " + artifact.role() + " is closed");
        }
        Pointer model = artifact.model();
        for (Tensor t : inputs) {
            if (t.dirtyTo > t.dirtyFrom) {
                long from = t.dirtyFrom;
                Pointer buf = from == 0 ? t.host : t.host.share(from);
                NrtStatus.check(nrt.nrt_tensor_write(t.device, buf, from, t.dirtyTo - from), "nrt_tensor_write");
                t.dirtyFrom = Long.MAX_VALUE;
                t.dirtyTo = 0;
            }
        }
        for (Tensor t : outputs) {
            t.fresh = false;
        }
        NrtStatus.check(nrt.nrt_execute(model, inputSet, outputSet), "nrt_execute(" + artifact.role() + " on nc"
                + artifact.vnc() + ")");
    }

    @Override
    public List<TensorSpec> outputs() {
        return outputSpecs;
    }

    @Override
    public void read(int output, float[] dst, int off) {
        var use = artifact.useLock();
        use.lock();
        try {
            readLocked(output, dst, off);
        } finally {
            use.unlock();
        }
    }

    private void readLocked(int output, float[] dst, int off) {
        if (closed) {
            throw new IllegalStateException("invocation of " + artifact.role() + " is closed");
        }
        Tensor t = outputs[output];
        if (!t.fresh) {
            NrtStatus.check(nrt.nrt_tensor_read(t.device, t.host, 0, t.info.size()), "nrt_tensor_read");
            t.fresh = true;
        }
        int n = (int) t.info.numel();
        switch (t.info.dtype()) {
            case FLOAT32 -> t.floats.get(0, dst, off, n);
            case BFLOAT16 -> {
                t.shorts.get(0, halves, 0, n);
                Bf16.toFloat(halves, 0, dst, off, n);
            }
            case FLOAT16 -> {
                t.shorts.get(0, halves, 0, n);
                for (int k = 0; k < n; k++) {
                    dst[off + k] = Fp16.toFloat(halves[k]);
                }
            }
            case INT64 -> {
                for (int k = 0; k < n; k++) {
                    dst[off + k] = t.bytes.getLong(k * 8);
                }
            }
            case INT32 -> {
                for (int k = 0; k < n; k++) {
                    dst[off + k] = t.bytes.getInt(k * 4);
                }
            }
        }
    }

    @Override
    public void close() {
        var exclusive = artifact.closeLock();  // waits for running writes, executes and reads of the model
        exclusive.lock();
        try {
            if (closed) {
                return;
            }
            closed = true;
            release(null);
            artifact.closed(this);
        } finally {
            exclusive.unlock();
        }
    }

    /** Frees the tensor sets, the device tensors and the staging buffers allocated so far. */
    private void release(RuntimeException cause) {
        List<Pointer> sets = new ArrayList<>();
        if (inputSet != null) {
            sets.add(inputSet);
        }
        if (outputSet != null) {
            sets.add(outputSet);
        }
        for (Pointer s : sets) {
            nrt.nrt_destroy_tensor_set(new PointerByReference(s));
        }
        inputSet = null;
        outputSet = null;
        for (Tensor[] group : new Tensor[][] {inputs, outputs}) {
            for (int i = 0; i < group.length; i++) {
                Tensor t = group[i];
                if (t != null) {
                    if (t.device != null) {
                        nrt.nrt_tensor_free(new PointerByReference(t.device));
                    }
                    t.host.close();
                    group[i] = null;
                }
            }
        }
    }
}
