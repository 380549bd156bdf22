package dev.sdjvm.backend.neuron;

import com.sun.jna.Pointer;
import dev.sdjvm.backend.TensorSpec;
import dev.sdjvm.model.DType;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * One entry of {@code nrt_get_model_tensor_info} (the experimental {@code nrt_tensor_info_t}: name[256], usage, size,
 * dtype, shape*, ndim) with the element type resolved.
 *
 * <p>The runtime's {@code nrt_dtype_t} was renumbered in Neuron SDK 2.28 (libnrt 2.30), and both numberings are in
 * use, so the type is never read from the dtype code alone: the element width is {@code size / numel}, and the code
 * only tells 2-byte floats apart (bf16 is 3 before 2.28 and 6 after; fp16 is 2 before and 7 after). Tensors are bound
 * to their role's contract by name ({@code input<k>} / {@code output<k>} = the k-th argument, see
 * {@link dev.sdjvm.backend.TensorBinding}), never by dtype.
 *
 * @param name   the NEFF's tensor name ({@code input0}, {@code output0}, ...)
 * @param input  usage {@code NRT_TENSOR_USAGE_INPUT}
 * @param size   bytes
 * @param code   the runtime's raw dtype code
 * @param shape  dimensions
 * @param dtype  the resolved element type, or null for widths the pipeline does not use (1 byte)
 */
record NrtTensorInfo(String name, boolean input, long size, int code, long[] shape, DType dtype) {
    private static final Pattern INDEXED = Pattern.compile("(?:input|output)(\\d+)");

    /** False when the runtime reported no shape (see {@link #complete}). */
    boolean known() {
        return shape != null;
    }

    long numel() {
        long n = 1;
        for (long d : shape) {
            n *= d;
        }
        return n;
    }

    TensorSpec spec() {
        return new TensorSpec(name, dtype, shape);
    }

    @Override
    public String toString() {
        return name + ":" + (dtype == null ? "dtype" + code : dtype.manifestName())
                + (shape == null ? "[shape not reported]" : Arrays.toString(shape)) + " (" + size + " B)";
    }

    /**
     * Fills in the tensors the runtime described without a shape (libnrt reports none when a NEFF's debug info is
     * stripped, and not every dtype): the k-th input (output) in argument order takes the k-th input (output) of the
     * artifact's manifest entry, its shape and dtype, after checking that their byte sizes agree. Tensors with a
     * shape are returned as they are. Without a manifest, a shape-less tensor of at most 8 bytes is taken as a
     * scalar (a 0-dimensional tensor also has no dimensions to report).
     *
     * @param all      the runtime's description
     * @param expected the manifest's entry for this artifact, or null
     * @param what     the artifact, for messages
     * @throws IllegalStateException naming the tensor when a shape is missing and there is nothing to take it from,
     *                               or when the manifest's size disagrees with the runtime's
     */
    static List<NrtTensorInfo> complete(List<NrtTensorInfo> all, dev.sdjvm.model.Manifest.Artifact expected, String what,
                                        boolean newNumbering) {
        if (all.stream().allMatch(NrtTensorInfo::known)) {
            return all;
        }
        List<NrtTensorInfo> out = new ArrayList<>();
        for (boolean inputs : new boolean[] {true, false}) {
            List<NrtTensorInfo> got = ordered(all, inputs);
            List<dev.sdjvm.model.Manifest.TensorSpec> want = expected == null ? null
                    : inputs ? expected.inputs() : expected.outputs();
            for (int k = 0; k < got.size(); k++) {
                NrtTensorInfo t = got.get(k);
                if (t.known()) {
                    out.add(t);
                    continue;
                }
                if ((want == null || want.isEmpty()) && t.size() <= 8) {
                    out.add(of(t.name(), t.input(), t.size(), t.code(), new long[0], newNumbering));  // a scalar
                    continue;
                }
                if (want == null || want.isEmpty()) {
                    throw new IllegalStateException("the runtime reports no shape for " + (inputs ? "input " : "output ")
                            + t.name() + " (" + t.size() + " bytes; a NEFF compiled without debug information?) and the "
                            + "model has no compiled_models/sdjvm-manifest.json listing " + what + "'s tensors to take "
                            + "it from: write one with tools/model/neuron_compile_sd21.py, or recompile keeping the "
                            + "NEFF's tensor shapes");
                }
                if (want.size() != got.size()) {
                    throw new IllegalStateException("the manifest lists " + want.size() + (inputs ? " inputs" : " outputs")
                            + " for " + what + ", the NEFF has " + got.size() + " (" + got + ")");
                }
                var m = want.get(k);
                long[] shape = m.shape().stream().mapToLong(Long::longValue).toArray();
                long n = 1;
                for (long d : shape) {
                    n *= d;
                }
                long bytes = n * m.dtype().bytes();
                if (bytes != t.size()) {
                    throw new IllegalStateException((inputs ? "input " : "output ") + t.name() + " of " + what
                            + " has " + t.size() + " bytes, but the manifest's " + m.name() + " " + m.dtype().manifestName()
                            + Arrays.toString(shape) + " is " + bytes + " bytes: the manifest is not this NEFF's");
                }
                out.add(new NrtTensorInfo(t.name(), t.input(), t.size(), t.code(), shape, m.dtype()));
            }
        }
        return out;
    }

