package dev.sdjvm.bench;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.sdjvm.TestModels;
import dev.sdjvm.cli.Main;
import dev.sdjvm.server.Engine;
import dev.sdjvm.server.InferenceServer;
import dev.sdjvm.server.ServerConfig;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.lang.reflect.Constructor;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The benchmark's table and JSON structure (not its timings), in both modes; and its arithmetic. */
class BenchmarkTest {
    static final ObjectMapper JSON = new ObjectMapper();
    static final List<String> ROW_KEYS = List.of("model", "mode", "precision", "steps", "runs", "concurrency", "p50Ms",
            "p90Ms", "p95Ms", "p99Ms", "meanMs", "qpsSingle", "qpsConcurrent", "costPer10kSingle",
            "costPer10kConcurrent", "secondsPerStep", "overheadMsPerStep", "decodeSeconds", "loadSeconds", "peakRssBytes", "weightBytes");

    static String[] run(String... args) {
        StringWriter out = new StringWriter();
        StringWriter err = new StringWriter();
        int code = Main.run(args, new PrintWriter(out, true), new PrintWriter(err, true));
        assertEquals(0, code, err.toString());
        return new String[] {out.toString(), err.toString()};
    }

    static void checkTable(String out, int rows) {
        String[] lines = out.split("\n");
        assertTrue(lines[0].startsWith("Hardware: "), out);
        int header = -1;
        for (int i = 0; i < lines.length; i++) {
            if (lines[i].startsWith("| Model | Mode | Precision | Steps | P50 ms | P90 ms | P95 ms | P99 ms |")) {
                header = i;
            }
        }
        assertTrue(header > 0, out);
        int cols = lines[header].split("\\|", -1).length;
        assertTrue(lines[header + 1].startsWith("|---|"), out);
        for (int r = 0; r < rows; r++) {
            String row = lines[header + 2 + r];
            assertTrue(row.startsWith("| "), out);
            assertEquals(cols, row.split("\\|", -1).length, row);
        }
        assertTrue(lines.length <= header + 2 + rows || !lines[header + 2 + rows].startsWith("|"), "exactly " + rows + " rows");
    }

    static JsonNode checkJson(Path json, int rows) throws Exception {
        JsonNode root = JSON.readTree(json.toFile());
        assertTrue(root.path("hardware").path("logical_cores").asInt() >= 1);
        assertTrue(root.path("config").path("steps").isArray());
        assertEquals(rows, root.path("rows").size());
        for (JsonNode r : root.path("rows")) {
            for (String k : ROW_KEYS) {
                assertTrue(r.has(k), k + " in " + r);
            }
            assertTrue(r.path("p50Ms").asDouble() <= r.path("p99Ms").asDouble(), r.toString());
            assertTrue(r.path("qpsSingle").asDouble() > 0);
        }
        return root;
    }

    @Test
    void libraryModeOnTheTinyModel(@TempDir Path tmp) throws Exception {
        Path json = tmp.resolve("bench.json");
        String[] r = run("bench", "--model", TestModels.referenceTiny().toString(), "--steps", "1,2", "--runs", "2",
                "--warmup", "1", "--concurrency", "2", "--guidance", "1", "--json", json.toString());
        checkTable(r[0], 2);
        JsonNode root = checkJson(json, 2);
        JsonNode row = root.path("rows").get(1);
        assertEquals("tiny-sd21-dev", row.path("model").asText());
        assertEquals("library", row.path("mode").asText());
        assertEquals("float32", row.path("precision").asText());
        assertEquals(2, row.path("steps").asInt());
        assertTrue(row.path("peakRssBytes").asLong() > row.path("weightBytes").asLong());
        assertTrue(row.path("loadSeconds").asDouble() > 0);
    }

    @Test
    void httpModeAgainstARunningServer(@TempDir Path tmp) throws Exception {
        // a stand-in engine keeps this fast: the structure is under test here, not the pipeline
        Constructor<?> c = Class.forName("dev.sdjvm.server.FakeEngine").getDeclaredConstructor(long.class);
        c.setAccessible(true);
        Engine fake = (Engine) c.newInstance(1L);
        try (InferenceServer server = InferenceServer.start(ServerConfig.defaults().withPort(0).withWorkers(2),
                () -> fake)) {
            server.ready().get(10, TimeUnit.SECONDS);
            Path json = tmp.resolve("http.json");
            String[] r = run("bench", "--mode", "http", "--url", "http://127.0.0.1:" + server.port(), "--steps", "2",
                    "--runs", "3", "--warmup", "0", "--concurrency", "2", "--json", json.toString());
            checkTable(r[0], 1);
            JsonNode row = checkJson(json, 1).path("rows").get(0);
            assertEquals("fake-model", row.path("model").asText());
            assertEquals("http", row.path("mode").asText());
            assertEquals(1234, row.path("weightBytes").asLong());
            assertEquals(0.5, row.path("loadSeconds").asDouble(), 1e-9);
        }
    }

    /** One client: one QPS and one cost column (the old table repeated them as "(1 clients)"). */
    @Test
    void oneClientHasOneQpsColumn() {
        Benchmark.Row row = new Benchmark.Row("m", "library", "float32", 20, 3, 1, 10, 11, 12, 13, 11, 2.0, 2.0,
                0.5, 0.5, 0.01, 0.1, 2.5, 1.0, -1, -1);
        String one = Benchmark.markdown(List.of(row), new Benchmark.Config(List.of(20), 3, 0, 1, 1.0, "p", 7.5, 0));
        assertTrue(one.contains("| QPS (1 client) | $/10k img (1) | s/step |"), one);
        assertTrue(!one.contains("clients)") && one.contains(", 1 client, "), one);
        String two = Benchmark.markdown(List.of(row), new Benchmark.Config(List.of(20), 3, 0, 2, 1.0, "p", 7.5, 0));
        assertTrue(two.contains("| QPS (1 client) | QPS (2 clients) | $/10k img (1) | $/10k img (2) |"), two);
        for (String table : List.of(one, two)) {
            String[] lines = table.split("\n");
            int cols = lines[0].split("\\|", -1).length;
            assertEquals(cols, lines[1].split("\\|", -1).length, table);
            assertEquals(cols, lines[2].split("\\|", -1).length, table);
        }
    }

    @Test
    void arithmetic() {
        double[] v = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10};
        // numpy.percentile([1..10], [50, 90, 95, 99]) = 5.5, 9.1, 9.55, 9.91
        assertEquals(5.5, Benchmark.percentile(v, 0.50), 1e-12);
        assertEquals(9.1, Benchmark.percentile(v, 0.90), 1e-12);
        assertEquals(9.55, Benchmark.percentile(v, 0.95), 1e-12);
        assertEquals(9.91, Benchmark.percentile(v, 0.99), 1e-12);
        assertEquals(4.0, Benchmark.percentile(new double[] {4}, 0.99), 0);
        // $3.60/h at 1 image/s: 10 000 s = 2.777.. h -> $10
        assertEquals(10.0, Benchmark.cost(3.6, 1.0), 1e-12);
        assertTrue(Double.isNaN(Benchmark.cost(1, 0)));
    }
}
