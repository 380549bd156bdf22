package dev.sdjvm.bench;

import dev.sdjvm.GenerationRequest;
import dev.sdjvm.GenerationResult;
import dev.sdjvm.ModelInfo;
import dev.sdjvm.StableDiffusion;
import dev.sdjvm.cli.InfoCommand;
import dev.sdjvm.server.InferenceServer;
import java.io.IOException;
import java.io.UncheckedIOException;

/** The library in this process; load time is the wall time of {@link StableDiffusion#load}. */
public final class LibraryTarget implements Target {
    private final StableDiffusion sd;
    private final String name;
    private final String precision;
    private final long weightBytes;
    private final double loadSeconds;
    private final Integer height;
    private final Integer width;

    public LibraryTarget(StableDiffusion sd, double loadSeconds) {
        this(sd, loadSeconds, null, null);
    }

    /** With an image size other than the model's (null = the model's). */
    public LibraryTarget(StableDiffusion sd, double loadSeconds, Integer height, Integer width) {
        this.sd = sd;
        this.height = height;
        this.width = width;
        ModelInfo info = sd.info();
        String base = info.root().getFileName() == null ? info.root().toString() : info.root().getFileName().toString();
        int h = height != null ? height : info.height();
        int w = width != null ? width : info.width();
        this.name = height == null && width == null ? base : base + " @" + w + "x" + h;
        this.precision = InfoCommand.precision(info);
        this.loadSeconds = loadSeconds;
        try {
            this.weightBytes = InfoCommand.weightBytes(info);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    @Override
    public Sample generate(String prompt, int steps, double guidance, long seed) {
        long t0 = System.nanoTime();
        GenerationResult r = sd.generate(GenerationRequest.builder(prompt).steps(steps).guidanceScale(guidance)
                .seed(seed).height(height).width(width).build());
        double lat = (System.nanoTime() - t0) / 1e9;
        return new Sample(lat, r.timings().secondsPerStep(), r.timings().overheadMillisPerStep(),
                r.timings().decodeNanos() / 1e9);
    }

    @Override
    public Facts facts() {
        return new Facts(name, "library", precision, loadSeconds, weightBytes, InferenceServer.procStatusBytes("VmHWM:"));
    }

    @Override
    public void close() {
        sd.close();
    }
}
