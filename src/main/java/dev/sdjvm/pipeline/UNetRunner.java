package dev.sdjvm.pipeline;

import dev.sdjvm.BackendException;
import dev.sdjvm.backend.torch.Tensors;
import dev.sdjvm.backend.torch.TorchModule;
import dev.sdjvm.model.DType;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Future;
import dev.sdjvm.tensor.Bf16;
import org.bytedeco.javacpp.FloatPointer;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.javacpp.ShortPointer;
import org.bytedeco.pytorch.Tensor;

/**
 * Runs the UNet over a batch of rows, split into chunks of the artifact's static batch (or one chunk when the batch
 * is dynamic). With several replicas the chunks of one step run concurrently, chunk {@code i} on replica
 * {@code i % replicas}: with a batch-1 UNet and two replicas, the uncond and cond halves of classifier-free guidance
 * run side by side, as AWS's {@code torch_neuronx.DataParallel(unet, [0, 1])} does on two NeuronCores.
 *
 * <p>One {@link Session} per generation holds the native input tensors (allocated once, written every step) and
 * the chunks' text embeddings; {@link Session#run} is allocation-free on the Java side.
 */
final class UNetRunner {
    /** Observes chunk timings (tests use it to show that replicas overlap); null in normal use. */
    interface ChunkObserver {
        void onChunk(int chunk, long startNanos, long endNanos);
    }

    static volatile ChunkObserver observer;

    private final List<TorchModule> replicas;
    private final DType dtype;
    private final Integer staticBatch;
    private final ExecutorService pool;

    UNetRunner(List<TorchModule> replicas, DType dtype, Integer staticBatch, ExecutorService pool) {
        if (replicas.isEmpty()) {
            throw new IllegalArgumentException("no UNet replica");
        }
        this.replicas = List.copyOf(replicas);
        this.dtype = dtype;
        this.staticBatch = staticBatch;
        this.pool = pool;
    }

    DType dtype() {
        return dtype;
    }

    Integer staticBatch() {
        return staticBatch;
    }

    int replicas() {
        return replicas.size();
    }

    /**
     * Opens a session for {@code rows} UNet rows of {@code rowSize} floats each. Row {@code r} takes its sample from
     * source row {@code r % sourceRows} (so CFG's {@code cat([latents]*2)} needs no copy).
     *
     * @param embeddings float32 [rows, 77, H]; cast to the UNet dtype here
     */
    Session open(int rows, int sourceRows, long[] rowShape, Tensor embeddings) {
        return new Session(rows, sourceRows, rowShape, embeddings);
    }

    /** Per-generation native state. Close it (inside the generation's PointerScope it is freed with the scope anyway). */
    final class Session implements AutoCloseable {
        private final int rows;
        private final int sourceRows;
        private final int rowSize;
        private final Chunk[] chunks;
        private final PointerScope scope;
        private final List<Future<?>> futures;

        private Session(int rows, int sourceRows, long[] rowShape, Tensor embeddings) {
            this.rows = rows;
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
            this.scope = new PointerScope();
            try {
                Tensor emb = Tensors.to(embeddings, dtype).contiguous();
                chunks = new Chunk[n];
                for (int i = 0; i < n; i++) {
                    long[] shape = new long[rowShape.length + 1];
                    shape[0] = per;
                    System.arraycopy(rowShape, 0, shape, 1, rowShape.length);
                    // the inputs live in the UNet's dtype and are written in place every step: no per-step
                    // native allocation for them; bf16 is converted in Java exactly as torch's .to(bfloat16)
                    DType io = dtype == DType.BFLOAT16 ? DType.BFLOAT16 : DType.FLOAT32;
                    Tensor sample = Tensors.empty(io, shape);
                    Tensor t = Tensors.empty(io, per);
                    chunks[i] = new Chunk(replicas.get(i % replicas.size()), i * per, per, sample, t,
                            emb.narrow(0, (long) i * per, per), io == DType.BFLOAT16 ? new short[per * rowSize] : null);
                }
            } catch (RuntimeException e) {
                scope.close();
                throw e;
            }
            this.futures = new ArrayList<>(n);
        }

