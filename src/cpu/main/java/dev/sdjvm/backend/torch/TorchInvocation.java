package dev.sdjvm.backend.torch;

import dev.sdjvm.backend.Invocation;
import dev.sdjvm.backend.TensorSpec;
import dev.sdjvm.errors.BackendException;
import dev.sdjvm.model.DType;
import dev.sdjvm.tensor.Bf16;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import org.bytedeco.javacpp.FloatPointer;
import org.bytedeco.javacpp.IntPointer;
import org.bytedeco.javacpp.LongPointer;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.javacpp.ShortPointer;
import org.bytedeco.pytorch.Tensor;

/**
 * Native input tensors of one {@link TorchArtifact}, allocated once and written in place (float32 as is, bf16 converted
 * in Java exactly as torch's {@code .to(torch.bfloat16)}, float16 through a float32 tensor cast in libtorch at run
 * time); the outputs of each run are copied to Java arrays reused from run to run, inside a {@link PointerScope} that
 * frees libtorch's output tensors at once.
 */
final class TorchInvocation implements Invocation {
    private final TorchArtifact artifact;
    private final Tensor[] inputs;
    private final DType[] dtypes;
    private final long[] numel;
    private final FloatPointer[] floats;
    private final ShortPointer[] halves;
    private final LongPointer[] longs;
    private final IntPointer[] ints;
    private final short[] scratch;
    private List<TensorSpec> outputSpecs = List.of();
    private float[][] outputs = new float[0][];
    private boolean closed;

    TorchInvocation(TorchArtifact artifact, long[][] shapes) {
        this.artifact = artifact;
        List<TensorSpec> specs = artifact.inputs();
        if (shapes.length != specs.size()) {
            throw new IllegalArgumentException(artifact.role() + " takes " + specs.size() + " inputs, got " + shapes.length + " shapes");
        }
        int n = shapes.length;
        inputs = new Tensor[n];
        dtypes = new DType[n];
        numel = new long[n];
        floats = new FloatPointer[n];
        halves = new ShortPointer[n];
        longs = new LongPointer[n];
        ints = new IntPointer[n];
        long maxHalf = 0;
        try (PointerScope scope = new PointerScope()) {
            for (int i = 0; i < n; i++) {
                TensorSpec s = specs.get(i);
                if (!s.accepts(shapes[i])) {
                    throw new IllegalArgumentException(artifact.role() + " input " + s + " does not accept shape "
                            + Arrays.toString(shapes[i]));
                }
                DType d = s.dtype() == null ? DType.FLOAT32 : s.dtype();
                dtypes[i] = d;
                // float16 inputs are written as float32 and cast by libtorch in run()
                Tensor t = Tensors.empty(d == DType.FLOAT16 ? DType.FLOAT32 : d, shapes[i]);
                t.retainReference();  // outlives the scope: released in close()
                inputs[i] = t;
                numel[i] = t.numel();
                switch (d) {
                    case BFLOAT16 -> {
                        halves[i] = new ShortPointer(t.data_ptr());
                        maxHalf = Math.max(maxHalf, numel[i]);
                    }
                    case INT64 -> longs[i] = new LongPointer(t.data_ptr());
                    case INT32 -> ints[i] = new IntPointer(t.data_ptr());
                    default -> floats[i] = new FloatPointer(t.data_ptr());
                }
            }
        } catch (RuntimeException e) {
            release();
            throw e;
        }
        scratch = new short[Math.toIntExact(maxHalf)];
    }

    @Override
    public void write(int input, long at, float[] src, int off, int len) {
        check(input, at, len);
        switch (dtypes[input]) {
            case BFLOAT16 -> {
                Bf16.fromFloat(src, off, scratch, 0, len);
                halves[input].position(at).put(scratch, 0, len).position(0);
            }
            case FLOAT32, FLOAT16 -> floats[input].position(at).put(src, off, len).position(0);
            default -> throw new IllegalArgumentException(artifact.role() + " input " + input + " is "
                    + dtypes[input].manifestName() + ", not a floating-point input");
        }
    }

    @Override
    public void write(int input, long at, int[] src, int off, int len) {
        check(input, at, len);
        switch (dtypes[input]) {
            case INT64 -> {
                LongPointer p = longs[input];
                for (int i = 0; i < len; i++) {
                    p.put(at + i, src[off + i]);
                }
            }
            case INT32 -> ints[input].position(at).put(src, off, len).position(0);
            default -> throw new IllegalArgumentException(artifact.role() + " input " + input + " is "
                    + dtypes[input].manifestName() + ", not an integer input");
        }
    }

    private void check(int input, long at, int len) {
        if (closed) {
            throw new IllegalStateException("invocation of " + artifact.role() + " is closed");
        }
        if (at < 0 || len < 0 || at + len > numel[input]) {
            throw new IndexOutOfBoundsException(artifact.role() + " input " + input + ": elements [" + at + ", "
                    + (at + len) + ") outside [0, " + numel[input] + ")");
        }
    }

    @Override
    public void run() {
        if (closed) {
            throw new IllegalStateException("invocation of " + artifact.role() + " is closed");
        }
        if (artifact.releaseMemoryFirst()) {
            TorchOptimizer.releaseFreedMemory();
        }
        try (PointerScope step = new PointerScope()) {
            Tensor[] args = inputs;
            for (int i = 0; i < args.length; i++) {
                if (dtypes[i] == DType.FLOAT16) {
                    args = args == inputs ? inputs.clone() : args;
                    args[i] = Tensors.to(inputs[i], DType.FLOAT16);
                }
            }
            List<Map.Entry<String, Tensor>> outs = artifact.module().forwardOutputs(args);
            if (outs.size() != outputs.length) {
                outputs = new float[outs.size()][];
            }
            List<TensorSpec> specs = new ArrayList<>(outs.size());
            for (int k = 0; k < outs.size(); k++) {
                Tensor t = outs.get(k).getValue();
                long n = t.numel();
                if (n > Integer.MAX_VALUE) {
                    throw new BackendException(artifact.role() + " output " + outs.get(k).getKey() + " has " + n
                            + " elements, more than a Java array holds");
                }
                if (outputs[k] == null || outputs[k].length != n) {
                    outputs[k] = new float[(int) n];
                }
                Tensors.copyTo(t, outputs[k], 0);
                specs.add(new TensorSpec(outs.get(k).getKey(), TorchModule.toDType(t.scalar_type()), Tensors.shape(t)));
            }
            outputSpecs = specs;
        }
    }

    @Override
    public List<TensorSpec> outputs() {
        return outputSpecs;
    }

    @Override
    public void read(int output, float[] dst, int off) {
        float[] o = outputs[output];
        System.arraycopy(o, 0, dst, off, o.length);
    }

    @Override
    public void close() {
        if (!closed) {
            closed = true;
            release();
        }
    }

    private void release() {
        for (Tensor t : inputs) {
            if (t != null) {
                t.releaseReference();
            }
        }
    }
}
