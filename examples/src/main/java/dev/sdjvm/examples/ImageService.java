package dev.sdjvm.examples;

import dev.sdjvm.GenerationRequest;
import dev.sdjvm.GenerationResult;
import dev.sdjvm.LoadOptions;
import dev.sdjvm.StableDiffusion;
import dev.sdjvm.errors.GenerationCancelledException;
import dev.sdjvm.errors.InvalidRequestException;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import javax.imageio.ImageIO;

/**
 * The library inside a long-running service: one {@link StableDiffusion} for the whole process, shared by the
 * request threads, each request with a deadline, errors mapped to what a client should see, and everything freed
 * at shutdown. {@code sd serve} (the HTTP server in {@code dev.sdjvm.server}) is the full version of this.
 */
public final class ImageService implements AutoCloseable {
    private final StableDiffusion sd;
    private final Duration timeout;

    /**
     * A service over a loaded model.
     *
     * @param sd      the model, loaded once at start-up (loading reads the weights and runs each artifact once)
     * @param timeout how long one request may take, queueing included
     */
    public ImageService(StableDiffusion sd, Duration timeout) {
        this.sd = sd;
        this.timeout = timeout;
    }

    /**
     * One PNG image. Safe to call from many threads: the model runs at most {@link LoadOptions#maxConcurrent()}
     * generations at once and queues the others, and each image depends only on its prompt, steps and seed.
     *
     * @param prompt the prompt
     * @param seed   the seed (the same seed gives the same image)
     * @param steps  denoising steps
     * @return the PNG bytes
     * @throws InvalidRequestException      for a bad request (a client error: report {@link InvalidRequestException#field()})
     * @throws GenerationCancelledException when the deadline passed or the service is closing
     * @throws IOException                  if the PNG cannot be encoded
     */
    public byte[] png(String prompt, long seed, int steps) throws IOException {
        GenerationRequest request = GenerationRequest.builder(prompt).steps(steps).seed(seed)
                .deadline(Instant.now().plus(timeout))
                .build();
        GenerationResult result = sd.generate(request);
        ByteArrayOutputStream png = new ByteArrayOutputStream();
        ImageIO.write(result.image(), "png", png);
        return png.toByteArray();
    }

    /** Cancels running generations at their next step, waits for them and frees the model's native memory. */
    @Override
    public void close() {
        sd.close();
    }

    /**
     * Starts the service, sends it a few requests from four threads (one of them invalid), prints what each client
     * gets, and shuts down.
     *
     * @param args unused
     * @throws Exception if the model cannot be loaded or a request fails unexpectedly
     */
    public static void main(String[] args) throws Exception {
        // two generations at once; more requests wait their turn (a real service also bounds that queue)
        StableDiffusion sd = StableDiffusion.loadDefault(LoadOptions.defaults().withMaxConcurrent(2));
        ImageService service = new ImageService(sd, Duration.ofSeconds(60));
        // SIGTERM / Ctrl-C: cancel what runs, free native memory (close is idempotent)
        Runtime.getRuntime().addShutdownHook(new Thread(service::close));

        String[] prompts = {"a red circle on a blue background", "a green square on a yellow background",
            "a purple triangle on an orange background", ""};
        int[] steps = {20, 20, 20, 0};  // the last request is invalid: steps must be at least 1
        ExecutorService clients = Executors.newFixedThreadPool(4);  // e.g. an HTTP server's worker threads
        List<Future<byte[]>> replies = new ArrayList<>();
        for (int i = 0; i < prompts.length; i++) {
            String prompt = prompts[i];
            int n = steps[i];
            long seed = i;
            replies.add(clients.submit(() -> service.png(prompt, seed, n)));
        }
        for (int i = 0; i < replies.size(); i++) {
            try {
                System.out.printf("request %d: 200, %d bytes of PNG%n", i + 1, replies.get(i).get().length);
            } catch (ExecutionException e) {
                if (e.getCause() instanceof InvalidRequestException bad) {
                    System.out.printf("request %d: 400, %s%n", i + 1, bad.getMessage());
                } else if (e.getCause() instanceof GenerationCancelledException late) {
                    System.out.printf("request %d: 504, %s%n", i + 1, late.getMessage());
                } else {
                    throw e;
                }
            }
        }
        clients.shutdown();
        service.close();
    }
}