        /**
         * One UNet evaluation: rows' inputs from {@code scaled} (source rows), timestep {@code t}; writes the noise
         * predictions of all rows to {@code out} ({@code rows*rowSize} floats).
         */
        void run(float[] scaled, double t, float[] out) {
            for (Chunk c : chunks) {
                c.write(scaled, t);
            }
            if (chunks.length == 1 || replicas.size() == 1) {
                for (Chunk c : chunks) {
                    c.forward(out);
                }
                return;
            }
            futures.clear();
            for (int i = 1; i < chunks.length; i++) {
                Chunk c = chunks[i];
                futures.add(pool.submit(() -> c.forward(out)));
            }
            chunks[0].forward(out);
            for (Future<?> f : futures) {
                try {
                    f.get();
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                    throw new BackendException("interrupted while waiting for a UNet replica", e);
                } catch (ExecutionException e) {
                    Throwable c = e.getCause();
                    if (c instanceof RuntimeException) {
                        throw (RuntimeException) c;
                    }
                    throw new BackendException("UNet replica failed: " + c, c);
                }
            }
        }

        @Override
        public void close() {
            scope.close();
        }

        private final class Chunk {
            final TorchModule module;
            final int firstRow;
            final int count;
            final Tensor sample;
            final Tensor timestep;
            final Tensor embeddings;
            final FloatPointer sampleF;
            final FloatPointer timestepF;
            final ShortPointer sampleH;
            final ShortPointer timestepH;
            final short[] scratch;

            Chunk(TorchModule module, int firstRow, int count, Tensor sample, Tensor timestep, Tensor embeddings,
                  short[] scratch) {
                this.module = module;
                this.firstRow = firstRow;
                this.count = count;
                this.sample = sample;
                this.timestep = timestep;
                this.embeddings = embeddings;
                this.scratch = scratch;
                boolean half = scratch != null;
                this.sampleF = half ? null : new FloatPointer(sample.data_ptr());
                this.timestepF = half ? null : new FloatPointer(timestep.data_ptr());
                this.sampleH = half ? new ShortPointer(sample.data_ptr()) : null;
                this.timestepH = half ? new ShortPointer(timestep.data_ptr()) : null;
            }

            void write(float[] scaled, double t) {
                for (int r = 0; r < count; r++) {
                    int src = ((firstRow + r) % sourceRows) * rowSize;
                    // diffusers/AWS: t.float().expand((B,)) then .to(unet dtype): 999 reaches a bf16 UNet as 1000
                    if (scratch == null) {
                        sampleF.position((long) r * rowSize).put(scaled, src, rowSize);
                        timestepF.put(r, (float) t);
                    } else {
                        Bf16.fromFloat(scaled, src, scratch, r * rowSize, rowSize);
                        timestepH.put(r, Bf16.fromFloat((float) t));
                    }
                }
                if (scratch == null) {
                    sampleF.position(0);
                } else {
                    sampleH.put(scratch, 0, scratch.length);
                }
            }

            void forward(float[] out) {
                ChunkObserver obs = observer;
                long start = obs == null ? 0 : System.nanoTime();
                try (PointerScope step = new PointerScope()) {
                    Tensor x = Tensors.to(sample, dtype);  // no-op unless the UNet takes float16
                    Tensor ts = Tensors.to(timestep, dtype);
                    Tensor eps = module.forwardTensor("sample", x, ts, embeddings);
                    long numel = eps.numel();
                    if (numel != (long) count * rowSize) {
                        throw new BackendException("unet returned shape " + Tensors.shapeString(eps) + " for a batch of "
                                + count + " samples of " + rowSize + " values");
                    }
                    if (scratch != null && TorchModule.same(eps.scalar_type(), org.bytedeco.pytorch.global.torch.ScalarType.BFloat16)
                            && eps.is_contiguous()) {
                        new ShortPointer(eps.data_ptr()).get(scratch, 0, scratch.length);
                        Bf16.toFloat(scratch, 0, out, firstRow * rowSize, scratch.length);  // = .float()
                    } else {
                        Tensors.copyTo(eps, out, firstRow * rowSize);
                    }
                }
                if (obs != null) {
                    obs.onChunk(firstRow / count, start, System.nanoTime());
                }
            }
        }
    }
}
