package dev.sdjvm.backend;

import dev.sdjvm.model.DType;
import java.util.Arrays;

/**
 * One input or output of an artifact.
 *
 * @param name  the name the artifact uses ({@code input0}, {@code sample}, {@code last_hidden_state}, ...)
 * @param dtype element type, or null when not known before running
 * @param shape dimensions, or null when not known before running; a dimension of -1 is dynamic (any size)
 */
public record TensorSpec(String name, DType dtype, long[] shape) {
    public TensorSpec {
        shape = shape == null ? null : shape.clone();
    }

    @Override
    public long[] shape() {
        return shape == null ? null : shape.clone();
    }

    /** Number of dimensions, or -1 when the shape is unknown. */
    public int rank() {
        return shape == null ? -1 : shape.length;
    }

    /** Dimension {@code i} (-1 = dynamic). */
    public long dim(int i) {
        return shape[i];
    }

    /** Elements, or -1 when the shape is unknown or dynamic. */
    public long numel() {
        if (shape == null) {
            return -1;
        }
        long n = 1;
        for (long d : shape) {
            if (d < 0) {
                return -1;
            }
            n *= d;
        }
        return n;
    }

    /** True when {@code other} has this shape (dynamic dimensions of this spec match anything). */
    public boolean accepts(long[] other) {
        if (shape == null) {
            return true;
        }
        if (other == null || other.length != shape.length) {
            return false;
        }
        for (int i = 0; i < shape.length; i++) {
            if (shape[i] >= 0 && shape[i] != other[i]) {
                return false;
            }
        }
        return true;
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof TensorSpec t && java.util.Objects.equals(name, t.name) && dtype == t.dtype
                && Arrays.equals(shape, t.shape);
    }

    @Override
    public int hashCode() {
        return java.util.Objects.hash(name, dtype, Arrays.hashCode(shape));
    }

    /**
     * A short summary of inputs or outputs for a log line: {@code sample float32[2,4,64,64], timestep float32[1]}
     * ({@code ?} for what is not known before running, {@code -1} for a dynamic dimension).
     *
     * @param specs the tensors
     * @return one line
     */
    public static String summary(java.util.List<TensorSpec> specs) {
        StringBuilder sb = new StringBuilder();
        for (TensorSpec t : specs) {
            if (sb.length() > 0) {
                sb.append(", ");
            }
            sb.append(t.name).append(' ').append(t.dtype == null ? "?" : t.dtype.manifestName()).append('[');
            if (t.shape == null) {
                sb.append('?');
            } else {
                for (int i = 0; i < t.shape.length; i++) {
                    sb.append(i > 0 ? "," : "").append(t.shape[i]);
                }
            }
            sb.append(']');
        }
        return sb.toString();
    }

    @Override
    public String toString() {
        return name + ":" + (dtype == null ? "?" : dtype.manifestName()) + (shape == null ? "[?]" : Arrays.toString(shape));
    }
}
