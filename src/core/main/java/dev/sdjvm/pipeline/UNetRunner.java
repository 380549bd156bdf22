package dev.sdjvm.pipeline;

import dev.sdjvm.backend.Artifact;
import dev.sdjvm.backend.Invocation;
import dev.sdjvm.backend.TensorBinding;
import dev.sdjvm.backend.TensorSpec;
import dev.sdjvm.errors.BackendException;
import dev.sdjvm.errors.InvalidRequestException;
import dev.sdjvm.errors.ModelLoadException;
import dev.sdjvm.model.ArtifactRole;
import dev.sdjvm.model.DType;
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
 * <p>The UNet's inputs are data: {@code sample} and {@code timestep} change every step, every other input is a
 * {@link Conditioning} the pipeline family provides per generation, by name ({@code encoder_hidden_states} for SD;
 * a later family adds its own names to {@link ArtifactRole#UNET}'s contract). Each is bound by name
 * ({@link TensorBinding}); an artifact input the family does not provide fails the load.
 *
 * <p>One {@link Session} per generation takes an {@link Invocation} per chunk from its replica's pool (on Neuron:
 * device tensors allocated once per core), writes the chunk's conditioning once, and per step writes sample and
 * timestep, runs, and reads the noise prediction: nothing is allocated per step.
 *
 * <p>The timestep is written in the dtype the artifact takes it in. A floating-point timestep (float32, bf16, fp16) is
 * diffusers' and AWS's {@code t.float().expand((B,))} then {@code .to(unet dtype)}: 999 reaches a bf16 UNet as 1000.
 * An integer timestep (int64, int32: a UNet traced with an integer example timestep, as torch-neuronx keeps the
 * example's dtype) takes the schedule's value as that integer. Every schedule of DDIM, PNDM, DPM-Solver++, UniPC and
 * the "leading"/"trailing" spacings of the sigma schedulers is integral, so the UNet sees exactly what diffusers' UNet
 * sees ({@code get_timestep_embedding}: {@code timesteps[:, None].float()}). A fractional timestep (the sigma
 * schedulers' "linspace" spacing, Karras sigmas) cannot be written exactly: truncating or rounding it would change
 * the noise prediction against diffusers' UNet, so {@link #checkTimesteps} refuses such a schedule before the first
 * step, naming the scheduler.
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

    /**
     * A UNet input written once per generation: {@code rows} rows of {@code rowShape}, float32, flat.
     *
     * @param name     the input's name in {@link ArtifactRole#UNET}'s contract, e.g. {@code encoder_hidden_states}
     * @param values   [rows, rowShape...] flat
     * @param rowShape the shape of one row, e.g. [77, H]
     */
    record Conditioning(String name, float[] values, long[] rowShape) {
    }

    private final List<InvocationPool> replicas;
    private final ExecutorService pool;
    private final Artifact artifact;
    private final int sample;
    private final int timestep;
    private final TensorSpec sampleSpec;
    private final DType timestepDType;
    private final Integer staticBatch;

    /**
     * @param replicas     the UNet replicas' invocation pools
     * @param pool         threads for replicas 1.., or null with one replica
     * @param conditioning the names of the inputs the pipeline family writes per generation (besides sample and
     *                     timestep): together they must be every input of the artifact
     * @param channels     channels the sample has (the latents'; an inpainting UNet's: latents, mask, masked image)
     * @param latentHeight latent height (of the model's image size)
     * @param latentWidth  latent width
     */
    UNetRunner(List<InvocationPool> replicas, ExecutorService pool, List<String> conditioning, long channels,
               long latentHeight, long latentWidth) {
        if (replicas.isEmpty()) {
            throw new IllegalArgumentException("no UNet replica");
        }
        this.replicas = List.copyOf(replicas);
        this.pool = pool;
        this.artifact = replicas.get(0).artifact();
        List<TensorSpec> in = artifact.inputs();
        List<String> names = new ArrayList<>(List.of("sample", "timestep"));
        names.addAll(conditioning);
        int[] bound = new int[names.size()];
        for (int i = 0; i < bound.length; i++) {
            bound[i] = bind(names.get(i));
        }
        if (in.size() != names.size() || Arrays.stream(bound).distinct().count() != bound.length) {
            throw new ModelLoadException(artifact.file(), "unet takes " + in.size() + " inputs " + in + "; the pipeline "
                    + "provides " + names + " (a NEFF compiled without inlined weights?)");
        }
        this.sample = bound[0];
        this.timestep = bound[1];
        this.sampleSpec = in.get(sample);
        checkRank(sampleSpec, "sample", 4);
        checkRank(in.get(timestep), "timestep", 1);
        this.timestepDType = in.get(timestep).dtype() == null ? DType.FLOAT32 : in.get(timestep).dtype();
        long b = sampleSpec.rank() == 4 ? sampleSpec.dim(0) : -1;
        this.staticBatch = b > 0 ? (int) b : null;
        if (sampleSpec.rank() == 4) {
            long[] expect = {b, channels, latentHeight, latentWidth};
            for (int d = 1; d < 4; d++) {
                if (sampleSpec.dim(d) >= 0 && sampleSpec.dim(d) != expect[d]) {
                    throw new ModelLoadException(artifact.file(), "unet sample input " + sampleSpec + " does not fit the "
                            + "model's latents " + Arrays.toString(new long[] {channels, latentHeight, latentWidth})
                            + " (unet/config.json, vae/config.json or the manifest disagree with the compiled artifact)");
                }
            }
        }
    }

    private int bind(String name) {
        try {
            return TensorBinding.input(artifact, name);
        } catch (BackendException e) {
            throw new ModelLoadException(artifact.file(), e.getMessage(), e);
        }
    }

    /** A shape guard on a bound input: when its shape is known it has {@code rank} dimensions. */
    private void checkRank(TensorSpec s, String name, int rank) {
        if (s.rank() >= 0 && s.rank() != rank) {
            throw new ModelLoadException(artifact.file(), "unet input " + s + " is bound as its " + name + ", which has "
                    + rank + " dimension(s)");
        }
    }

    /** {@return the dtype the UNet takes its timestep in} */
    DType timestepDType() {
        return timestepDType;
    }

    /** {@return true when the UNet takes an integer timestep (int64 or int32)} */
    boolean integerTimestep() {
        return timestepDType == DType.INT64 || timestepDType == DType.INT32;
    }

    /**
     * Checks that every timestep of a schedule can be written in the UNet's timestep dtype without changing it: for
     * an integer timestep, every value must be an integer (see the class comment).
     *
     * @param timesteps the schedule the denoising loop runs
     * @param scheduler the scheduler's name, for the message
     * @throws InvalidRequestException (field {@code scheduler}) naming the first fractional timestep
     */
    void checkTimesteps(double[] timesteps, String scheduler) {
        if (!integerTimestep()) {
            return;
        }
        for (double t : timesteps) {
            if (t != Math.rint(t) || Math.abs(t) > Integer.MAX_VALUE) {
                throw new InvalidRequestException("scheduler", scheduler + " gives the fractional timestep " + t
                        + ", but this model's UNet (" + artifact.file().getFileName() + ") takes its timestep as "
                        + timestepDType.manifestName() + ": truncating it would change the result against diffusers' "
                        + "UNet, so it is refused. Use a scheduler with integer timesteps (DPMSolverMultistepScheduler, "
                        + "DDIMScheduler, PNDMScheduler, UniPCMultistepScheduler, or a sigma scheduler with "
                        + "timestep_spacing \"leading\" or \"trailing\" and without Karras sigmas), or compile the UNet "
                        + "with a floating-point timestep");
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
     * Opens a session for {@code rows} UNet rows whose sample is {@code rowShape} each and whose noise prediction has
     * {@code outRowSize} values each (the latents'; an inpainting UNet's sample has more channels than its output).
     * Row {@code r} takes its sample from source row {@code r % sourceRows} (so CFG's {@code cat([latents] * 2)}
     * needs no copy).
     *
     * @param conditioning the other inputs, [rows, ...] each, written once per chunk here
     */
    Session open(int rows, int sourceRows, long[] rowShape, int outRowSize, List<Conditioning> conditioning) {
        return new Session(rows, sourceRows, rowShape, outRowSize, conditioning);
    }

    private static long numel(long[] shape) {
        long n = 1;
        for (long d : shape) {
            n *= d;
        }
        return n;
    }

    /** Per-generation state: one invocation per chunk. */
    final class Session implements AutoCloseable {
        private final int sourceRows;
        private final int rowSize;
        private final int outRowSize;
        private final Chunk[] chunks;
        private final List<Future<?>> futures;

        private Session(int rows, int sourceRows, long[] rowShape, int outRowSize, List<Conditioning> conditioning) {
            this.sourceRows = sourceRows;
            this.rowSize = Math.toIntExact(numel(rowShape));
            this.outRowSize = outRowSize;
            int per = staticBatch == null ? rows : staticBatch;
            if (rows % per != 0) {
                throw new IllegalStateException("rows " + rows + " not divisible by the UNet batch " + per);
            }
            int n = rows / per;
            long[][] shapes = new long[artifact.inputs().size()][];
            shapes[sample] = withBatch(per, rowShape);
            shapes[timestep] = new long[] {per};
            int[] index = new int[conditioning.size()];
            for (int c = 0; c < index.length; c++) {
                Conditioning cond = conditioning.get(c);
                index[c] = TensorBinding.input(artifact, cond.name());
                shapes[index[c]] = withBatch(per, cond.rowShape());
                if (cond.values().length != rows * numel(cond.rowShape())) {
                    throw new IllegalArgumentException(cond.name() + ": " + cond.values().length + " values for " + rows
                            + " rows of " + Arrays.toString(cond.rowShape()));
                }
            }
            for (int i = 0; i < shapes.length; i++) {
                if (shapes[i] == null) {
                    throw new IllegalArgumentException("no value for unet input " + artifact.inputs().get(i));
                }
            }
            chunks = new Chunk[n];
            try {
                for (int i = 0; i < n; i++) {
                    InvocationPool p = replicas.get(i % replicas.size());
                    Invocation inv = p.acquire(shapes);
                    chunks[i] = new Chunk(p, inv, i * per, per);
                    for (int c = 0; c < index.length; c++) {
                        int row = Math.toIntExact(numel(conditioning.get(c).rowShape()));
                        inv.write(index[c], 0, conditioning.get(c).values(), i * per * row, per * row);
                    }
                }
            } catch (RuntimeException e) {
                close();
                throw e;
            }
            this.futures = new ArrayList<>(n);
        }

        /**
         * One UNet evaluation: rows' inputs from {@code scaled} (source rows), timestep {@code t}; writes the noise
         * predictions of all rows to {@code out} ({@code rows*outRowSize} floats).
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

        private static long[] withBatch(int batch, long[] rowShape) {
            long[] s = new long[rowShape.length + 1];
            s[0] = batch;
            System.arraycopy(rowShape, 0, s, 1, rowShape.length);
            return s;
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
            final int[] intTimes;
            int output = -1;

            Chunk(InvocationPool pool, Invocation invocation, int firstRow, int count) {
                this.pool = pool;
                this.invocation = invocation;
                this.firstRow = firstRow;
                this.count = count;
                this.times = new float[count];
                this.intTimes = integerTimestep() ? new int[count] : null;
            }

            void write(float[] scaled, float t) {
                for (int r = 0; r < count; r++) {
                    int src = ((firstRow + r) % sourceRows) * rowSize;
                    invocation.write(sample, (long) r * rowSize, scaled, src, rowSize);
                }
                if (intTimes != null) {
                    // an integer UNet: the schedule's integer value (checkTimesteps refused fractional ones)
                    Arrays.fill(intTimes, (int) t);
                    invocation.write(timestep, 0, intTimes, 0, count);
                    return;
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
                invocation.read(output, out, firstRow * outRowSize);
                if (obs != null) {
                    obs.onChunk(firstRow / count, start, System.nanoTime());
                }
            }

            private int outputIndex(List<TensorSpec> outs) {
                int i = TensorBinding.output(ArtifactRole.UNET, outs, "noise_pred");
                if (outs.get(i).rank() != 4 || outs.get(i).numel() != (long) count * outRowSize) {
                    throw new BackendException("unet returned " + outs.get(i) + " for a batch of " + count
                            + " samples; expected " + outRowSize + " values each");
                }
                return i;
            }
        }
    }
}
