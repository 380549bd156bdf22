package dev.sdjvm;

import dev.sdjvm.backend.Artifact;
import dev.sdjvm.backend.Invocation;
import dev.sdjvm.backend.TensorBinding;
import dev.sdjvm.backend.TensorSpec;
import dev.sdjvm.errors.BackendException;
import dev.sdjvm.errors.ModelLoadException;
import dev.sdjvm.model.ArtifactRole;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Future;

/**
 * Runs the UNet over a batch of rows, split into chunks of the artifact's static batch (or one chunk when the batch
 * is dynamic). With several replicas the chunks of one step run concurrently, chunk {@code i} on replica
 * {@code i % replicas}: with a batch-1 UNet and two replicas, the uncond and cond halves of classifier-free guidance
 * run side by side, as AWS's {@code torch_neuronx.DataParallel(unet, [0, 1])} does on two NeuronCores.
 *
 * <p>One {@link Session} per generation takes an {@link Invocation} per chunk from its replica's pool (on Neuron:
 * device tensors allocated once per core), writes the chunk's text embeddings once, and per step writes sample and
 * timestep, runs, and reads the noise prediction: nothing is allocated per step.
 */
final class UNetRunner {
    /** Observes chunk runs (tests use it to show that replicas overlap); null in normal use. */
    interface ChunkObserver {
        /** Called on the thread that runs the chunk, before it runs. */
        default void onStart(int chunk) {
        }

        void onChunk(int chunk, long startNanos, long endNanos);
    }

    static volatile ChunkObserver observer;

    private final List<InvocationPool> replicas;
    private final ExecutorService pool;
    private final int sample;
    private final int timestep;
    private final int hidden;
    private final TensorSpec sampleSpec;
    private final Integer staticBatch;

    UNetRunner(List<InvocationPool> replicas, ExecutorService pool, long channels, long latentHeight, long latentWidth) {
        if (replicas.isEmpty()) {
            throw new IllegalArgumentException("no UNet replica");
        }
        this.replicas = List.copyOf(replicas);
        this.pool = pool;
        Artifact a = replicas.get(0).artifact();
        List<TensorSpec> in = a.inputs();
        if (in.size() != 3) {
            throw new ModelLoadException(a.file(), "unet takes " + in.size() + " inputs " + in
                    + "; expected sample, timestep, encoder_hidden_states (a NEFF compiled without inlined weights?)");
        }
        try {
            this.sample = TensorBinding.input(a, "sample");
            this.timestep = TensorBinding.input(a, "timestep");
            this.hidden = TensorBinding.input(a, "encoder_hidden_states");
        } catch (BackendException e) {
            throw new ModelLoadException(a.file(), e.getMessage(), e);
        }
        this.sampleSpec = in.get(sample);
        int[][] ranks = {{sample, 4}, {timestep, 1}, {hidden, 3}};
        for (int[] r : ranks) {
            if (in.get(r[0]).rank() >= 0 && in.get(r[0]).rank() != r[1]) {
                throw new ModelLoadException(a.file(), "unet input " + in.get(r[0]) + " is bound as its "
                        + a.role().inputs().get(r[0] == sample ? 0 : r[0] == timestep ? 1 : 2) + ", which has " + r[1]
                        + " dimensions");
            }
        }
        long b = sampleSpec.rank() == 4 ? sampleSpec.dim(0) : -1;
        this.staticBatch = b > 0 ? (int) b : null;
        if (sampleSpec.rank() == 4) {
            long[] expect = {b, channels, latentHeight, latentWidth};
            for (int d = 1; d < 4; d++) {
                if (sampleSpec.dim(d) >= 0 && sampleSpec.dim(d) != expect[d]) {
                    throw new ModelLoadException(a.file(), "unet sample input " + sampleSpec + " does not fit the model's latents "
                            + Arrays.toString(new long[] {channels, latentHeight, latentWidth})
                            + " (unet/config.json, vae/config.json or the manifest disagree with the compiled artifact)");
                }
            }
        }
    }

    /** The static batch, or null when the UNet takes any batch. */
    Integer staticBatch() {
        return staticBatch;
    }

    /** True when the UNet was compiled for one latent size only. */
    boolean fixedSize() {
        return staticBatch != null || sampleSpec.rank() == 4 && sampleSpec.dim(2) >= 0;
    }

    int replicas() {
        return replicas.size();
    }

    /**
     * Opens a session for {@code rows} UNet rows of {@code rowShape} each. Row {@code r} takes its sample from source
     * row {@code r % sourceRows} (so CFG's {@code cat([latents] * 2)} needs no copy).
     *
     * @param embeddings float32 [rows, 77, H], written once per chunk here
     */
    Session open(int rows, int sourceRows, long[] rowShape, float[] embeddings, int hiddenSize) {
        return new Session(rows, sourceRows, rowShape, embeddings, hiddenSize);
    }

