package dev.sdjvm.server;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import dev.sdjvm.GenerationRequest;
import dev.sdjvm.GenerationResult;
import dev.sdjvm.LoadOptions;
import dev.sdjvm.StableDiffusion;
import dev.sdjvm.TestModels;
import dev.sdjvm.cli.ImageFiles;
import dev.sdjvm.image.ImageInputs;
import dev.sdjvm.image.RgbImage;
import java.awt.image.BufferedImage;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.time.Duration;
import java.util.Base64;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * Image-to-image and inpainting over HTTP on the real pipeline (tiny-sd21-fp32, which has a VAE encoder): the
 * top-level {@code image} and {@code mask_image} (base64 PNG/JPEG) and {@code parameters.strength} give the library's
 * image for the same request, and every client mistake with them is a named 4xx before any work.
 */
@Timeout(value = 300, unit = TimeUnit.SECONDS)
class ServerImageTasksTest {
    static String b64(String input) throws Exception {
        return Base64.getEncoder().encodeToString(Files.readAllBytes(
                TestModels.resource("reference/tasks/inputs/" + input)));
    }

    static String png(int w, int h) throws Exception {
        return Base64.getEncoder().encodeToString(ImageFiles.encode(new BufferedImage(w, h, BufferedImage.TYPE_3BYTE_BGR),
                ImageFiles.Format.PNG, Map.of()));
    }

    static HttpResponse<byte[]> post(HttpClient client, URI uri, String body, String accept) throws Exception {
        return client.send(HttpRequest.newBuilder(uri).header("Content-Type", "application/json").header("Accept", accept)
                .POST(HttpRequest.BodyPublishers.ofString(body)).build(), HttpResponse.BodyHandlers.ofByteArray());
    }

    @Test
    void imageAndMaskImageAndStrengthRunTheTasksAndMistakesAreNamed4xx() throws Exception {
        ServerConfig cfg = ServerConfig.defaults().withPort(0).withWorkers(1).withQueue(2)
                .withTimeout(Duration.ofSeconds(120));
        try (InferenceServer server = InferenceServer.start(cfg, () -> new StableDiffusionEngine(StableDiffusion.load(
                TestModels.resource("models/tiny-sd21-fp32"), LoadOptions.defaults().withThreads(1))))) {
            Engine engine = server.ready().get(120, TimeUnit.SECONDS);
            HttpClient client = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1).build();
            URI uri = URI.create("http://127.0.0.1:" + server.port() + "/invocations");
            RgbImage start = ImageInputs.decode(Files.readAllBytes(TestModels.resource("reference/tasks/inputs/start_64.png")));
            RgbImage mask = ImageInputs.decode(Files.readAllBytes(TestModels.resource("reference/tasks/inputs/mask_64.png")));

            // image-to-image: the PNG the library makes, with the strength in its parameters
            HttpResponse<byte[]> r = post(client, uri, "{\"prompt\":\"a red circle\",\"image\":\"" + b64("start_64.png")
                    + "\",\"parameters\":{\"num_inference_steps\":4,\"seed\":7,\"strength\":0.5}}", "image/png");
            assertEquals(200, r.statusCode(), new String(r.body(), StandardCharsets.UTF_8));
            GenerationResult expected = engine.generate(GenerationRequest.builder("a red circle").steps(4).seed(7L)
                    .initImage(start).strength(0.5).build());
            InferenceServerTest.assertSamePixels(expected.images().get(0), InferenceServerTest.decode(r.body()));
            assertTrue(ImageFiles.readPngText(r.body()).get("parameters").endsWith(", Denoising strength: 0.5"));

            // inpainting, as JSON, with a data URL: the default strength 1.0
            r = post(client, uri, "{\"prompt\":\"a red circle\",\"image\":\"data:image/png;base64," + b64("start_64.png")
                    + "\",\"mask_image\":\"" + b64("mask_64.png") + "\",\"parameters\":{\"num_inference_steps\":3,"
                    + "\"seed\":7}}", "application/json");
            assertEquals(200, r.statusCode(), new String(r.body(), StandardCharsets.UTF_8));
            JsonNode json = InferenceServerTest.json(r);
            assertEquals(1.0, json.get("parameters").get("strength").asDouble());
            assertEquals("inpainting", json.get("parameters").get("task").asText());
            expected = engine.generate(GenerationRequest.builder("a red circle").steps(3).seed(7L).initImage(start)
                    .mask(mask).build());
            InferenceServerTest.assertSamePixels(expected.images().get(0), InferenceServerTest.decode(
                    Base64.getDecoder().decode(json.get("images").get(0).asText())));

            String big = png(200, 200);  // 40000 pixels, over 4x the model's 64x64
            Object[][] cases = {
                {"\"image\":\"aGVsbG8=\"", 400, "image"},                      // "hello": not an image
                {"\"image\":\"%%%\"", 400, "image"},                           // not base64
                {"\"image\":42", 400, "image"},
                {"\"image\":\"data:text/plain,hello\"", 400, "image"},
                {"\"image\":\"" + b64("start_133x100.png") + "\",\"mask_image\":\"" + b64("mask_64.png") + "\"", 400,
                    "mask_image"},
                {"\"mask_image\":\"" + b64("mask_64.png") + "\"", 400, "mask_image"},
                {"\"mask_image\":\"aGVsbG8=\",\"image\":\"" + b64("start_64.png") + "\"", 400, "mask_image"},
                {"\"image\":\"" + b64("start_64.png") + "\",\"parameters\":{\"strength\":0}", 400, "strength"},
                {"\"image\":\"" + b64("start_64.png") + "\",\"parameters\":{\"strength\":1.5}", 400, "strength"},
                {"\"image\":\"" + b64("start_64.png") + "\",\"parameters\":{\"strength\":\"high\"}", 400, "strength"},
                {"\"parameters\":{\"strength\":0.5}", 400, "strength"},
                {"\"image\":\"" + big + "\"", 413, "image"},
            };
            for (Object[] c : cases) {
                long t0 = System.nanoTime();
                HttpResponse<byte[]> e = post(client, uri, "{\"prompt\":\"a\"," + c[0] + "}", "image/png");
                InferenceServerTest.assertError(e, (Integer) c[1], (String) c[2]);
                assertTrue((System.nanoTime() - t0) / 1e9 < 2, c[0] + " took too long");
            }
            assertEquals(0, server.inFlight());
        }
    }

    @Test
    void aModelWithoutAVaeEncoderIsA400NamingTheFile() throws Exception {
        ServerConfig cfg = ServerConfig.defaults().withPort(0).withWorkers(1).withTimeout(Duration.ofSeconds(120));
        try (InferenceServer server = InferenceServer.start(cfg, () -> new StableDiffusionEngine(StableDiffusion.load(
                TestModels.referenceTiny(), LoadOptions.defaults().withThreads(1))))) {
            server.ready().get(120, TimeUnit.SECONDS);
            HttpClient client = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1).build();
            URI uri = URI.create("http://127.0.0.1:" + server.port() + "/invocations");
            HttpResponse<byte[]> r = post(client, uri, "{\"prompt\":\"a\",\"image\":\"" + png(128, 128) + "\"}",
                    "application/json");
            InferenceServerTest.assertError(r, 400, "image");
            assertTrue(InferenceServerTest.json(r).get("error").asText().contains("compiled_models/vae_encoder.pt"));
        }
    }
}
