package dev.sdjvm.backend;

import java.util.List;

/**
 * Input and output buffers bound to one {@link Artifact}: written, run, read; reused for every call. Native memory is
 * allocated when it is opened (on Neuron: device tensors and tensor sets on the artifact's core), never per call.
 * Not thread-safe: one thread uses an invocation at a time.
 */
public interface Invocation extends AutoCloseable {
    /**
     * Writes {@code len} float32 values into input {@code input} starting at element {@code at}, converted to the input's
     * dtype exactly as torch's {@code .to(dtype)} does (bf16: round to nearest even).
     */
    void write(int input, long at, float[] src, int off, int len);

    /** Writes integer values (token ids) into an int64 or int32 input starting at element {@code at}. */
    void write(int input, long at, int[] src, int off, int len);

    /** Runs the artifact on the current inputs. */
    void run();

    /** The outputs of the last {@link #run} (name, dtype, shape). */
    List<TensorSpec> outputs();

    /** Copies output {@code output} of the last run, converted to float32, into {@code dst[off...]}. */
    void read(int output, float[] dst, int off);

    /** Releases the buffers (or returns them to the artifact's pool); idempotent. */
    @Override
    void close();
}