    /** Per-generation state: one invocation per chunk. */
    final class Session implements AutoCloseable {
        private final int sourceRows;
        private final int rowSize;
        private final Chunk[] chunks;
        private final List<Future<?>> futures;

        private Session(int rows, int sourceRows, long[] rowShape, float[] embeddings, int hiddenSize) {
            this.sourceRows = sourceRows;
            long size = 1;
            for (long d : rowShape) {
                size *= d;
            }
            this.rowSize = Math.toIntExact(size);
            int per = staticBatch == null ? rows : staticBatch;
            if (rows % per != 0) {
                throw new IllegalStateException("rows " + rows + " not divisible by the UNet batch " + per);
            }
            int n = rows / per;
            long[][] shapes = new long[3][];
            long[] s = new long[rowShape.length + 1];
            s[0] = per;
            System.arraycopy(rowShape, 0, s, 1, rowShape.length);
            shapes[sample] = s;
            shapes[timestep] = new long[] {per};
            shapes[hidden] = new long[] {per, embeddings.length / rows / hiddenSize, hiddenSize};
            int embRow = embeddings.length / rows;
            chunks = new Chunk[n];
            try {
                for (int i = 0; i < n; i++) {
                    InvocationPool p = replicas.get(i % replicas.size());
                    Invocation inv = p.acquire(shapes);
                    chunks[i] = new Chunk(p, inv, i * per, per);
                    inv.write(hidden, 0, embeddings, i * per * embRow, per * embRow);
                }
            } catch (RuntimeException e) {
                close();
                throw e;
            }
            this.futures = new ArrayList<>(n);
        }

        /**
         * One UNet evaluation: rows' inputs from {@code scaled} (source rows), timestep {@code t}; writes the noise
         * predictions of all rows to {@code out} ({@code rows*rowSize} floats).
         */
        void run(float[] scaled, float t, float[] out) {
            for (Chunk c : chunks) {
                c.write(scaled, t);
            }
            if (chunks.length == 1 || replicas.size() == 1) {
                for (Chunk c : chunks) {
                    c.run(out);
                }
                return;
            }
            futures.clear();
            for (int i = 1; i < chunks.length; i++) {
                Chunk c = chunks[i];
                futures.add(pool.submit(() -> c.run(out)));
            }
            RuntimeException failure = null;
            try {
                chunks[0].run(out);
            } catch (RuntimeException e) {
                failure = e;
            }
            for (Future<?> f : futures) {  // always wait: the invocations must be idle when the session closes
                try {
                    f.get();
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                    failure = add(failure, new BackendException("interrupted while waiting for a UNet replica", e));
                } catch (ExecutionException e) {
                    Throwable c = e.getCause();
                    failure = add(failure, c instanceof RuntimeException r ? r : new BackendException("UNet replica failed: " + c, c));
                }
            }
            if (failure != null) {
                throw failure;
            }
        }

        private static RuntimeException add(RuntimeException first, RuntimeException next) {
            if (first == null) {
                return next;
            }
            first.addSuppressed(next);
            return first;
        }

        @Override
        public void close() {
            for (Chunk c : chunks) {
                if (c != null) {
                    c.pool.release(c.invocation);
                }
            }
        }

        private final class Chunk {
            final InvocationPool pool;
            final Invocation invocation;
            final int firstRow;
            final int count;
            final float[] times;
            int output = -1;

            Chunk(InvocationPool pool, Invocation invocation, int firstRow, int count) {
                this.pool = pool;
                this.invocation = invocation;
                this.firstRow = firstRow;
                this.count = count;
                this.times = new float[count];
            }

            void write(float[] scaled, float t) {
                for (int r = 0; r < count; r++) {
                    int src = ((firstRow + r) % sourceRows) * rowSize;
                    invocation.write(sample, (long) r * rowSize, scaled, src, rowSize);
                }
                // diffusers/AWS: t.float().expand((B,)) then .to(unet dtype): 999 reaches a bf16 UNet as 1000
                Arrays.fill(times, t);
                invocation.write(timestep, 0, times, 0, count);
            }

            void run(float[] out) {
                ChunkObserver obs = observer;
                if (obs != null) {
                    obs.onStart(firstRow / count);
                }
                long start = obs == null ? 0 : System.nanoTime();
                invocation.run();
                if (output < 0) {
                    output = outputIndex(invocation.outputs());
                }
                invocation.read(output, out, firstRow * rowSize);
                if (obs != null) {
                    obs.onChunk(firstRow / count, start, System.nanoTime());
                }
            }

            private int outputIndex(List<TensorSpec> outs) {
                int i = TensorBinding.output(ArtifactRole.UNET, outs, "noise_pred");
                if (outs.get(i).rank() != 4 || outs.get(i).numel() != (long) count * rowSize) {
                    throw new BackendException("unet returned " + outs.get(i) + " for a batch of " + count
                            + " samples of " + rowSize + " values");
                }
                return i;
            }
        }
    }
}
