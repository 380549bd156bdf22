package dev.sdjvm.bench;

/** What is benchmarked: the library in this process, or a server over HTTP. */
public interface Target extends AutoCloseable {
    /** One generation of one image; returns what it took. */
    Sample generate(String prompt, int steps, double guidance, long seed);

    /** Facts about the model (after loading). */
    Facts facts();

    @Override
    void close();

    /**
     * One measured request.
     *
     * @param latencySeconds     client-side wall time
     * @param secondsPerStep     denoising seconds per step (server-side timings)
     * @param overheadMsPerStep  ms per step outside UNet forward calls
     * @param decodeSeconds      VAE decode (post_quant_conv + decoder + RGB conversion), server-side timings
     */
    record Sample(double latencySeconds, double secondsPerStep, double overheadMsPerStep, double decodeSeconds) {
    }

    /**
     * @param name          model name
     * @param mode          library or http
     * @param precision     the UNet's input dtype
     * @param loadSeconds   load time including warm-up (NaN if unknown)
     * @param weightBytes   sum of artifact sizes (-1 if unknown)
     * @param peakRssBytes  peak RSS of the process running the model so far (-1 if unknown)
     */
    record Facts(String name, String mode, String precision, double loadSeconds, long weightBytes, long peakRssBytes) {
    }
}
