package dev.sdjvm.examples;

import dev.sdjvm.GenerationRequest;
import dev.sdjvm.GenerationResult;
import dev.sdjvm.StableDiffusion;
import dev.sdjvm.errors.GenerationCancelledException;
import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.file.Path;
import java.time.Instant;
import java.util.concurrent.atomic.AtomicBoolean;

public class FullRequest {
    public static void main(String[] args) throws Exception {
        // press Enter while it runs to cancel: the listener sees the flag at the end of the next step
        AtomicBoolean cancel = new AtomicBoolean();
        Thread keyboard = new Thread(() -> {
            try {
                if (new BufferedReader(new InputStreamReader(System.in)).readLine() != null) {
                    cancel.set(true);
                }
            } catch (Exception ignored) {
                // no console: nothing can cancel
            }
        });
        keyboard.setDaemon(true);
        keyboard.start();

        try (StableDiffusion sd = StableDiffusion.loadDefault()) {
            GenerationRequest request = GenerationRequest.builder("a yellow circle on a purple background")
                    .negativePrompt("a square")
                    .steps(20).guidanceScale(4).seed(42L)
                    .scheduler("dpm++2m-karras")          // default: DPMSolverMultistepScheduler, as AWS's deployment
                    .numImages(2)
                    .listener((step, total, timestep, elapsedNanos) -> {
                        System.out.printf("step %d/%d (t=%.0f)%n", step, total, timestep);
                        return !cancel.get();             // false cancels the generation
                    })
                    .deadline(Instant.now().plusSeconds(60))  // cancelled if a step ends later than this
                    .build();
            GenerationResult result = sd.generate(request);
            for (int i = 0; i < result.images().size(); i++) {
                // a PNG with the parameters that make it again, in A1111's "parameters" text chunk
                result.writePng(i, Path.of("image-" + (i + 1) + ".png"));
            }
            System.out.printf("seed %d, %.4f s/step, %d images%n", result.seed(),
                    result.timings().secondsPerStep(), result.images().size());
        } catch (GenerationCancelledException e) {
            System.out.println("cancelled: " + e.getMessage());
        }
    }
}