    /** Reads a {@code nrt_tensor_info_array_t}: tensor_count (uint64) then the entries. */
    static List<NrtTensorInfo> read(Pointer array, boolean newNumbering) {
        long count = array.getLong(0);
        if (count < 0 || count > 4096) {
            throw new IllegalStateException("nrt_get_model_tensor_info reported " + count + " tensors");
        }
        List<NrtTensorInfo> out = new ArrayList<>();
        for (int i = 0; i < count; i++) {
            long base = 8 + (long) i * NeuronRuntime.TENSOR_INFO_SIZE;
            byte[] nameBytes = array.getByteArray(base, 256);
            String name = NeuronRuntime.cString(nameBytes);
            int usage = array.getInt(base + 256);
            long size = array.getLong(base + 264);
            int code = array.getInt(base + 272);
            Pointer shapePtr = array.getPointer(base + 280);
            int ndim = array.getInt(base + 288);
            if (ndim < 0 || ndim > 16 || ndim > 0 && shapePtr == null) {
                throw new IllegalStateException("tensor " + name + ": ndim " + ndim + ", shape " + shapePtr);
            }
            if (ndim == 0) {
                // no shape: a NEFF whose debug info was stripped; the shape (and dtype) come from the model's metadata
                // (complete), never from a guess
                out.add(new NrtTensorInfo(name, usage == 0, size, code, null, null));
                continue;
            }
            long[] shape = new long[ndim];
            for (int d = 0; d < ndim; d++) {
                shape[d] = Integer.toUnsignedLong(shapePtr.getInt(4L * d));
            }
            out.add(of(name, usage == 0, size, code, shape, newNumbering));
        }
        return out;
    }

    static NrtTensorInfo of(String name, boolean input, long size, int code, long[] shape, boolean newNumbering) {
        long n = 1;
        for (long d : shape) {
            n *= d;
        }
        if (n <= 0 || size <= 0 || size % n != 0) {
            throw new IllegalStateException("tensor " + name + ": " + size + " bytes do not fit shape " + Arrays.toString(shape));
        }
        long width = size / n;
        return new NrtTensorInfo(name, input, size, code, shape, resolve(width, code, newNumbering));
    }

    /** The element type from its width and the dtype code (see the class comment). */
    static DType resolve(long width, int code, boolean newNumbering) {
        switch ((int) width) {
            case 8:
                return DType.INT64;  // no 8-byte float in either numbering
            case 4:
                return code == 8 || code == 9 ? DType.INT32 : DType.FLOAT32;  // int32/uint32 are 8/9 in both
            case 2: {
                // new numbering: 6 bf16, 7 fp16; old: 3 bf16, 2 fp16 (and 6/7 are int16/uint16, not floats)
                boolean bf16 = newNumbering ? code == 6 : code == 3;
                boolean fp16 = newNumbering ? code == 7 : code == 2;
                if (!bf16 && !fp16) {  // a code of the other numbering: trust what it can only mean for a 2-byte float
                    bf16 = code == 3 || code == 6;
                    fp16 = code == 2 || code == 7;
                }
                return fp16 && !bf16 ? DType.FLOAT16 : DType.BFLOAT16;  // AWS compiles SD in bf16
            }
            default:
                return null;
        }
    }

    /**
     * Inputs or outputs in argument order: torch-neuronx names them {@code input0, input1, ...} / {@code output0, ...};
     * when every name has that form they are sorted by the number, else kept in the runtime's order.
     */
    static List<NrtTensorInfo> ordered(List<NrtTensorInfo> all, boolean inputs) {
        List<NrtTensorInfo> l = new ArrayList<>(all.stream().filter(t -> t.input() == inputs).toList());
        boolean indexed = l.stream().allMatch(t -> INDEXED.matcher(t.name()).matches());
        if (indexed) {
            l.sort(Comparator.comparingLong(t -> {
                Matcher m = INDEXED.matcher(t.name());
                m.matches();
                return Long.parseLong(m.group(1));
            }));
        }
        return l;
    }
}
