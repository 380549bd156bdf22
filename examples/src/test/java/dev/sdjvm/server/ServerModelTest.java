package dev.sdjvm.server;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.sdjvm.GenerationRequest;
import dev.sdjvm.GenerationResult;
import dev.sdjvm.LoadOptions;
import dev.sdjvm.StableDiffusion;
import dev.sdjvm.TestModels;
import dev.sdjvm.cli.ImageFiles;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * The server over the real pipeline (reference tiny model, 2 steps): concurrent clients on 2 workers each get the
 * image the library makes for their seed, pixel for pixel.
 */
@Timeout(value = 300, unit = TimeUnit.SECONDS)
class ServerModelTest {
    /**
     * Hostile values for every parameter, against the real engine: each is a named 400 or 413 within a second (no
     * 500, no OutOfMemoryError, no worker busy with it), a null override is its default, and the server stays healthy.
     */
    @Test
    void hostileParametersAreNamed4xxBeforeAnyWork() throws Exception {
        ServerConfig cfg = ServerConfig.defaults().withPort(0).withWorkers(1).withQueue(2)
                .withTimeout(Duration.ofSeconds(120));
        try (InferenceServer server = InferenceServer.start(cfg, () -> new StableDiffusionEngine(
                StableDiffusion.load(TestModels.referenceTiny(), LoadOptions.defaults().withThreads(1))))) {
            server.ready().get(120, TimeUnit.SECONDS);
            HttpClient client = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1).build();
            URI uri = URI.create("http://127.0.0.1:" + server.port() + "/invocations");
            Object[][] cases = {
                {"{\"scheduler_overrides\":{\"num_train_timesteps\":2000000000}}", 400, "num_train_timesteps"},
                {"{\"scheduler_overrides\":{\"steps_offset\":100000}}", 400, "steps_offset"},
                {"{\"scheduler_overrides\":{\"thresholding\":true,\"dynamic_thresholding_ratio\":5}}", 400,
                    "dynamic_thresholding_ratio"},
                {"{\"num_inference_steps\":900,\"scheduler_overrides\":{\"num_train_timesteps\":2}}", 400,
                    "num_inference_steps"},
                {"{\"scheduler_overrides\":{\"use_karas_sigmas\":true}}", 400, "use_karas_sigmas"},
                {"{\"scheduler\":\"ddim\",\"num_inference_steps\":1000}", 400, "num_inference_steps"},
                {"{\"height\":100000,\"width\":100000}", 413, "height"},
                {"{\"height\":2048,\"width\":2048}", 413, "height"},
                {"{\"num_images_per_prompt\":16,\"num_inference_steps\":1000}", 413, "num_inference_steps"},
                {"{\"guidance_scale\":1e308}", 400, "guidance_scale"},
                {"{\"num_inference_steps\":1001}", 400, "num_inference_steps"},
                {"{\"num_images_per_prompt\":17}", 400, "num_images_per_prompt"},
                {"{\"seed\":-1}", 400, "seed"},
                {"{\"seed\":1e300}", 400, "seed"},
                {"{\"height\":-8}", 400, "height"},
                {"{\"scheduler\":\"" + "x".repeat(5000) + "\"}", 400, "scheduler"},
            };
            for (Object[] c : cases) {
                long t0 = System.nanoTime();
                HttpResponse<byte[]> r = client.send(HttpRequest.newBuilder(uri)
                        .header("Content-Type", "application/json")
                        .POST(HttpRequest.BodyPublishers.ofString("{\"prompt\":\"a\",\"parameters\":" + c[0] + "}"))
                        .build(), HttpResponse.BodyHandlers.ofByteArray());
                double secs = (System.nanoTime() - t0) / 1e9;
                InferenceServerTest.assertError(r, (Integer) c[1], (String) c[2]);
                assertTrue(r.body().length < 1000, "short message: " + r.body().length + " bytes");
                assertTrue(secs < 1, c[0] + " took " + secs + " s");
            }
            assertEquals(0, server.inFlight());
            // a null override is the key's default, and the request runs
            HttpResponse<byte[]> ok = client.send(HttpRequest.newBuilder(uri).header("Content-Type", "application/json")
                    .POST(HttpRequest.BodyPublishers.ofString("{\"prompt\":\"a\",\"parameters\":{\"num_inference_steps\":2,"
                            + "\"scheduler_overrides\":{\"steps_offset\":null}}}")).build(),
                    HttpResponse.BodyHandlers.ofByteArray());
            assertEquals(200, ok.statusCode(), new String(ok.body(), StandardCharsets.UTF_8));
        }
    }

    @Test
    void concurrentClientsGetTheImageOfTheirSeed() throws Exception {
        ServerConfig cfg = ServerConfig.defaults().withPort(0).withWorkers(2).withQueue(2)
                .withTimeout(Duration.ofSeconds(240));
        try (InferenceServer server = InferenceServer.start(cfg, () -> new StableDiffusionEngine(
                StableDiffusion.load(TestModels.referenceTiny(), LoadOptions.defaults().withMaxConcurrent(2))))) {
            Engine engine = server.ready().get(120, TimeUnit.SECONDS);
            HttpClient client = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1).build();
            long[] seeds = {11, 22, 33};
            List<CompletableFuture<HttpResponse<byte[]>>> fs = new ArrayList<>();
            for (long s : seeds) {
                String body = "{\"prompt\":\"a red cube\",\"parameters\":{\"num_inference_steps\":2,\"seed\":" + s + "}}";
                fs.add(client.sendAsync(HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + server.port() + "/invocations"))
                        .header("Content-Type", "application/json")
                        .POST(HttpRequest.BodyPublishers.ofString(body)).build(), HttpResponse.BodyHandlers.ofByteArray()));
            }
            java.awt.image.BufferedImage previous = null;
            for (int i = 0; i < seeds.length; i++) {
                HttpResponse<byte[]> r = fs.get(i).get(240, TimeUnit.SECONDS);
                assertEquals(200, r.statusCode(), new String(r.body(), StandardCharsets.UTF_8));
                GenerationResult expected = engine.generate(GenerationRequest.builder("a red cube").steps(2)
                        .seed(seeds[i]).build());
                var actual = InferenceServerTest.decode(r.body());
                InferenceServerTest.assertSamePixels(expected.images().get(0), actual);
                assertEquals("a red cube\nSteps: 2, Sampler: DPM++ 2M, CFG scale: 7.5, Seed: " + seeds[i]
                        + ", Size: 128x128, Model: tiny-sd21-dev", ImageFiles.readPngText(r.body()).get("parameters"));
                if (previous != null) {
                    assertNotEquals(previous.getRGB(64, 64) ^ previous.getRGB(10, 10) ^ previous.getRGB(100, 30),
                            actual.getRGB(64, 64) ^ actual.getRGB(10, 10) ^ actual.getRGB(100, 30),
                            "different seeds give different images");
                }
                previous = actual;
            }
        }
    }
}
