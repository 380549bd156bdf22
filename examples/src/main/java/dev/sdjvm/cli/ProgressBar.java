package dev.sdjvm.cli;

import dev.sdjvm.StepListener;
import java.io.PrintWriter;
import java.util.Locale;

/**
 * Denoising progress on stderr: a redrawn bar on a terminal ({@code [#####.....] 9/20 1.52 it/s ETA 0:07}), plain
 * lines otherwise (the first step, then at most one a second, and the last). {@code SDJVM_PROGRESS=bar|plain|off}
 * overrides the detection.
 */
public final class ProgressBar implements StepListener {
    /** How progress is shown. */
    public enum Style { BAR, PLAIN, OFF }

    private static final int WIDTH = 30;
    private final PrintWriter err;
    private final Style style;
    private final String label;
    private long lastPrint;

    public ProgressBar(PrintWriter err, Style style, String label) {
        this.err = err;
        this.style = style;
        this.label = label == null ? "" : label;
    }

    /** BAR on a terminal, PLAIN otherwise, unless {@code SDJVM_PROGRESS} says otherwise. */
    public static Style detect() {
        String env = System.getenv("SDJVM_PROGRESS");
        if (env != null) {
            switch (env.trim().toLowerCase(Locale.ROOT)) {
                case "bar": return Style.BAR;
                case "plain": return Style.PLAIN;
                case "off": case "none": case "0": return Style.OFF;
                default: break;
            }
        }
        return System.console() != null ? Style.BAR : Style.PLAIN;
    }

    @Override
    public boolean onStep(int step, int totalSteps, double timestep, long elapsedNanos) {
        if (style == Style.OFF) {
            return true;
        }
        double secs = elapsedNanos / 1e9;
        double rate = secs > 0 ? step / secs : 0;
        double eta = rate > 0 ? (totalSteps - step) / rate : 0;
        String stats = String.format(Locale.ROOT, "%d/%d %s ETA %s", step, totalSteps, rateText(rate, secs, step),
                clock(eta));
        if (style == Style.BAR) {
            int filled = totalSteps == 0 ? WIDTH : (int) ((long) WIDTH * step / totalSteps);
            StringBuilder sb = new StringBuilder("\r").append(label).append('[');
            for (int i = 0; i < WIDTH; i++) {
                sb.append(i < filled ? '#' : '.');
            }
            sb.append("] ").append(stats).append("   ");
            err.print(sb);
            if (step == totalSteps) {
                err.println();
            }
            err.flush();
        } else {
            if (step == 1 || step == totalSteps || elapsedNanos - lastPrint >= 1_000_000_000L) {
                lastPrint = elapsedNanos;
                err.println(label + "step " + stats);
                err.flush();
            }
        }
        return true;
    }

    private static String rateText(double rate, double secs, int step) {
        if (rate >= 1 || rate == 0) {
            return String.format(Locale.ROOT, "%.2f it/s", rate);
        }
        return String.format(Locale.ROOT, "%.2f s/it", secs / step);
    }

    static String clock(double seconds) {
        long s = Math.round(seconds);
        return s >= 3600 ? String.format(Locale.ROOT, "%d:%02d:%02d", s / 3600, s / 60 % 60, s % 60)
                : String.format(Locale.ROOT, "%d:%02d", s / 60, s % 60);
    }
}
