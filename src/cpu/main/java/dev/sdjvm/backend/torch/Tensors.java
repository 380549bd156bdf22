package dev.sdjvm.backend.torch;

import dev.sdjvm.model.DType;
import org.bytedeco.javacpp.FloatPointer;
import org.bytedeco.javacpp.LongPointer;
import org.bytedeco.pytorch.Generator;
import org.bytedeco.pytorch.GeneratorOptional;
import org.bytedeco.pytorch.MemoryFormatOptional;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorOptions;
import org.bytedeco.pytorch.global.torch;

/** Small helpers between Java arrays and libtorch CPU tensors. Every tensor returned belongs to the caller's PointerScope. */
public final class Tensors {
    private Tensors() {
    }

    /** An uninitialised contiguous CPU tensor. */
    public static Tensor empty(DType dtype, long... shape) {
        Torch.load();
        return torch.empty(shape, new TensorOptions(TorchModule.toScalarType(dtype)), new MemoryFormatOptional());
    }

    /** A float32 tensor holding a copy of {@code data[offset, offset+numel)}. */
    public static Tensor fromFloats(float[] data, int offset, long... shape) {
        Tensor t = empty(DType.FLOAT32, shape);
        long n = t.numel();
        new FloatPointer(t.data_ptr()).put(data, offset, Math.toIntExact(n));
        return t;
    }

    /** An int64 tensor of the given ints. */
    public static Tensor fromIntsAsLong(int[] data, long... shape) {
        Tensor t = empty(DType.INT64, shape);
        LongPointer p = new LongPointer(t.data_ptr());
        for (int i = 0; i < data.length; i++) {
            p.put(i, data[i]);
        }
        return t;
    }

    /** Casts to {@code dtype} unless it already is (returns the same tensor then). */
    public static Tensor to(Tensor t, DType dtype) {
        torch.ScalarType st = TorchModule.toScalarType(dtype);
        return TorchModule.same(t.scalar_type(), st) ? t : t.to(st);
    }

    /** Copies a tensor's values, as float32, into {@code out[offset...]}; returns the number of elements. */
    public static int copyTo(Tensor t, float[] out, int offset) {
        Tensor f = to(t, DType.FLOAT32).contiguous();
        int n = Math.toIntExact(f.numel());
        f.data_ptr_float().get(out, offset, n);
        return n;
    }

    /** The shape as a Java array. */
    public static long[] shape(Tensor t) {
        return t.sizes().vec().get();
    }

    /**
     * {@code torch.randn(shape, generator=g, dtype=float32)}, bit-identical to Python's with
     * {@code torch.Generator().manual_seed(seed)} (verified against torch 1.13 in the tests).
     */
    public static float[] randn(Generator g, long... shape) {
        long n = 1;
        for (long d : shape) {
            n *= d;
        }
        float[] out = new float[Math.toIntExact(n)];
        randn(g, out);  // torch.randn's values depend only on numel, not on the shape
        return out;
    }

    /** Fills {@code out} with {@code torch.randn(out.length, generator=g)}, continuing the generator's state. */
    public static void randn(Generator g, float[] out) {
        Tensor t = torch.randn(new long[] {out.length}, new GeneratorOptional(g), new TensorOptions(torch.ScalarType.Float));
        copyTo(t, out, 0);
    }

    /** A CPU generator seeded as {@code torch.Generator().manual_seed(seed)}. */
    /** A tensor of seeded standard-normal values in the given dtype (drawn in float32). */
    public static Tensor normal(long seed, DType dtype, long... shape) {
        Tensor t = torch.randn(shape, new org.bytedeco.pytorch.GeneratorOptional(torch.createCPUGenerator(seed)),
                new org.bytedeco.pytorch.TensorOptions(torch.ScalarType.Float));
        return dtype == DType.FLOAT32 ? t : to(t, dtype);
    }

    public static Generator generator(long seed) {
        Torch.load();
        return torch.createCPUGenerator(seed);
    }

    /** Human-readable shape, e.g. {@code [1, 4, 64, 64]}. */
    public static String shapeString(Tensor t) {
        return java.util.Arrays.toString(shape(t));
    }
}
