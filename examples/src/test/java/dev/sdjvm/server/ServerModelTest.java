package dev.sdjvm.server;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;

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
