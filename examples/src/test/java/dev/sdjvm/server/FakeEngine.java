package dev.sdjvm.server;

import dev.sdjvm.GenerationRequest;
import dev.sdjvm.GenerationResult;
import dev.sdjvm.RequestLimits;
import dev.sdjvm.errors.GenerationCancelledException;
import dev.sdjvm.errors.InvalidRequestException;
import dev.sdjvm.image.RgbImage;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * A stand-in for the pipeline that keeps its contract (listener per step, deadline checked after each step,
 * InvalidRequestException naming the field, images a pure function of prompt and seed) and whose speed the test
 * controls: {@code stepMillis} per step and an optional gate every generation waits on first.
 */
final class FakeEngine implements Engine {
    static final int SIZE = 16;
    final long stepMillis;
    volatile CountDownLatch gate;
    final AtomicInteger started = new AtomicInteger();
    final AtomicInteger cancelled = new AtomicInteger();
    final AtomicInteger completed = new AtomicInteger();
    volatile boolean closed;
    /** The budget {@link #check} applies, as StableDiffusionEngine applies LoadOptions.limits. */
    volatile RequestLimits limits = RequestLimits.auto();
    /** If set, every generation throws what this makes (after its first step). */
    volatile java.util.function.Supplier<Throwable> failure;
    /** The request id in the generating thread's MDC (log context) at the last generation. */
    volatile String requestIdInMdc;

    FakeEngine(long stepMillis) {
        this.stepMillis = stepMillis;
    }

    @Override
    public GenerationResult generate(GenerationRequest r) {
        requestIdInMdc = org.slf4j.MDC.get(InferenceServer.MDC_REQUEST_ID);
        schedulerClass(r);
        // like artifacts compiled for one size (Neuron): other sizes are invalid requests
        if (r.height() != null && r.height() != SIZE) {
            throw new InvalidRequestException("height", "the artifacts make " + SIZE + "x" + SIZE + " images");
        }
        if (r.width() != null && r.width() != SIZE) {
            throw new InvalidRequestException("width", "the artifacts make " + SIZE + "x" + SIZE + " images");
        }
        started.incrementAndGet();
        long t0 = System.nanoTime();
        try {
            CountDownLatch g = gate;
            if (g != null && !g.await(30, TimeUnit.SECONDS)) {
                throw new IllegalStateException("gate not opened");
            }
            int steps = r.steps().orElseThrow();  // the server resolved it (withModelDefaults)
            for (int k = 1; k <= steps; k++) {
                Thread.sleep(stepMillis);
                if (r.listener() != null && !r.listener().onStep(k, steps, 1000 - k, System.nanoTime() - t0)) {
                    throw new GenerationCancelledException("cancelled by listener");
                }
                if (r.deadline() != null && Instant.now().isAfter(r.deadline())) {
                    throw new GenerationCancelledException("deadline");
                }
                java.util.function.Supplier<Throwable> f = failure;
                if (f != null) {
                    sneakyThrow(f.get());
                }
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new GenerationCancelledException("interrupted");
        } catch (GenerationCancelledException e) {
            cancelled.incrementAndGet();
            throw e;
        }
        long seed = r.seed() == null ? 7 : r.seed();
        List<RgbImage> images = new ArrayList<>();
        for (int i = 0; i < r.numImages(); i++) {
            images.add(image(r.prompt(), seed, i));
        }
        long dt = System.nanoTime() - t0;
        completed.incrementAndGet();
        return GenerationResult.builder().images(images).seed(seed)
                .timings(new GenerationResult.Timings(0, 0, dt, dt / 2, 0, dt, r.steps().orElseThrow()))
                .scheduler("DPMSolverMultistepScheduler").request(r).build();
    }

    /** The image for (prompt, seed, index): every pixel depends on all three. */
    static RgbImage image(String prompt, long seed, int index) {
        byte[] px = new byte[SIZE * SIZE * 3];
        long h = prompt.hashCode() * 31L + seed * 1_000_003L + index * 17L;
        for (int i = 0; i < px.length; i++) {
            h = h * 6364136223846793005L + 1442695040888963407L;
            px[i] = (byte) (h >>> 56);
        }
        return new RgbImage(SIZE, SIZE, px);
    }

    @Override
    public void check(GenerationRequest r) {
        limits.check(r, SIZE, SIZE);
        schedulerClass(r);
    }

    /** As an SD 2.x model: diffusers' StableDiffusionPipeline defaults. */
    @Override
    public GenerationRequest withModelDefaults(GenerationRequest request) {
        return request.withDefaults(GenerationRequest.DEFAULT_STEPS, GenerationRequest.DEFAULT_GUIDANCE);
    }

    @Override
    public Info info() {
        return new Info("fake-model", "float32", SIZE, SIZE, 1234, 0.5);
    }

    @Override
    public String schedulerClass(GenerationRequest r) {
        if (r.scheduler() == null || r.scheduler().equals("dpm++2m")) {
            return "DPMSolverMultistepScheduler";
        }
        if (r.scheduler().equals("euler")) {
            return "EulerDiscreteScheduler";
        }
        throw new InvalidRequestException("scheduler", "unknown scheduler '" + r.scheduler() + "'");
    }

    @Override
    public void close() {
        closed = true;
    }

    @SuppressWarnings("unchecked")
    private static <T extends Throwable> void sneakyThrow(Throwable t) throws T {
        throw (T) t;
    }
}
