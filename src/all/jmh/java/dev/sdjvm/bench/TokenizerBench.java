package dev.sdjvm.bench;

import dev.sdjvm.tokenizer.ClipTokenizer;
import dev.sdjvm.tokenizer.Encoding;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.Warmup;

import java.nio.file.Path;
import java.util.concurrent.TimeUnit;

/**
 * {@link ClipTokenizer#tokenize} on a realistic prompt mix, warm (BPE cache filled) and cold (cache cleared before
 * every call, so every word goes through BPE), plus one typical 15-word prompt.
 *
 * <pre>
 * mvn -o -q -Pbench -pl src/all -am test-compile exec:exec -Djmh.args="TokenizerBench -f 1 -wi 3 -i 5"
 * </pre>
 * The tokenizer directory defaults to {@code src/core/test/resources/reference/tokenizer}; override with
 * {@code -Dsdjvm.tokenizer.dir=...} inside {@code jmh.args} ({@code -jvmArgs ...}).
 */
@State(Scope.Thread)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MICROSECONDS)
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
@Fork(1)
public class TokenizerBench {
    /** Prompts as people write them for SD: subject, style tags, weights, a negative prompt, some non-ASCII. */
    static final String[] PROMPTS = {
        "a photograph of an astronaut riding a horse on the moon, highly detailed, 8k, trending on artstation",
        "portrait of a woman with red hair, oil painting, by greg rutkowski and alphonse mucha, dramatic lighting",
        "(masterpiece:1.2), best quality, ultra-detailed, 1girl, solo, looking at viewer, cherry blossoms",
        "blurry, lowres, bad anatomy, bad hands, extra fingers, missing fingers, watermark, signature, jpeg artifacts",
        "steampunk airship above victorian london at sunset, volumetric fog, octane render, unreal engine 5",
        "a cute cat 🐱 sitting in a café in Zürich, bokeh, 35mm photo, kodak portra 400",
        "東京タワー at night, cyberpunk city, neon lights, rain, reflections, cinematic still",
        "isometric low poly 3d render of a tiny island with a lighthouse, pastel colors, soft shadows!!!",
    };
    /** 15 words, the size the target (&lt; 20 us warm) refers to. */
    static final String TYPICAL =
            "a beautiful landscape painting of mountains at sunrise with a river and pine trees, detailed";

    private ClipTokenizer tokenizer;
    private int next;

    @Setup
    public void setup() {
        String dir = System.getProperty("sdjvm.tokenizer.dir", "../core/test/resources/reference/tokenizer");
        tokenizer = ClipTokenizer.load(Path.of(dir));
        for (String p : PROMPTS) {
            tokenizer.tokenize(p);
        }
        tokenizer.tokenize(TYPICAL);
    }

    @Benchmark
    public Encoding warmMix() {
        String p = PROMPTS[next];
        next = (next + 1) % PROMPTS.length;
        return tokenizer.tokenize(p);
    }

    @Benchmark
    public Encoding coldMix() {
        String p = PROMPTS[next];
        next = (next + 1) % PROMPTS.length;
        tokenizer.clearCache();
        return tokenizer.tokenize(p);
    }

    @Benchmark
    public Encoding warmTypical15Words() {
        return tokenizer.tokenize(TYPICAL);
    }

    @Benchmark
    public Encoding coldTypical15Words() {
        tokenizer.clearCache();
        return tokenizer.tokenize(TYPICAL);
    }
}
