package dev.sdjvm;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.sdjvm.errors.GenerationCancelledException;
import dev.sdjvm.errors.InvalidRequestException;
import dev.sdjvm.image.PngFiles;
import dev.sdjvm.image.RgbImage;
import java.nio.file.Path;
import java.util.concurrent.CancellationException;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * generateAsync on the embedded model, one generation at a time (maxConcurrent 1), so "the model is free again" is
 * observable: the next call can only run once the cancelled one gave its slot back.
 */
@Timeout(value = 5, unit = TimeUnit.MINUTES)
class GenerateAsyncTest {
    private static StableDiffusion sd;

    @BeforeAll
    static void load() {
        sd = StableDiffusion.loadDefault(LoadOptions.defaults().withMaxConcurrent(1));
    }

    @AfterAll
    static void close() {
        if (sd != null) {
            sd.close();
        }
    }

    private static GenerationRequest.Builder req() {
        return GenerationRequest.builder("a red circle").steps(3).seed(5L);
    }

    @Test
    void aFutureGivesTheImageGenerateGivesAndItsPngSaysHowToMakeItAgain(@TempDir Path tmp) throws Exception {
        GenerationResult sync = sd.generate(req().build());
        GenerationResult async = sd.generateAsync(req().build()).get(2, TimeUnit.MINUTES);
        assertEquals(sync.images(), async.images());
        assertArrayEquals(sync.latents(), async.latents());
        assertEquals(5L, async.seed());
        // the PNG of a real result: its pixels and the parameters that reproduce it
        Path f = tmp.resolve("circle.png");
        async.writePng(f);
        assertEquals("a red circle\nSteps: 3, Sampler: DPM++ 2M, CFG scale: 7.5, Seed: 5, Size: "
                + async.images().get(0).width() + "x" + async.images().get(0).height(),
                PngFiles.readText(f).get("parameters"));
        java.awt.image.BufferedImage back = javax.imageio.ImageIO.read(f.toFile());
        RgbImage img = async.images().get(0);
        for (int y = 0; y < img.height(); y++) {
            for (int x = 0; x < img.width(); x++) {
                assertEquals(img.get(x, y, 0) << 16 | img.get(x, y, 1) << 8 | img.get(x, y, 2),
                        back.getRGB(x, y) & 0xffffff);
            }
        }
    }

    @Test
    void cancellingMidGenerationStopsAtTheNextStepAndFreesTheModel() throws Exception {
        CountDownLatch atStep3 = new CountDownLatch(1);
        CountDownLatch cancelled = new CountDownLatch(1);
        AtomicInteger steps = new AtomicInteger();
        CompletableFuture<GenerationResult> f = sd.generateAsync(req().steps(50).listener((k, n, t, ns) -> {
            steps.incrementAndGet();
            if (k == 3) {
                atStep3.countDown();
                try {
                    // hold the loop at step 3 until the test has cancelled: the next boundary must stop it
                    assertTrue(cancelled.await(1, TimeUnit.MINUTES));
                } catch (InterruptedException e) {
                    throw new AssertionError(e);
                }
            }
            return true;
        }).build());
        assertTrue(atStep3.await(2, TimeUnit.MINUTES), "the generation reached step 3");
        assertTrue(f.cancel(true));
        cancelled.countDown();
        assertTrue(f.isCancelled());
        assertThrows(CancellationException.class, f::join);
        // the one slot is free again only when the cancelled generation has ended; this call waits for it
        GenerationResult next = sd.generate(req().steps(2).build());
        assertEquals(1, next.images().size());
        assertEquals(3, steps.get(), "the loop ran step 4 at most and called no listener after the cancel");
        // the executor's thread is usable afterwards, with no interrupt left over
        assertEquals(1, sd.generateAsync(req().steps(2).build()).get(2, TimeUnit.MINUTES).images().size());
    }

    @Test
    void cancellingWhileWaitingForASlotStopsTheWaitAndLeavesNoInterrupt() throws Exception {
        CountDownLatch running = new CountDownLatch(1);
        CountDownLatch release = new CountDownLatch(1);
        CompletableFuture<GenerationResult> first = sd.generateAsync(req().listener((k, n, t, ns) -> {
            running.countDown();
            try {
                return release.await(1, TimeUnit.MINUTES);
            } catch (InterruptedException e) {
                throw new AssertionError(e);
            }
        }).build());
        assertTrue(running.await(2, TimeUnit.MINUTES));
        // the second waits for the only slot on a thread of its own executor
        AtomicReference<Thread> worker = new AtomicReference<>();
        AtomicReference<Boolean> interruptLeft = new AtomicReference<>();
        AtomicInteger secondSteps = new AtomicInteger();
        CompletableFuture<GenerationResult> second = sd.generateAsync(req().listener((k, n, t, ns) -> {
            secondSteps.incrementAndGet();
            return true;
        }).build(), task -> {
            Thread t = new Thread(() -> {
                task.run();
                interruptLeft.set(Thread.currentThread().isInterrupted());
            });
            worker.set(t);
            t.start();
        });
        Thread.sleep(200);  // let it reach the semaphore (if it has not, cancel still stops it before it waits)
        assertFalse(second.isDone());
        assertTrue(second.cancel(false));
        worker.get().join(TimeUnit.SECONDS.toMillis(30));
        assertFalse(worker.get().isAlive(), "the waiting thread stopped waiting while the slot was still taken");
        assertEquals(Boolean.FALSE, interruptLeft.get(), "the cancel's interrupt is cleared");
        release.countDown();
        assertEquals(1, first.get(2, TimeUnit.MINUTES).images().size());
        assertEquals(0, secondSteps.get(), "the cancelled request never ran");
    }

    @Test
    void failuresCompleteTheFuture() {
        ExecutionException e = assertThrows(ExecutionException.class,
                () -> sd.generateAsync(req().height(24).width(24).build()).get(1, TimeUnit.MINUTES));
        InvalidRequestException ire = assertInstanceOf(InvalidRequestException.class, e.getCause());
        assertEquals("height", ire.field());
        e = assertThrows(ExecutionException.class, () -> sd.generateAsync(null).get(1, TimeUnit.MINUTES));
        assertInstanceOf(InvalidRequestException.class, e.getCause());
        e = assertThrows(ExecutionException.class, () -> sd.generateAsync(req().build(), task -> {
            throw new RejectedExecutionException("full");
        }).get());
        assertInstanceOf(RejectedExecutionException.class, e.getCause());
        // a listener's cancel fails the future with the library's exception (not a CancellationException)
        e = assertThrows(ExecutionException.class,
                () -> sd.generateAsync(req().listener((k, n, t, ns) -> false).build()).get(1, TimeUnit.MINUTES));
        assertInstanceOf(GenerationCancelledException.class, e.getCause());
    }
}
